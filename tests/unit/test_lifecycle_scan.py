"""The snapshot scans' view of a partition: the table's states of one scope, batch changes first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.stream.lifecycle import ScanMemo, partition_of, source_states
from schemas.feed import Category
from schemas.state import SourceState

PARTITIONS = 4


def state(n: int, scope: str, version: str = "v1") -> SourceState:
    return SourceState(
        key=f"pupil:{n}",
        kind="pupil",
        entity_id=f"e{n}",
        version=version,
        scope=scope,
        category=Category.PUPILS,
    )


def raw(s: SourceState) -> bytes:
    return s.model_dump_json().encode()


def expected(
    table: dict[bytes, bytes], overlay: dict[bytes, SourceState | None], partition: int, scope: str
) -> dict[bytes, SourceState]:
    merged = {
        k: SourceState.model_validate_json(v) for k, v in table.items() if k.startswith(b"pupil:")
    }
    merged.update(overlay)  # type: ignore[arg-type]
    return {
        k: s
        for k, s in merged.items()
        if s is not None and s.scope == scope and partition_of(k, PARTITIONS) == partition
    }


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.integers(0, 60), st.sampled_from(["0810001A", "0810002B"]), max_size=40),
    st.dictionaries(
        st.integers(0, 80), st.none() | st.sampled_from(["0810001A", "0810002B"]), max_size=15
    ),
    st.integers(0, PARTITIONS - 1),
)
def test_the_scan_sees_the_table_under_the_batch_changes(
    table_scopes: dict[int, str], overlay_scopes: dict[int, str | None], partition: int
) -> None:
    table = {f"pupil:{n}".encode(): raw(state(n, scope)) for n, scope in table_scopes.items()}
    table[b"snapshot:Eleve:0810001A"] = b'{"scope":"0810001A"}'  # a control key: never a pupil
    unscoped = state(999, "0810001A").model_copy(update={"scope": None})
    table[b"pupil:999"] = raw(unscoped)  # fed by no file yet: in no scope
    overlay: dict[bytes, SourceState | None] = {
        f"pupil:{n}".encode(): None if scope is None else state(n, scope, "v2")
        for n, scope in overlay_scopes.items()
    }
    memo = ScanMemo(PARTITIONS)
    for scope in ("0810001A", "0810002B"):
        want = expected(table, overlay, partition, scope)
        got = dict(source_states(table, overlay, partition, PARTITIONS, scope, memo))
        assert got == want
        # the same scan again with the memo: the same answer
        assert dict(source_states(table, overlay, partition, PARTITIONS, scope, memo)) == want


def test_a_state_changed_in_the_table_is_parsed_again() -> None:
    key = b"pupil:1"
    table = {key: raw(state(1, "0810001A"))}
    memo = ScanMemo(PARTITIONS)
    partition = partition_of(key, PARTITIONS)
    (first,) = source_states(table, {}, partition, PARTITIONS, "0810001A", memo)
    table[key] = raw(state(1, "0810001A", "v9"))
    (second,) = source_states(table, {}, partition, PARTITIONS, "0810001A", memo)
    assert first[1].version == "v1" and second[1].version == "v9"

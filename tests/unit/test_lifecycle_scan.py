"""The snapshot scans' view of a partition: the table's states of one scope, batch changes first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.stream.partition_scans import ScanMemo, partition_of, source_states
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
        if s is not None
        and (s.scope == scope or (s.scope is None and s.restored_uais is not None))
        and partition_of(k, PARTITIONS) == partition
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
    # rebuilt from the directory: in no scope, looked at by every scan (in_scope judges it)
    table[b"pupil:998"] = raw(unscoped.model_copy(update={"restored_uais": ("0810001A",)}))
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


def test_each_batch_s_memo_reads_the_table_as_the_batch_found_it() -> None:
    key = b"pupil:1"
    table = {key: raw(state(1, "0810001A"))}
    partition = partition_of(key, PARTITIONS)
    memo = ScanMemo(PARTITIONS)
    (first,) = source_states(table, {}, partition, PARTITIONS, "0810001A", memo)
    table[key] = raw(state(1, "0810001A", "v9"))  # written after the batch
    (second,) = source_states(table, {}, partition, PARTITIONS, "0810001A", ScanMemo(PARTITIONS))
    assert first[1].version == "v1" and second[1].version == "v9"


def test_a_scan_of_one_category_sees_that_category_only() -> None:
    pupil = state(1, "0810001A")
    guardian = state(2, "0810001A").model_copy(
        update={"key": "guardian:2", "kind": "guardian", "category": Category.GUARDIANS}
    )
    table = {b"pupil:1": raw(pupil), b"guardian:2": raw(guardian)}
    overlay = {b"guardian:3": guardian.model_copy(update={"key": "guardian:3"})}
    seen: dict[str | None, set[bytes]] = {}
    for category in (None, Category.PUPILS.value, Category.GUARDIANS.value, Category.STAFF.value):
        memo = ScanMemo(PARTITIONS)
        seen[category] = {
            k
            for p in range(PARTITIONS)
            for k, _ in source_states(table, overlay, p, PARTITIONS, "0810001A", memo, category)
        }
    assert seen == {
        None: {b"pupil:1", b"guardian:2", b"guardian:3"},
        "Eleve": {b"pupil:1"},
        "PersRelEleve": {b"guardian:2", b"guardian:3"},
        "PersEducNat": set(),
    }


def test_a_scope_with_an_escaped_quote_is_read_by_parsing_the_state() -> None:
    odd = 'AC-"X"\\'  # a source-provided scope: JSON escapes its quotes and backslashes
    table = {b"pupil:1": raw(state(1, odd)), b"pupil:2": raw(state(2, 'AC-"X'))}
    for scope, key in ((odd, b"pupil:1"), ('AC-"X', b"pupil:2")):
        partition = partition_of(key, PARTITIONS)
        found = source_states(table, {}, partition, PARTITIONS, scope, ScanMemo(PARTITIONS))
        assert [k for k, _ in found] == [key]


def test_known_partitions_are_taken_without_hashing_the_key() -> None:
    key = b"pupil:1"
    elsewhere = (partition_of(key, PARTITIONS) + 1) % PARTITIONS
    table = {key: raw(state(1, "0810001A"))}
    memo = ScanMemo(PARTITIONS, {key: elsewhere})  # e.g. the partition it was recovered from
    assert [k for k, _ in source_states(table, {}, elsewhere, PARTITIONS, "0810001A", memo)] == [
        key
    ]

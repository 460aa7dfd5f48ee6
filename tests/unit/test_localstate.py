"""When a table partition's database on disk is kept (connectors.stream.localstate)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.stream.localstate import TRUST_MS, Record, stale_reason
from connectors.stream.statestore import Checkpoint

NOW = 1_800_000_000_000
CHECKPOINT = Checkpoint(offset=41, timestamp=NOW - 1000, key=b"el-1")
RECORD = Record(offset=41, timestamp=NOW - 1000, key=b"el-1", value=b'{"v":1}')


def test_the_record_applied_last_still_there_keeps_the_database() -> None:
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 42, RECORD, NOW) is None
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 90, RECORD, NOW) is None  # more to recover


def test_a_changelog_ending_before_the_checkpoint_is_another_one() -> None:
    # A new broker, restored from the directory: fewer records than the database has seen.
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 41, None, NOW) == (
        "the changelog ends before the checkpoint"
    )
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 0, None, NOW) is not None  # empty


def test_a_changelog_starting_after_the_checkpoint_is_not_followed() -> None:
    assert stale_reason(CHECKPOINT, b'{"v":1}', 42, 90, None, NOW) is not None


@given(
    field=st.sampled_from(["offset", "timestamp", "key", "value"]),
    other=st.integers(1, 10**6),
)
def test_another_record_at_the_checkpoints_offset_discards_it(field: str, other: int) -> None:
    # Another changelog that grew past the checkpoint, or the record compacted away (the
    # first record found is a later one).
    changed = {
        "offset": RECORD.offset + other,
        "timestamp": RECORD.timestamp + other,
        "key": b"el-%d" % (other + 1),
        "value": b"%d" % other,
    }[field]
    record = Record(**{**RECORD.__dict__, field: changed})
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 10**7, record, NOW) is not None


def test_the_local_value_must_be_the_records() -> None:
    assert stale_reason(CHECKPOINT, b'{"v":2}', 0, 42, RECORD, NOW) is not None
    gone = Record(41, CHECKPOINT.timestamp, b"el-1", None)  # a tombstone: the key is absent
    assert stale_reason(CHECKPOINT, None, 0, 42, gone, NOW) is None


def test_an_old_checkpoint_is_trusted_only_with_nothing_written_since() -> None:
    later = NOW + TRUST_MS + 1
    # Records after it could have deletes compaction removed since: not kept.
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 50, RECORD, later) is not None
    # Nothing after it (the worker was the last to write, as after a plain restart): kept.
    assert stale_reason(CHECKPOINT, b'{"v":1}', 0, 42, RECORD, later) is None


def test_data_without_a_checkpoint_is_never_kept() -> None:
    assert stale_reason(None, None, 0, 42, RECORD, NOW) == "data without a checkpoint"

"""The tables' RocksDB store (connectors.stream.statestore): checkpointed writes, partition
reads, databases checked at assignment, one data dir per running worker."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from connectors.stream import statestore
from connectors.stream.statestore import (
    STORE_URL,
    Checkpoint,
    Local,
    PartitionedStore,
    partition_items,
    partitioned_items,
    raw_view,
    worker_datadir,
)

PARTITIONS = 4
TOPIC = "entsync-test-t-changelog"


@dataclass
class _Message:
    partition: int
    offset: int
    timestamp: float  # seconds, as faust's messages
    key: bytes
    value: bytes | None


@dataclass
class _Event:
    message: _Message


class _Verifier:
    """Records what it is asked; answers with the partitions to discard."""

    def __init__(self, stale: Mapping[int, str] | None = None) -> None:
        self.stale = dict(stale or {})
        self.asked: list[tuple[str, dict[int, Local | None]]] = []

    async def __call__(self, topic: str, local: Mapping[int, Local | None]) -> dict[int, str]:
        self.asked.append((topic, dict(local)))
        return {p: why for p, why in self.stale.items() if p in local}


def _table(datadir: Path, verify: _Verifier | None = None) -> tuple[Any, PartitionedStore]:
    app = faust.App("entsync-test", broker="kafka://localhost:1", store=STORE_URL, datadir=datadir)
    options = {"verify": verify} if verify is not None else {}
    table = app.Table("t", key_type=bytes, value_type=bytes, partitions=PARTITIONS, options=options)
    store = table.data
    assert isinstance(store, PartitionedStore)
    return table, store


def _assign(table: Any, monkeypatch: pytest.MonkeyPatch, *partitions: int) -> set[TP]:
    tps = {TP(TOPIC, p) for p in partitions}
    monkeypatch.setattr(table.app.assignor, "assigned_actives", lambda: tps)
    monkeypatch.setattr(table.app.assignor, "assigned_standbys", lambda: set())
    return tps


@pytest.fixture
def datadir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "faust"


def test_delivered_writes_land_with_their_checkpoint_in_one_partition(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = _table(datadir)
    _assign(table, monkeypatch, 0, 1, 2, 3)
    store.write_delivered(1, [(b"a", b"1"), (b"b", b"2")], Checkpoint(7, 1000, b"b"))
    store.write_delivered(1, [(b"a", None), (b"c", b"3")], Checkpoint(9, 2000, b"c"))
    store.write_delivered(2, [(b"d", b"4")], Checkpoint(0, 3000, b"d"))
    assert dict(store.partition_items(1)) == {b"b": b"2", b"c": b"3"}  # no reserved key
    assert dict(store.partition_items(2)) == {b"d": b"4"}
    assert store.persisted_offset(TP(TOPIC, 1)) == 9  # what faust's recovery resumes from
    assert store.checkpoint(1) == Checkpoint(9, 2000, b"c")
    assert sorted(partitioned_items(table)) == [
        (1, b"b", b"2"),
        (1, b"c", b"3"),
        (2, b"d", b"4"),
    ]
    view = raw_view(table)
    assert view[b"c"] == b"3" and b"a" not in view and len(view) == 3
    assert dict(view.items()) == {b"b": b"2", b"c": b"3", b"d": b"4"}
    assert table.get(b"d") == b"4"  # faust's own reads see the same


def test_only_assigned_partitions_are_read(datadir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table, store = _table(datadir)
    store.write_delivered(0, [(b"a", b"1")], Checkpoint(0, 1, b"a"))
    store.write_delivered(3, [(b"z", b"9")], Checkpoint(0, 1, b"z"))
    _assign(table, monkeypatch, 3)  # partition 0 moved to another worker; its database lingers
    assert list(partitioned_items(table)) == [(3, b"z", b"9")]
    assert list(partition_items(table, 0, lambda key: 0)) == []


def test_recovered_records_are_written_with_the_last_ones_checkpoint(datadir: Path) -> None:
    _, store = _table(datadir)
    events = [
        _Event(_Message(2, 10, 1.5, b"k", b"v1")),
        _Event(_Message(2, 11, 1.7, b"gone", b"x")),
        _Event(_Message(2, 12, 1.701, b"gone", None)),
        _Event(_Message(0, 4, 2.0, b"k0", b"w")),
    ]
    store.apply_changelog_batch(events, to_key=lambda k: k, to_value=lambda v: v)
    assert store.checkpoint(2) == Checkpoint(12, 1701, b"gone")
    assert store.persisted_offset(TP(TOPIC, 2)) == 12
    assert store._dbs[2].get(b"gone") is None and store._dbs[2].get(b"k") == b"v1"
    assert store.checkpoint(0) == Checkpoint(4, 2000, b"k0")


async def test_assigned_databases_are_checked_and_stale_ones_discarded(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = _table(datadir)
    store.write_delivered(0, [(b"a", b"1")], Checkpoint(5, 100, b"a"))
    store.write_delivered(1, [(b"b", b"2")], Checkpoint(8, 200, b"b"))
    await store.stop()
    assert store._dbs == {}

    # The next run: the same data dir, a verifier that finds partition 1 from another changelog.
    verify = _Verifier({1: "the changelog ends before the checkpoint"})
    table, store = _table(datadir, verify)
    tps = _assign(table, monkeypatch, 0, 1, 2)
    await store.on_rebalance(tps, set(), tps)
    [(topic, asked)] = verify.asked
    assert topic == TOPIC
    # Partition 2's database is new and empty: nothing to check.
    assert asked == {0: (Checkpoint(5, 100, b"a"), b"1"), 1: (Checkpoint(8, 200, b"b"), b"2")}
    assert dict(store.partition_items(0)) == {b"a": b"1"}
    assert store.persisted_offset(TP(TOPIC, 0)) == 5
    assert dict(store.partition_items(1)) == {}  # discarded: recovered from the beginning
    assert store.persisted_offset(TP(TOPIC, 1)) is None


async def test_a_verifier_that_fails_discards_what_it_could_not_check(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(topic: str, local: Mapping[int, Local | None]) -> dict[int, str]:
        raise TimeoutError("no broker")

    table, store = _table(datadir)
    store.write_delivered(0, [(b"a", b"1")], Checkpoint(5, 100, b"a"))
    await store.stop()
    app = faust.App("entsync-test", broker="kafka://localhost:1", store=STORE_URL, datadir=datadir)
    table = app.Table(
        "t", key_type=bytes, value_type=bytes, partitions=4, options={"verify": broken}
    )
    store = table.data
    tps = _assign(table, monkeypatch, 0)
    await store.on_rebalance(tps, set(), tps)
    assert store.persisted_offset(TP(TOPIC, 0)) is None


async def test_data_without_a_checkpoint_is_reported_as_such(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = _table(datadir)
    store._db_for_partition(3).put(b"orphan", b"x")  # as faust's stock store would leave it
    await store.stop()
    verify = _Verifier({3: "data without a checkpoint"})
    table, store = _table(datadir, verify)
    tps = _assign(table, monkeypatch, 3)
    await store.on_rebalance(tps, set(), tps)
    assert verify.asked[0][1] == {3: None}
    assert dict(store.partition_items(3)) == {}


async def test_a_revoked_partition_is_closed_for_the_next_holder(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = _table(datadir)
    tps = _assign(table, monkeypatch, 0, 1)
    await store.on_rebalance(tps, set(), tps)
    store.write_delivered(1, [(b"b", b"2")], Checkpoint(0, 1, b"b"))
    kept = {TP(TOPIC, 0)}
    monkeypatch.setattr(table.app.assignor, "assigned_actives", lambda: kept)
    await store.on_rebalance(kept, {TP(TOPIC, 1)}, set())
    assert 1 not in store._dbs
    # Another process (here another store) can open it now: RocksDB's lock is released.
    _, other = _table(datadir)
    assert other._db_for_partition(1).get(b"b") == b"2"


def test_checkpoints_round_trip_with_any_key() -> None:
    checkpoint = Checkpoint(12, 1_700_000_000_123, b"snapshot: a b\0c")
    assert Checkpoint.decode(checkpoint.encode()) == checkpoint


def test_each_running_worker_gets_a_data_dir_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statestore, "_held", {})
    base = tmp_path / "faust"
    (base / "worker-0").mkdir(parents=True)
    # Another process holds worker-0 (flock conflicts between open files, even in one process).
    other = os.open(base / "worker-0" / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert worker_datadir(base) == base / "worker-1"
        assert worker_datadir(base) == base / "worker-1"  # the same one for the process's life
    finally:
        os.close(other)
    monkeypatch.setattr(statestore, "_held", {})
    assert worker_datadir(tmp_path / "alone") == tmp_path / "alone" / "worker-0"


def test_partition_scans_read_the_partitions_database(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lifecycle scans on a table in RocksDB: each partition's keys from its database."""
    from connectors.stream.partition_scans import ScanMemo, local_states, source_states
    from schemas.state import SourceState

    table, store = _table(datadir)
    _assign(table, monkeypatch, 0, 1)
    pupil = (
        b'{"key":"pupil:1","kind":"pupil","entity_id":"el-1","version":"v1",'
        b'"scope":"0810001A","category":"Eleve"}'
    )
    state = SourceState.model_validate_json(pupil)
    raw = state.model_dump_json().encode()
    # Stored in partition 1 whatever its hash: the partition of the message that wrote it.
    store.write_delivered(1, [(b"pupil:1", raw)], Checkpoint(0, 1, b"pupil:1"))
    assert statestore.get_in_partition(table, 1, b"pupil:1") == raw
    assert statestore.get_in_partition(table, 0, b"pupil:1") is None
    memo = ScanMemo(PARTITIONS)
    assert list(source_states(table, {}, 1, PARTITIONS, "0810001A", memo)) == [(b"pupil:1", state)]
    assert list(source_states(table, {}, 0, PARTITIONS, "0810001A", memo)) == []
    assert [k for k, _ in local_states(table, {}, 1, PARTITIONS, lambda r: True)] == [b"pupil:1"]


def test_a_worker_process_holding_worker_0_sends_the_next_one_to_worker_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes on one state dir: the second gets a data dir of its own; once the
    first has exited (killed or not), worker-0 is free again."""
    import subprocess
    import sys

    monkeypatch.setattr(statestore, "_held", {})
    base = tmp_path / "faust"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from connectors.stream.statestore import worker_datadir; "
            f"print(worker_datadir(Path({str(base)!r})), flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == str(base / "worker-0")
        assert worker_datadir(base) == base / "worker-1"
    finally:
        holder.kill()
        holder.wait(timeout=10)
    monkeypatch.setattr(statestore, "_held", {})
    assert worker_datadir(base) == base / "worker-0"  # the kernel released the dead one's lock

"""The worker's tables on disk: faust's RocksDB store, one database per changelog partition.

faust's RocksDB store (``rocksdict``) keeps each table partition in a database of its own under
the state directory, with the offset of the last changelog record applied to it, so a restart
reads only the changelog written since (README "State on disk"). :class:`PartitionedStore`
changes four things of it:

- **a database is a prefix of its changelog partition, and says which**: a batch's states are
  written to it only once their changelog records are delivered
  (:func:`connectors.stream.changelog.write_through`), in one atomic write with the offset,
  timestamp and key of the last record (the checkpoint); recovered records likewise. A crash
  can leave the database behind its changelog (recovery catches up), never ahead of it;
- **a kept database is checked against its changelog when its partition is assigned**
  (:mod:`connectors.stream.localstate`): one from another broker or changelog (rebuilt,
  deleted) is discarded, and the partition recovers from the changelog's beginning;
- **reads by partition**: the scans read one partition's database, without a key's hash;
- **bounded memory**: one block cache for every database of the process, charged with their
  memtables and index blocks too (faust's defaults are a 2 GiB cache and three 64 MB
  memtables per database), and a database is closed when its partition is revoked, which
  also frees it for another worker.

``Any`` here is faust's untyped ``Store`` API (its constructor and changelog events), the
rocksdict objects (no type information), and a table given as a faust table or, in tests, a
plain mapping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions, Store
from faust.types import TP

from connectors.logs import get_logger

log = get_logger(__name__)

STORE_URL = "entsync-rocksdb://"
CHECKPOINT_KEY = b"__entsync\0checkpoint__"
# One block cache for every table partition of the process, which also holds the index and
# filter blocks and is charged with the memtables (all of them: MEMTABLES_BYTES at most), so
# RocksDB's memory stays near BLOCK_CACHE_BYTES however large the tables grow.
BLOCK_CACHE_BYTES = 16 * 1024**2
MEMTABLES_BYTES = 8 * 1024**2
WRITE_BUFFER_BYTES = 4 * 1024**2
WRITE_BUFFERS = 2
_RESERVED = (Store.offset_key, CHECKPOINT_KEY)


@dataclass(frozen=True)
class Checkpoint:
    """The last changelog record a partition's database holds: its offset, timestamp (ms) and
    key. Everything before it in the changelog partition is in the database too."""

    offset: int
    timestamp: int
    key: bytes

    def encode(self) -> bytes:
        return b"%d %d " % (self.offset, self.timestamp) + self.key

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint:
        offset, timestamp, key = raw.split(b" ", 2)
        return cls(int(offset), int(timestamp), key)


# A database's checkpoint and the value it holds for the checkpoint's key.
Local = tuple[Checkpoint, bytes | None]
# (changelog topic, {partition: Local, or None for data without a checkpoint}) -> {partition:
# why its database is not a prefix of the changelog}: see connectors.stream.localstate.
Verifier = Callable[[str, Mapping[int, Local | None]], Awaitable[dict[int, str]]]
_shared: list[Any] = []  # (the block cache, the memtables' manager) of the process


class _Options(RocksDBOptions):
    def open(self, path: Path, *, read_only: bool = False) -> Any:
        if not _shared:
            cache = rocksdict.Cache(BLOCK_CACHE_BYTES)
            manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
                MEMTABLES_BYTES, False, cache
            )
            _shared.extend((cache, manager))
        cache, manager = _shared
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(256)
        options.set_write_buffer_size(WRITE_BUFFER_BYTES)
        options.set_max_write_buffer_number(WRITE_BUFFERS)
        options.set_write_buffer_manager(manager)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(10, True)
        table.set_block_cache(cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_block_based_table_factory(table)
        db = rocksdict.Rdict(str(path), options=options)
        db.set_read_options(rocksdict.ReadOptions())
        return db


class PartitionedStore(Store):
    """faust's RocksDB store with checkpointed writes, checked databases and partition reads.

    Table option ``verify``: the :data:`Verifier` run on the databases of newly assigned
    partitions (none: databases are kept as they are)."""

    def __init__(self, *args: Any, options: Mapping[str, Any] | None = None, **kw: Any) -> None:
        own = dict(options or {})
        self._verify: Verifier | None = own.pop("verify", None)
        super().__init__(*args, options=own, driver="rocksdict", **kw)
        self.rocksdb_options = _Options()

    # -- writes --------------------------------------------------------------------------------

    def write_delivered(
        self,
        partition: int,
        changes: Iterable[tuple[bytes, bytes | None]],
        checkpoint: Checkpoint,
    ) -> None:
        """Apply ``changes`` (value None: delete), whose changelog records are delivered and end
        at ``checkpoint``, to the partition's database in one atomic write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in changes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            self._key_index[key] = partition
        self._checkpoint_into(batch, checkpoint)
        self._db_for_partition(partition).write(batch)

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        """Recovered records, with their checkpoint: one atomic write per partition."""
        writes: dict[int, Any] = {}
        last: dict[int, Any] = {}
        for event in batch:
            message = event.message
            partition = message.partition
            write = writes.get(partition)
            if write is None:
                write = writes[partition] = rocksdict.WriteBatch(raw_mode=True)
            if message.value is None:
                write.delete(message.key)
            else:
                write.put(message.key, message.value)
            if partition not in last or message.offset > last[partition].offset:
                last[partition] = message
        for partition, write in writes.items():
            message = last[partition]
            self._checkpoint_into(
                write, Checkpoint(message.offset, round(message.timestamp * 1000), message.key)
            )
            self._db_for_partition(partition).write(write)

    def _checkpoint_into(self, batch: Any, checkpoint: Checkpoint) -> None:
        batch.put(self.offset_key, str(checkpoint.offset).encode())  # faust's recovery reads it
        batch.put(CHECKPOINT_KEY, checkpoint.encode())

    # -- reads ---------------------------------------------------------------------------------

    def checkpoint(self, partition: int) -> Checkpoint | None:
        raw = self._db_for_partition(partition).get(CHECKPOINT_KEY)
        return None if raw is None else Checkpoint.decode(raw)

    def active_partitions(self) -> list[int]:
        """The partitions of this table assigned to this worker whose database is open."""
        topic = self.table.changelog_topic.get_topic_name()
        actives = self.app.assignor.assigned_actives()
        return sorted(p for p in self._dbs if TP(topic, p) in actives)

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """(key, raw value) of one assigned partition (nothing for another one)."""
        if partition not in self.active_partitions():
            return
        for key, value in self._dbs[partition].items():
            if key not in _RESERVED:
                yield key, value

    def raw_items(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, raw value) of every assigned partition."""
        for partition in self.active_partitions():
            for key, value in self.partition_items(partition):
                yield partition, key, value

    # -- partitions ----------------------------------------------------------------------------

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topic = self.table.changelog_topic.get_topic_name()
        local: dict[int, Local | None] = {}
        for tp in newly_assigned:
            db = self._dbs.get(tp.partition) if tp.topic == topic else None
            if db is None:
                continue
            raw = db.get(CHECKPOINT_KEY)
            if raw is not None:
                checkpoint = Checkpoint.decode(raw)
                local[tp.partition] = (checkpoint, db.get(checkpoint.key))
            elif any(key not in _RESERVED for key in db.keys()):  # noqa: SIM118 (raw mode)
                local[tp.partition] = None  # data, but not written by this store
        if not local:
            return
        try:
            stale = await self._verify(topic, local) if self._verify else {}
        except Exception as exc:  # cannot tell: recovering the partitions whole is always right
            log.warning("worker.local_state_unverified", table=self.table_name, error=repr(exc))
            stale = dict.fromkeys(local, "not verified")
        for partition, reason in sorted(stale.items()):
            self.discard(partition)
            log.warning(
                "worker.local_state_discarded",
                table=self.table_name,
                partition=partition,
                reason=reason,
            )
        kept = sorted(local.keys() - stale.keys())
        if kept:
            log.info("worker.local_state_kept", table=self.table_name, partitions=kept)

    def discard(self, partition: int) -> None:
        """Remove the partition's database; an empty one takes its place."""
        self._close(partition)
        path = self.partition_path(partition)
        shutil.rmtree(path, ignore_errors=True)
        self._key_index.clear()
        self._db_for_partition(partition)

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._close(tp.partition)

    def _close(self, partition: int) -> None:
        db = self._dbs.pop(partition, None)
        if db is not None:
            with contextlib.suppress(Exception):  # already closed
                db.close()

    async def stop(self) -> None:
        for partition in list(self._dbs):
            self._close(partition)


STORES.data.setdefault(STORE_URL.split(":")[0], f"{__name__}:PartitionedStore")


def store_of(table: Any) -> PartitionedStore | None:
    """The table's store when it is a :class:`PartitionedStore` (else None: a test's mapping)."""
    data = getattr(table, "data", None)
    return data if isinstance(data, PartitionedStore) else None


class RawView(Mapping[bytes, bytes]):
    """A table's raw values by key, read without faust's (de)serialization."""

    def __init__(self, store: PartitionedStore) -> None:
        self._store = store

    def __getitem__(self, key: bytes) -> bytes:
        value = self._store._get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def __iter__(self) -> Iterator[bytes]:
        return (key for _, key, _ in self._store.raw_items())

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self) -> Any:
        return ((key, value) for _, key, value in self._store.raw_items())

    def values(self) -> Any:
        return (value for _, _, value in self._store.raw_items())


def raw_view(table: Any) -> Mapping[bytes, bytes]:
    """The table's raw values (a test's plain mapping is returned as it is)."""
    store = store_of(table)
    return table if store is None else RawView(store)


def partition_items(
    table: Any, partition: int, partition_of: Callable[[bytes], int]
) -> Iterator[tuple[bytes, bytes]]:
    """(key, raw value) of the table's keys in ``partition``; ``partition_of`` is asked only
    for a plain mapping's keys."""
    store = store_of(table)
    if store is not None:
        yield from store.partition_items(partition)
        return
    for key, raw in list(table.items()):
        if partition_of(key) == partition:
            yield key, raw


def get_in_partition(table: Any, partition: int, key: bytes) -> bytes | None:
    """The raw value of ``key``, stored in ``partition`` (read there alone for a store)."""
    store = store_of(table)
    if store is None:
        found: bytes | None = table.get(key)
        return found
    db = store._dbs.get(partition)
    return None if db is None else db.get(key)


def partitioned_items(table: Any) -> Iterator[tuple[int | None, bytes, bytes]]:
    """(partition, key, raw value) of the table; partition None for a plain mapping."""
    store = store_of(table)
    if store is not None:
        yield from store.raw_items()
        return
    for key, raw in list(table.items()):
        yield None, key, raw


def worker_datadir(base: Path) -> Path:
    """A data directory under ``base`` that no other running worker uses: ``worker-0`` unless
    another process holds it, then ``worker-1``, ... (kept across restarts: a worker restarted
    alone finds its databases again). Held, by an advisory lock, until the process exits."""
    held = _held.get(base)
    if held is not None:
        return held
    import fcntl

    for n in range(64):
        path = base / f"worker-{n}"
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _held[base] = path  # the descriptor stays open: the lock lasts as long as the process
        return path
    raise RuntimeError(f"more than 64 workers use {base}")


_held: dict[Path, Path] = {}

"""Is a table partition's database on disk a prefix of its changelog partition?

A worker keeps its tables in databases under the state directory (see
:mod:`connectors.stream.statestore`); each holds the checkpoint of the last changelog record it
applied (offset, timestamp, key). When a partition is assigned, the database found for it is
kept only if the changelog still holds that very record, so recovery can go on from there:

- the changelog ends at or before the checkpoint, or starts after it: another changelog (a
  broker rebuilt, the topic deleted and made again, then perhaps restored from the directory:
  see :mod:`connectors.stream.restore`);
- the record at the checkpoint's offset is not the one applied (another key, time or value):
  another changelog that grew past it, or a record compaction removed;
- the changelog has records after the checkpoint and the checkpoint is older than
  ``TRUST_MS``: a delete written after it (by the worker that held the partition since) may
  have been compacted away (Kafka keeps a tombstone ``delete.retention.ms``, one day by
  default), and the database would keep the deleted state.

Otherwise the database is kept and faust recovers the records after the checkpoint. A database
not kept is discarded and the partition recovers from the changelog's beginning, as a new
worker's does: slower, never wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets
from connectors.stream.statestore import Checkpoint, Local, Verifier

TRUST_MS = 12 * 3600 * 1000  # half of Kafka's default delete.retention.ms
MAX_POLLS = 50


@dataclass(frozen=True)
class Record:
    """A changelog record as the check compares it."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def stale_reason(
    checkpoint: Checkpoint | None,
    local_value: bytes | None,
    start: int,
    end: int,
    record: Record | None,
    now_ms: int,
) -> str | None:
    """Why a database whose checkpoint is ``checkpoint`` (holding ``local_value`` for its key)
    is not a prefix of a changelog partition from ``start`` to ``end`` whose first record at or
    after the checkpoint's offset is ``record``; None: it is, and may be kept."""
    if checkpoint is None:
        return "data without a checkpoint"
    if checkpoint.offset >= end:
        return "the changelog ends before the checkpoint"
    if checkpoint.offset < start:
        return "the changelog starts after the checkpoint"
    if (
        record is None
        or record.offset != checkpoint.offset
        or record.key != checkpoint.key
        or record.timestamp != checkpoint.timestamp
    ):
        return "another record at the checkpoint's offset"
    if record.value != local_value:
        return "another value at the checkpoint's offset"
    if end > checkpoint.offset + 1 and now_ms - checkpoint.timestamp > TRUST_MS:
        return "checkpoint too old to trust the records after it"
    return None


async def stale_partitions(
    kafka: KafkaParams, topic: str, local: Mapping[int, Local | None], now_ms: int
) -> dict[int, str]:
    """{partition: why} for the databases of ``local`` ({partition: (checkpoint, value of its
    key) or None for data without a checkpoint}) that are not prefixes of ``topic``."""
    reasons: dict[int, str] = {}
    checked = {p: found for p, found in local.items() if found is not None}
    for partition in local.keys() - checked.keys():
        reasons[partition] = "data without a checkpoint"
    if not checked:
        return reasons
    tps = {p: TopicPartition(topic, p) for p in checked}
    ends = await true_end_offsets(kafka, tps.values())
    starts, records = await _records_at(
        kafka, tps, {p: cp.offset for p, (cp, _) in checked.items()}, ends
    )
    for partition, (checkpoint, value) in checked.items():
        tp = tps[partition]
        reason = stale_reason(
            checkpoint, value, starts[tp], ends[tp], records.get(partition), now_ms
        )
        if reason is not None:
            reasons[partition] = reason
    return reasons


async def _records_at(
    kafka: KafkaParams,
    tps: Mapping[int, TopicPartition],
    offsets: Mapping[int, int],
    ends: Mapping[TopicPartition, int],
) -> tuple[dict[TopicPartition, int], dict[int, Record]]:
    """The partitions' first offsets, and the first record at or after each given offset that
    lies inside its partition."""
    consumer = clients.consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        starts = {
            tp: int(o) for tp, o in (await consumer.beginning_offsets(list(tps.values()))).items()
        }
        wanted = {p: tp for p, tp in tps.items() if starts[tp] <= offsets[p] < ends[tp]}
        found: dict[int, Record] = {}
        if not wanted:
            return starts, found
        consumer.assign(list(wanted.values()))
        for p, tp in wanted.items():
            consumer.seek(tp, offsets[p])
        for _ in range(MAX_POLLS):
            pending = [tp for p, tp in wanted.items() if p not in found]
            if not pending:
                break
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, batch in batches.items():
                if batch and tp.partition not in found:
                    first = batch[0]
                    found[tp.partition] = Record(
                        first.offset, first.timestamp, first.key, first.value
                    )
        return starts, found
    finally:
        await consumer.stop()


def verifier(kafka: KafkaParams) -> Verifier:
    """The check a :class:`connectors.stream.statestore.PartitionedStore` runs at assignment."""

    async def verify(topic: str, local: Mapping[int, Local | None]) -> dict[int, str]:
        return await stale_partitions(kafka, topic, local, int(time.time() * 1000))

    return verify

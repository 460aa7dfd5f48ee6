"""Batched writes to a faust table: one produce request per changelog partition per batch.

``table[key] = value`` makes faust send one changelog message through its producer buffer per
key (a FutureMessage, a buffer hop and a callback each). A full extract where nothing changed
still stamps every feed key as seen by the new snapshot, so that per-message cost was most of
the worker's time on such a run (see README "Performance"). :func:`write_through` sends the
changelog records (topic, key, value; a tombstone for a delete) as a few record batches
(:mod:`connectors.stream.records`) and, once they are delivered, writes the same changes to the
table's database (:mod:`connectors.stream.statestore`), with the checkpoint of the last record
of each partition, in one atomic write per partition: the database never holds a state its
changelog lacks. It returns one future, done when both are: the caller awaits it before the
batch's offsets are acknowledged, so a restarted worker recovers every write it committed past.

Each record goes to the partition the caller names: the partition of the feed message that
caused the write, which is also the key's partition under the default partitioner (the worker
refuses topics whose partition count is not the configured one), so the key's database is that
partition's.

Both tables (``sources``, written by ``route_feed``; ``entities``, written by ``reconcile``) are
written through this function alone: mixing it with ``table[key] = value`` on one table could
reorder two writes of one key. Between the send and the delivery the table still holds the
previous states: both writers await the future before they read the table again (the pipeline
reads the states of the batches in progress from their own results).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from connectors.stream.ports import Sent, Table
from connectors.stream.records import send_record_batches
from connectors.stream.statestore import Checkpoint, PartitionedStore, store_of


def known_partitions(table: Table) -> Mapping[bytes, int]:
    """Key -> partition for the keys of ``table``'s store (empty if the store keeps none)."""
    known: Mapping[bytes, int] = getattr(table.data, "_key_partition", None) or {}
    return known


async def write_through(
    table: Table, changes: Mapping[bytes, tuple[int, bytes | None]]
) -> list[asyncio.Future[None]]:
    """Send ``changes`` (key -> (partition, value); value None: delete) to ``table``'s changelog,
    then apply them to its database. Returns the future of both (none without changes)."""
    if not changes:
        return []
    store = store_of(table)
    if store is None:
        raise TypeError(f"table {table!r} is not kept in a PartitionedStore")
    topic = table.changelog_topic.get_topic_name()
    stamp = int(time.time() * 1000)  # the records' timestamp: part of the checkpoint
    records = ((partition, key, value) for key, (partition, value) in changes.items())
    sent = await send_record_batches(table.app, topic, records, timestamp_ms=stamp)
    return [asyncio.ensure_future(_store_delivered(store, changes, sent, stamp))]


async def _store_delivered(
    store: PartitionedStore,
    changes: Mapping[bytes, tuple[int, bytes | None]],
    sent: Sequence[tuple[int, int, Sent]],
    stamp: int,
) -> None:
    delivered = await asyncio.gather(*(future for _, _, future in sent))
    last: dict[int, int] = {}
    for (partition, count, _), metadata in zip(sent, delivered, strict=True):
        last[partition] = max(last.get(partition, -1), metadata.offset + count - 1)
    by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for key, (partition, value) in changes.items():
        by_partition.setdefault(partition, []).append((key, value))
    for partition, items in by_partition.items():
        # The records of a partition were sent in this order: its last key is the last record.
        checkpoint = Checkpoint(last[partition], stamp, items[-1][0])
        store.write_delivered(partition, items, checkpoint)

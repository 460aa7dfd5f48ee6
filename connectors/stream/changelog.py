"""Batched writes to a faust table: one produce request per changelog partition per batch.

``table[key] = value`` makes faust send one changelog message through its producer buffer per
key (a FutureMessage, a buffer hop and a callback each). A full extract where nothing changed
still stamps every feed key as seen by the new snapshot, so that per-message cost was most of
the worker's time on such a run (see README "Performance"). :func:`write_through` sets the
table's local data and sends the same changelog records (topic, key, value; a tombstone for a
delete) as a few record batches, and returns their delivery futures: the caller awaits them
before the batch's offsets are acknowledged, so a restarted worker recovers every write it
committed past.

Each record goes to the partition the caller names: the partition of the feed message that
caused the write, which is also the key's partition under the default partitioner (the worker
refuses topics whose partition count is not the configured one). faust's in-memory store keeps
the partition of every key it recovers; the written keys' partitions are kept there too, so
:func:`known_partitions` answers for every key without hashing it, and a key of a partition
the worker no longer holds is dropped with the others at the next recovery, as faust does.

Both tables (``sources``, written by ``route_feed``; ``entities``, written by ``reconcile``) are
written through this function alone: mixing it with ``table[key] = value`` on one table could
reorder two writes of one key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from typing import Any


def _kafka_producer(app: Any) -> Any:
    """The aiokafka producer inside faust's (started) producer service."""
    return app.producer._ensure_producer()


def known_partitions(table: Any) -> Mapping[bytes, int]:
    """Key -> partition for the keys of ``table``'s store (empty if the store keeps none)."""
    known: Mapping[bytes, int] = getattr(table.data, "_key_partition", None) or {}
    return known


async def write_through(
    table: Any, changes: Mapping[bytes, tuple[int, bytes | None]]
) -> list[asyncio.Future[Any]]:
    """Apply ``changes`` (key -> (partition, value); value None: delete) to ``table`` and send
    them to its changelog. Returns the delivery futures, one per record batch sent.
    """
    if not changes:
        return []
    producer = _kafka_producer(table.app)
    topic = table.changelog_topic.get_topic_name()
    data = table.data
    partition_of_key: MutableMapping[bytes, int] | None = getattr(data, "_key_partition", None)
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for key, (partition, value) in changes.items():
        if value is None:
            data.pop(key, None)
            if partition_of_key is not None:
                partition_of_key.pop(key, None)
        else:
            data[key] = value
            if partition_of_key is not None:
                partition_of_key[key] = partition
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:
            # Full: send it and start the next one (a record never exceeds an empty batch).
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:
                raise ValueError("a table value larger than the producer's batch size")
    for partition, builder in builders.items():
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures

"""Batched writes to a faust table: one produce request per changelog partition per batch.

``table[key] = value`` makes faust send one changelog message through its producer buffer per
key (a FutureMessage, a buffer hop and a callback each). A full extract where nothing changed
still stamps every feed key as seen by the new snapshot, so that per-message cost was most of
the worker's time on such a run (see README "Performance"). :func:`write_through` sets the
table's local data and sends the same changelog records (same topic, key, value and partition
as faust would: the default partitioner over the key, as ``use_partitioner=True`` tables do)
as a few record batches, and returns their delivery futures: the caller awaits them before the
batch's offsets are acknowledged, so a restarted worker recovers every write it committed past.

Only for tables written by one agent through this function alone: mixing it with
``table[key] = value`` on the same table could reorder two writes of one key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from connectors.stream.lifecycle import partition_of


def _kafka_producer(app: Any) -> Any:
    """The aiokafka producer inside faust's (started) producer service."""
    return app.producer._ensure_producer()


async def write_through(
    table: Any, changes: Mapping[bytes, bytes | None], partitions: int
) -> list[asyncio.Future[Any]]:
    """Apply ``changes`` (None: delete) to ``table`` and send them to its changelog.

    Returns the delivery futures, one per record batch sent.
    """
    if not changes:
        return []
    producer = _kafka_producer(table.app)
    topic = table.changelog_topic.get_topic_name()
    data = table.data
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        partition = partition_of(key, partitions)
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

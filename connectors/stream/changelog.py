"""Batched writes to a faust table: one produce request per changelog partition per batch.

``table[key] = value`` makes faust send one changelog message through its producer buffer per
key (a FutureMessage, a buffer hop and a callback each). A full extract where nothing changed
still stamps every feed key as seen by the new snapshot, so that per-message cost was most of
the worker's time on such a run (see README "Performance"). :func:`write_through` sets the
table's local data and sends the same changelog records (topic, key, value; a tombstone for a
delete) as a few record batches (:mod:`connectors.stream.records`), and returns their delivery
futures: the caller awaits them before the batch's offsets are acknowledged, so a restarted
worker recovers every write it committed past.

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

from connectors.stream.records import send_records


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
    topic = table.changelog_topic.get_topic_name()
    data = table.data
    partition_of_key: MutableMapping[bytes, int] | None = getattr(data, "_key_partition", None)
    for key, (partition, value) in changes.items():
        if value is None:
            data.pop(key, None)
            if partition_of_key is not None:
                partition_of_key.pop(key, None)
        else:
            data[key] = value
            if partition_of_key is not None:
                partition_of_key[key] = partition
    records = ((partition, key, value) for key, (partition, value) in changes.items())
    return await send_records(table.app, topic, records)

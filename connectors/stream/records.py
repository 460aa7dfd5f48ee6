"""Send many records at once: one record batch per partition, not one faust message each.

faust's ``topic.send`` builds a FutureMessage, a pending message and callbacks per record; for
the thousands of entity inputs, audit events and table writes of one batch that was most of
the time a batch spent sending. :func:`send_record_batches` appends the records to aiokafka
record batches, one per partition (several if one fills up), in the order given, and returns
their delivery futures. Keys go to the partition faust's default partitioner would give them
(:func:`connectors.stream.partition_scans.partition_of`), so a key's records keep one partition and
their order.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from connectors.stream.faust_compat import access
from connectors.stream.partition_scans import partition_of
from connectors.stream.ports import FaustApp, Sent, Topic


def kafka_producer(app: FaustApp) -> AIOKafkaProducer:
    """The aiokafka producer inside faust's (started) producer service."""
    return access.aiokafka_producer(app)


async def send_record_batches(
    app: FaustApp,
    topic: str,
    records: Iterable[tuple[int, bytes, bytes | None]],
    timestamp_ms: int | None = None,
) -> list[tuple[int, int, Sent]]:
    """Send (partition, key, value) records to ``topic`` (value None: a tombstone). Returns, per
    record batch in the order sent, its partition, record count and delivery future (which gives
    its first record's offset). ``timestamp_ms``: every record's timestamp (None: the time each
    is added)."""
    producer = kafka_producer(app)
    builders: dict[int, BatchBuilder] = {}
    counts: dict[int, int] = {}
    sent: list[tuple[int, int, Sent]] = []

    async def flush(partition: int) -> None:
        future = await producer.send_batch(builders[partition], topic, partition=partition)
        sent.append((partition, counts[partition], future))

    for partition, key, value in records:
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
            counts[partition] = 0
        if builder.append(key=key, value=value, timestamp=timestamp_ms) is None:
            # Full: send it and start the next one (a record never exceeds an empty batch).
            await flush(partition)
            builder = builders[partition] = producer.create_batch()
            counts[partition] = 0
            if builder.append(key=key, value=value, timestamp=timestamp_ms) is None:
                raise ValueError(f"a record larger than the producer's batch size, for {topic}")
        counts[partition] += 1
    for partition in builders:
        await flush(partition)
    return sent


async def send_keyed(topic: Topic, messages: Iterable[tuple[str, str]]) -> list[Sent]:
    """Send (key, JSON) messages to a faust topic, each to its key's partition."""
    return [future for _, _, future in await send_keyed_batches(topic, messages)]


async def send_keyed_batches(
    topic: Topic, messages: Iterable[tuple[str, str]]
) -> list[tuple[int, int, Sent]]:
    """As :func:`send_keyed`, with each record batch's partition and record count (a batch's
    delivery gives its first record's offset)."""
    partitions = topic.partitions or topic.app.conf.topic_partitions  # None: the app's count
    name = topic.get_topic_name()
    records = (
        (partition_of(k := key.encode(), partitions), k, value.encode()) for key, value in messages
    )
    return await send_record_batches(topic.app, name, records)

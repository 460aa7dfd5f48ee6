"""Batched table writes land in the changelog as faust's own writes would, on the real broker.

``write_through`` bypasses faust's per-key changelog send: the records must be the same (key,
value, tombstone for a delete) on the partition faust's producer would pick for the key, or a
restarted worker would recover another table than the one it committed past.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.stream.changelog import known_partitions, write_through
from connectors.stream.lifecycle import partition_of
from connectors.stream.records import send_keyed
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

PARTITIONS = 4


@dataclass
class _Producer:
    """faust's producer service as ``write_through`` sees it: the aiokafka producer inside."""

    kafka: AIOKafkaProducer | None

    def _ensure_producer(self) -> AIOKafkaProducer | None:
        return self.kafka


@dataclass
class _Topic:
    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class _App:
    producer: _Producer


class _Store(dict[bytes, bytes]):
    """faust's in-memory store: a dict that also knows each recovered key's partition."""

    def __init__(self) -> None:
        super().__init__()
        self._key_partition: dict[bytes, int] = {}


@dataclass
class _Table:
    app: _App
    changelog_topic: _Topic
    data: _Store = field(default_factory=_Store)


async def _create_topic(bootstrap: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _new_topics(bootstrap: str, *roles: str) -> list[str]:
    suffix = uuid.uuid4().hex[:8]
    names = [f"entsync-test-{suffix}-{role}" for role in roles]
    for name in names:
        await _create_topic(bootstrap, name)
    return names


async def _started_producer(bootstrap: str) -> AIOKafkaProducer:
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, max_batch_size=16384)
    await kafka.start()
    return kafka


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        for _ in range(50):
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


async def test_batched_writes_are_the_records_faust_would_send(
    local_services: LocalServices,
) -> None:
    bootstrap = local_services.kafka_bootstrap
    changelog, reference = await _new_topics(bootstrap, "changelog", "reference")
    kafka = await _started_producer(bootstrap)
    try:
        table = _Table(_App(_Producer(kafka)), _Topic(changelog))
        table.data[b"pupil:gone"] = b"old"
        table.data._key_partition[b"pupil:gone"] = partition_of(b"pupil:gone", PARTITIONS)
        # Big values: a partition's records do not fit one batch, so batches fill and go on.
        changes: dict[bytes, bytes | None] = {
            f"pupil:{n}".encode(): (f'{{"n":{n}}}' + " " * 900).encode() for n in range(120)
        }
        changes[b"pupil:gone"] = None
        # The worker names the partition of the feed message that caused each write: the
        # key's partition under the default partitioner.
        where = {key: partition_of(key, PARTITIONS) for key in changes}
        futures = await write_through(table, {k: (where[k], v) for k, v in changes.items()})
        for fut in futures:
            await fut
        assert len(futures) > PARTITIONS  # some partitions took more than one batch
        # The local data is the table after the changes.
        assert table.data == {k: v for k, v in changes.items() if v is not None}
        assert known_partitions(table) == {k: where[k] for k in table.data}

        # Where faust's producer would put each key: the default partitioner, partition None.
        placed = {}
        for key in changes:
            meta = await (await kafka.send(reference, key=key, value=b"x"))
            placed[key] = meta.partition
    finally:
        await kafka.stop()

    records = await _read_all(bootstrap, changelog, len(changes))
    got = {r.key: (r.partition, r.value) for r in records}
    assert len(records) == len(changes)
    assert got == {k: (placed[k], v) for k, v in changes.items()}
    assert got[b"pupil:gone"] == (placed[b"pupil:gone"], None)  # a tombstone


async def test_no_change_sends_nothing() -> None:
    table = _Table(_App(_Producer(None)), _Topic("unused"))  # never started: nothing to send
    assert await write_through(table, {}) == []


@dataclass
class _KeyedTopic:
    """A faust topic as ``send_keyed`` sees it."""

    app: _App
    name: str
    partitions: int = PARTITIONS

    def get_topic_name(self) -> str:
        return self.name


async def test_keyed_messages_go_where_faust_would_send_them_in_order(
    local_services: LocalServices,
) -> None:
    """Entity inputs and audit events sent in record batches keep faust's partition per key,
    and one key's messages keep their order."""
    bootstrap = local_services.kafka_bootstrap
    topic, reference = await _new_topics(bootstrap, "keyed", "reference")
    kafka = await _started_producer(bootstrap)
    try:
        messages = [(f"el-{n % 37}", f'{{"seq":{n}}}' + " " * 500) for n in range(300)]
        futures = await send_keyed(_KeyedTopic(_App(_Producer(kafka)), topic), messages)
        for fut in futures:
            await fut
        placed = {}
        for key in {k for k, _ in messages}:
            meta = await (await kafka.send(reference, key=key.encode(), value=b"x"))
            placed[key] = meta.partition
    finally:
        await kafka.stop()

    records = await _read_all(bootstrap, topic, len(messages))
    assert len(records) == len(messages)
    for record in records:
        assert record.partition == placed[record.key.decode()]
    by_key: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key.decode(), []).append(record.value.decode())
    assert by_key == {
        key: [value for k, value in messages if k == key] for key in {k for k, _ in messages}
    }

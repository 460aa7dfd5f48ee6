"""Batched table writes land in the changelog as faust's own writes would, on the real broker.

``write_through`` bypasses faust's per-key changelog send: the records must be the same (key,
value, tombstone for a delete) on the partition faust's producer would pick for the key, or a
restarted worker would recover another table than the one it committed past; and the table's
database must hold them with the checkpoint of each partition's last record, which the
check of a kept database (connectors.stream.localstate) finds in the changelog.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from connectors.stream.changelog import write_through
from connectors.stream.clients import KafkaParams
from connectors.stream.localstate import stale_partitions
from connectors.stream.partition_scans import partition_of
from connectors.stream.records import send_keyed
from connectors.stream.statestore import STORE_URL, Checkpoint
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


@dataclass
class _Table:
    """A faust table as ``write_through`` sees it: its app (the producer), its changelog topic
    and its store (a real one, in ``datadir``)."""

    app: _App
    changelog_topic: _Topic
    datadir: Path
    data: Any = None

    def __post_init__(self) -> None:
        app = faust.App(
            "entsync-test", broker="kafka://localhost:1", store=STORE_URL, datadir=self.datadir
        )
        self.data = app.Table("t", key_type=bytes, value_type=bytes, partitions=PARTITIONS).data


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
    local_services: LocalServices, tmp_path: Path
) -> None:
    bootstrap = local_services.kafka_bootstrap
    changelog, reference = await _new_topics(bootstrap, "changelog", "reference")
    kafka = await _started_producer(bootstrap)
    try:
        table = _Table(_App(_Producer(kafka)), _Topic(changelog), tmp_path)
        store = table.data
        gone = partition_of(b"pupil:gone", PARTITIONS)
        store.write_delivered(gone, [(b"pupil:gone", b"old")], Checkpoint(-1, 0, b"pupil:gone"))
        # Big values: a partition's records do not fit one batch, so batches fill and go on.
        changes: dict[bytes, bytes | None] = {
            f"pupil:{n}".encode(): (f'{{"n":{n}}}' + " " * 900).encode() for n in range(120)
        }
        changes[b"pupil:gone"] = None
        # The worker names the partition of the feed message that caused each write: the
        # key's partition under the default partitioner.
        where = {key: partition_of(key, PARTITIONS) for key in changes}
        sent = await write_through(table, {k: (where[k], v) for k, v in changes.items()})
        for fut in sent:
            await fut
        # The local data is the table after the changes, each key in its partition's database.
        for partition in range(PARTITIONS):
            local = {k: v for k, v in store._db_for_partition(partition).items()}
            assert {k: v for k, v in local.items() if not k.startswith(b"__")} == {
                k: v for k, v in changes.items() if v is not None and where[k] == partition
            }

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
    # Each partition's checkpoint is its last record: offset, timestamp and key.
    for partition in range(PARTITIONS):
        last = max((r for r in records if r.partition == partition), key=lambda r: r.offset)
        assert store.checkpoint(partition) == Checkpoint(last.offset, last.timestamp, last.key)
        assert store.persisted_offset(TP(changelog, partition)) == last.offset
    # ... which the check of a kept database finds there: the databases are kept.
    local = {
        p: (cp, store._dbs[p].get(cp.key)) for p in range(PARTITIONS) if (cp := store.checkpoint(p))
    }
    now = max(r.timestamp for r in records)
    assert await stale_partitions(KafkaParams(bootstrap), changelog, local, now) == {}


async def test_a_database_from_another_changelog_is_found_stale(
    local_services: LocalServices,
) -> None:
    bootstrap = local_services.kafka_bootstrap
    (changelog,) = await _new_topics(bootstrap, "changelog")
    kafka = await _started_producer(bootstrap)
    try:
        for n in range(5):
            await (await kafka.send(changelog, key=b"k%d" % n, value=b"v", partition=0))
        meta = await (await kafka.send(changelog, key=b"k9", value=b"v9", partition=0))
    finally:
        await kafka.stop()
    kafka_params = KafkaParams(bootstrap)
    here = Checkpoint(meta.offset, meta.timestamp, b"k9")
    now = meta.timestamp + 1000

    async def why(checkpoint: Checkpoint, value: bytes | None) -> str | None:
        found = await stale_partitions(kafka_params, changelog, {0: (checkpoint, value)}, now)
        return found.get(0)

    assert await why(here, b"v9") is None
    # The same offset, another history: another key, time or value there.
    assert await why(Checkpoint(meta.offset, meta.timestamp, b"k1"), b"v9") is not None
    assert await why(Checkpoint(meta.offset, meta.timestamp - 1, b"k9"), b"v9") is not None
    assert await why(here, b"other") is not None
    # A changelog that ends before the checkpoint (a new broker, the topic made again).
    assert "ends" in str(await why(Checkpoint(meta.offset + 10, meta.timestamp, b"k9"), b"v9"))
    # Partitions holding no record end at 0.
    found = await stale_partitions(kafka_params, changelog, {1: (here, b"v9")}, now)
    assert "ends" in found[1]


async def test_no_change_sends_nothing(tmp_path: Path) -> None:
    table = _Table(_App(_Producer(None)), _Topic("unused"), tmp_path)  # never started
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

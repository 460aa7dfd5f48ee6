"""Read and append the ingest ledger topic (which files were already fully published)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from schemas.ledger import FileIngested
from schemas.topics import INGEST_LEDGER


async def read_ledger(bootstrap: str, *, idle_timeout_s: float = 2.0) -> dict[str, FileIngested]:
    """All ledger records by file digest.

    Reads every partition to its high watermark as reported by fetch responses (the local
    broker's ListOffsets answers can be stale, so they are not trusted).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(INGEST_LEDGER.name)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(INGEST_LEDGER.name) or set()
        tps = [TopicPartition(INGEST_LEDGER.name, p) for p in sorted(partitions)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: dict[str, FileIngested] = {}
        pending = set(tps)
        deadline = asyncio.get_running_loop().time() + 60
        while pending and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=int(idle_timeout_s * 1000))
            for messages in batch.values():
                for message in messages:
                    if message.value is None:
                        continue
                    record = FileIngested.model_validate_json(message.value)
                    records[record.file_digest] = record
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


async def append_ledger(bootstrap: str, record: FileIngested) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            INGEST_LEDGER.name,
            key=record.file_digest.encode(),
            value=record.model_dump_json().encode(),
        )
    finally:
        await producer.stop()

"""Read and append the ingest ledger topic (which files were already fully published)."""

from __future__ import annotations

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.reader import read_topic
from schemas.ledger import FileIngested
from schemas.topics import INGEST_LEDGER


async def read_ledger(kafka: KafkaParams) -> dict[str, FileIngested]:
    """All ledger records by file digest."""
    records: dict[str, FileIngested] = {}
    for message in await read_topic(kafka, INGEST_LEDGER.name):
        if message.value is not None:
            record = FileIngested.model_validate_json(message.value)
            records[record.file_digest] = record
    return records


async def append_ledger(kafka: KafkaParams, record: FileIngested) -> None:
    producer = clients.producer(kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            INGEST_LEDGER.name,
            key=record.file_digest.encode(),
            value=record.model_dump_json().encode(),
        )
    finally:
        await producer.stop()

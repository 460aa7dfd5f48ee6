"""Read a whole topic from the beginning to its current end (ledger, audit checks, tools)."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord
from aiokafka.structs import TopicPartition

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import access


async def read_topic(
    kafka: KafkaParams, topic: str, *, poll_timeout_s: float = 1.0, deadline_s: float = 120.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of ``topic`` in partition order (empty if the topic does not exist).

    The end of each partition is the high watermark reported by fetch responses: the local
    broker's ListOffsets answers can be stale, so they are not trusted.
    """
    consumer = clients.consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        await access.refresh_metadata(consumer)
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        by_partition: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {
            tp: [] for tp in tps
        }
        pending = set(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while pending:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {deadline_s:.0f} s")
            batch = await consumer.getmany(*pending, timeout_ms=int(poll_timeout_s * 1000))
            for tp, messages in batch.items():
                by_partition[tp].extend(messages)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return [m for tp in tps for m in by_partition[tp]]
    finally:
        await consumer.stop()

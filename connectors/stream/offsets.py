"""True end offsets of partitions, on Apache Kafka and on the local broker alike.

The local broker (tansu) answers ListOffsets with the first offset of the partition's last record
batch plus one, and a consumer's last fetch high watermark goes stale as soon as someone produces.
A fresh fetch starting inside the last batch (reported end minus one) returns the right high
watermark; on Kafka it returns the same end as ListOffsets.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Protocol, TypeVar

from aiokafka.structs import TopicPartition

from connectors.stream import clients
from connectors.stream.clients import KafkaParams

MAX_POLLS = 100


class Partition(Hashable, Protocol):
    """faust's ``TP`` or aiokafka's ``TopicPartition`` (named tuples of the same fields)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


P = TypeVar("P", bound=Partition)


async def true_end_offsets(kafka: KafkaParams, partitions: Iterable[P]) -> dict[P, int]:
    """End offsets keyed by the given partitions (faust's ``TP`` or aiokafka's)."""
    given = list(partitions)
    if not given:
        return {}
    as_kafka = {_tp(p): p for p in given}
    ends = await _ends(kafka, list(as_kafka))
    return {as_kafka[tp]: end for tp, end in ends.items()}


def _tp(partition: Partition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


async def _ends(kafka: KafkaParams, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    probe = clients.consumer(kafka, enable_auto_commit=False)
    await probe.start()
    try:
        reported = await probe.end_offsets(tps)
        probe.assign(tps)
        for tp in tps:
            probe.seek(tp, max(int(reported[tp]) - 1, 0))
        ends: dict[TopicPartition, int] = {}
        for _ in range(MAX_POLLS):
            await probe.getmany(*[tp for tp in tps if tp not in ends], timeout_ms=200)
            for tp in tps:
                highwater = probe.highwater(tp)
                if tp not in ends and highwater is not None:
                    ends[tp] = max(int(highwater), int(reported[tp]))
            if len(ends) == len(tps):
                return ends
        raise TimeoutError("could not read the high watermarks of some partitions")
    finally:
        await probe.stop()

"""Where the whole consumer group stands: its committed offsets against the true ends.

Several workers share the stream partitions (one consumer group), so no worker can tell from its
own consumer whether the group's input is done: a worker may hold some partitions, or none (more
workers than partitions). The broker can: the group's committed offsets. A batch's offsets are
committed only after its directory writes are acknowledged and its emitted inputs, audit events
and states delivered, so a partition whose committed offset is its end has nothing left to do,
whichever worker held it.

:func:`group_done` reads the committed offsets first and the true ends after: if every committed
offset is at an end read later, every record in the log then was committed, so everything its
processing produced was delivered before (and is below those ends, hence committed too). Nothing
more can come but from outside (an ingest, an admin command).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets


@dataclass(frozen=True)
class GroupPosition:
    """Per partition, the group's committed offset and the partition's end (read after)."""

    committed: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]

    @property
    def behind(self) -> dict[TopicPartition, int]:
        """Records not yet committed, per partition that has some."""
        return {
            tp: end - self.committed[tp]
            for tp, end in self.ends.items()
            if self.committed[tp] < end
        }

    @property
    def done(self) -> bool:
        return not self.behind


def stream_partitions(topics: Iterable[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for topic in topics for p in range(partitions)]


async def committed_offsets(
    kafka: KafkaParams, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets; a partition it never committed counts from the log's
    first offset (the group reads from there first; records gone with retention are not due)."""
    admin = clients.admin(kafka)
    await admin.start()
    try:
        # Named partitions: the local broker does not answer the "all partitions" form.
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    committed = {
        tp: int(found[tp].offset)
        for tp in tps
        if tp in found and found[tp] is not None and found[tp].offset >= 0
    }
    missing = [tp for tp in tps if tp not in committed]
    if missing:
        probe = clients.consumer(kafka, enable_auto_commit=False)
        await probe.start()
        try:
            starts = await probe.beginning_offsets(missing)
        finally:
            await probe.stop()
        committed.update({tp: int(starts[tp]) for tp in missing})
    return committed


async def group_position(
    kafka: KafkaParams, group: str, tps: list[TopicPartition]
) -> GroupPosition:
    """The committed offsets, then the true ends (in that order: see the module docstring)."""
    committed = await committed_offsets(kafka, group, tps)
    ends = await true_end_offsets(kafka, tps)
    return GroupPosition(committed, ends)

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

Workers that stop together (all idle at once) leave the group in turn: :func:`may_leave`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from connectors.logs import get_logger
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets

log = get_logger(__name__)


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


# -- leaving in turn ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    """The group as the broker describes it: its state and its members' ids."""

    state: str  # Apache Kafka: Stable, PreparingRebalance, ...; the local broker: Unknown between
    members: tuple[str, ...]


def may_leave(group: Membership, me: str) -> bool:
    """Whether member ``me`` may leave the group now, when several workers stop together
    (``--until-idle``: each reaches idle at about the same moment).

    1. A member the broker no longer lists may go: it is no member.
    2. Otherwise only while no rebalance is under way (``Stable``) and when ``me`` is the
       smallest member id left: one leave at a time, each once the rebalance the previous one
       started has completed (the members left have joined again).

    Why: the local broker (tansu 0.6) keeps naming a member as the group's leader when it leaves
    while the rebalance another member's leave started is under way; every later join then
    waits, as a follower, for that leader's assignment, forever (seen after two workers stopped
    at idle: the next worker never got a partition). Apache Kafka elects another leader; there
    the turns cost one rebalance a worker.
    """
    if me not in group.members:
        return True
    return group.state == "Stable" and me == min(group.members)


async def describe_group(kafka: KafkaParams, group: str) -> Membership:
    admin = clients.admin(kafka)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:  # (error, group, state, protocol type, protocol, ...)
            if described[1] == group:
                return Membership(str(described[2]), tuple(str(m[0]) for m in described[5]))
    return Membership("Dead", ())


Describe = Callable[[], Awaitable[Membership]]


async def leave_in_turn(
    describe: Describe, me: str, patience_s: float, check_s: float = 0.5
) -> bool:
    """Wait until :func:`may_leave` lets ``me`` go; False if the group did not move (no member
    left, no state changed) for ``patience_s``: a member that crashed holds the turns up, and a
    worker that waits longer only delays its own stop."""
    loop = asyncio.get_running_loop()
    last: Membership | None = None
    moved = loop.time()
    while True:
        try:
            group = await describe()
        except Exception as exc:  # the broker busy or away: ask again, within the patience
            log.warning("worker.group_unknown", error=type(exc).__name__)
        else:
            if may_leave(group, me):
                return True
            if group != last:
                last, moved = group, loop.time()
        if loop.time() - moved >= patience_s:
            return False
        await asyncio.sleep(check_s)

"""Leaving the group on the local broker (tansu): the two ways it went wrong.

- A stopped consumer leaves its group even from generation 0. Without
  ``faust_compat.patches.leave_group_from_first_generation`` aiokafka skips LeaveGroup for
  generation 0, which is tansu's first: the member stays until its session expires and the next
  worker's join waits.
- Members that stop together leave in turn (``connectors.stream.group.leave_in_turn``). When the
  leader left during the rebalance a follower's leave had started, tansu kept naming it as the
  leader, and the next consumer's join waited for its assignment forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat.patches import leave_group_from_first_generation
from connectors.stream.group import describe_group, leave_in_turn
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration


async def _members(bootstrap: str, group: str) -> list[str]:
    return list((await describe_group(KafkaParams(bootstrap=bootstrap), group)).members)


async def test_a_consumer_stopped_in_generation_zero_leaves_the_group(
    local_services: LocalServices,
) -> None:
    leave_group_from_first_generation()
    bootstrap = local_services.kafka_bootstrap
    topic, group = f"entsync.test.leave.{uuid.uuid4().hex[:8]}", f"leave-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        await consumer.getone()
        generation = consumer._coordinator.generation
        assert len(await _members(bootstrap, group)) == 1
    finally:
        await consumer.stop()
    # The case the fix is for (on Apache Kafka the first generation is 1 and aiokafka leaves).
    assert generation == 0
    assert await _members(bootstrap, group) == []


def _group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )


async def _assigned(consumer: AIOKafkaConsumer, within_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if consumer.assignment():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_members_stopping_together_leave_in_turn_and_the_next_one_joins(
    local_services: LocalServices,
) -> None:
    leave_group_from_first_generation()
    bootstrap = local_services.kafka_bootstrap
    kafka = KafkaParams(bootstrap=bootstrap)
    topic, group = f"entsync.test.turns.{uuid.uuid4().hex[:8]}", f"turns-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    leader = _group_consumer(bootstrap, topic, group)  # alone at first: the group's leader
    await leader.start()
    follower = _group_consumer(bootstrap, topic, group)
    started = [leader, follower]
    try:
        assert await _assigned(leader, 30)
        await follower.start()
        assert await _assigned(follower, 30)
        await asyncio.sleep(1.5)  # the rebalance the follower's join started is over

        async def stop_in_turn(consumer: AIOKafkaConsumer) -> None:
            member = consumer._coordinator.member_id
            await leave_in_turn(lambda: describe_group(kafka, group), member, patience_s=20)
            await consumer.stop()

        # The follower first, the leader right after: the order that left tansu naming a
        # leader gone when both simply stopped.
        first = asyncio.ensure_future(stop_in_turn(follower))
        await asyncio.sleep(0.1)
        await asyncio.gather(first, stop_in_turn(leader))
        assert await _members(bootstrap, group) == []

        after = _group_consumer(bootstrap, topic, group)
        started.append(after)

        async def join() -> bool:
            await after.start()  # (waits for the join: forever, in the case fixed)
            return await _assigned(after, 20)

        try:
            joined = await asyncio.wait_for(join(), 30)
        except TimeoutError:
            joined = False
        assert joined, "the next member never got its partitions"
    finally:
        for consumer in started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.stop(), 10)

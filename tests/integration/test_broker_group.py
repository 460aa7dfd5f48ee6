"""A stopped consumer leaves its group on the local broker, even from generation 0.

Without ``faust_compat.patches.leave_group_from_first_generation`` aiokafka skips LeaveGroup
for generation 0, which is tansu's first: the member stays until its session expires and the
next worker's join waits.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from connectors.stream.faust_compat.patches import leave_group_from_first_generation
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration


async def _members(bootstrap: str, group: str) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.groups
        return list(described[5])  # (error, group, state, protocol type, protocol, members)
    finally:
        await admin.close()


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

"""The worker refuses stream topics whose partition count is not the configured one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from entsync.kafka_clients import kafka_params
from entsync.settings import ConfigurationError
from entsync.worker import run_worker
from schemas.topics import ENTITIES, FEED
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration


async def _create(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def test_a_feed_topic_with_another_partition_count_is_refused_before_anything_runs(
    local_services: LocalServices,
) -> None:
    # A run of its own (private topic names), so the session's other tests are not affected.
    settings = local_services.settings().model_copy(
        update={"replay_id": f"parts-{uuid.uuid4().hex[:8]}", "topic_partitions": 4}
    )
    feed = settings.topic_name(FEED)
    asyncio.run(_create(local_services.kafka_bootstrap, feed, 2))
    with pytest.raises(ConfigurationError) as refused:
        run_worker(settings, kafka_params(settings), until_idle=True, timeout_s=30)
    message = str(refused.value)
    assert f"{feed} has 2 partitions" in message and "ENTSYNC_TOPIC_PARTITIONS is 4" in message
    assert settings.topic_name(ENTITIES) not in message  # created by the worker with 4: fine

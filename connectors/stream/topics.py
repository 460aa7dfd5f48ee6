"""Create the project's topics (idempotent) so producers and the worker agree on partitions."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import ALL_TOPICS

_TOPIC_ALREADY_EXISTS = 36


class TopicSetupError(RuntimeError):
    pass


async def ensure_topics(
    bootstrap: str, partitions: int, replication: int = 1, extra: Sequence[str] = ()
) -> None:
    """Create every topic of ``schemas.topics`` (and ``extra`` ones) that does not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = dict.fromkeys([*(t.name for t in ALL_TOPICS), *extra])
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication) for name in missing]
        )
        for topic, code, message in getattr(response, "topic_errors", []):
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise TopicSetupError(f"cannot create topic {topic}: error {code} {message}")
    finally:
        await admin.close()

"""Create the project's topics (idempotent) so producers and the worker agree on partitions."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.errors import ConfigurationError
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import access
from schemas.topics import ALL_TOPICS

_TOPIC_ALREADY_EXISTS = 36


class TopicSetupError(RuntimeError):
    pass


async def ensure_topics(kafka: KafkaParams, partitions: int, extra: Sequence[str] = ()) -> None:
    """Create every topic of ``schemas.topics`` (and ``extra`` ones) that does not exist yet,
    with the replication, retention and ``min.insync.replicas`` of ``kafka``; existing topics are
    left as they are."""
    admin = clients.admin(kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = dict.fromkeys([*(t.name for t in ALL_TOPICS), *extra])
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [clients.new_topic(kafka, name, partitions) for name in missing]
        )
        for topic, code, message in getattr(response, "topic_errors", []):
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise TopicSetupError(f"cannot create topic {topic}: error {code} {message}")
    finally:
        await admin.close()


async def partition_counts(kafka: KafkaParams, names: Sequence[str]) -> dict[str, int]:
    """Each topic's partition count (0: the topic does not exist)."""
    consumer = clients.consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        await access.refresh_metadata(consumer)
        return {name: len(consumer.partitions_for_topic(name) or ()) for name in names}
    finally:
        await consumer.stop()


async def require_partitions(kafka: KafkaParams, partitions: int, names: Sequence[str]) -> None:
    """Refuse topics whose partition count is not the configured one.

    The worker keeps each feed key's state, and scans a snapshot's keys, by the partition the
    key's messages arrive on, which is the key's partition under the default partitioner over
    ``ENTSYNC_TOPIC_PARTITIONS`` partitions only if the topic has that many.
    """
    counts = await partition_counts(kafka, names)
    wrong = [f"{name} has {n}" for name, n in counts.items() if n and n != partitions]
    if wrong:
        raise ConfigurationError(
            f"{', '.join(wrong)} partitions and ENTSYNC_TOPIC_PARTITIONS is {partitions}: "
            "set it to the topics' partition count"
        )


async def ensure_compacted(kafka: KafkaParams, names: Sequence[str], partitions: int) -> list[str]:
    """Create the compacted topics of ``names`` (table changelogs) that do not exist yet, as
    faust would; the names created."""
    admin = clients.admin(kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in dict.fromkeys(names) if name not in existing]
        if missing:
            response = await admin.create_topics(
                [clients.new_topic(kafka, name, partitions, compacted=True) for name in missing]
            )
            for topic, code, message in getattr(response, "topic_errors", []):
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise TopicSetupError(f"cannot create topic {topic}: error {code} {message}")
        return missing
    finally:
        await admin.close()

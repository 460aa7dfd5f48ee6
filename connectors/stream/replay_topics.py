"""Replay at the edge: read the live topics' external inputs, copy them stage by stage into the
replay's private topics, and run the worker in the replay's own consumer group.

The replay never writes a live topic: its settings carry a ``replay_id``, so the worker's app id
(consumer group, table changelogs) and its feed, entities, audit, decisions and lifecycle topics
are its own (``schemas.topics.run_topic_name``). Copies keep the original partition and broker
timestamp, so every cause (and every time written in the directory) is the original's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectors.logs import get_logger
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.deployment import StreamTopics
from connectors.stream.reader import read_topic
from connectors.stream.topics import partition_counts
from schemas.topics import ENTITIES, FEED, TopicSpec
from sync.replay import ExternalInput, TopicRecord, entity_commands, feed_inputs, merge

log = get_logger(__name__)


class ReplayRefused(RuntimeError):
    """The replay cannot run as asked (message for the operator)."""


async def _records(kafka: KafkaParams, spec: TopicSpec) -> list[TopicRecord]:
    return [
        TopicRecord(
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            timestamp_ms=m.timestamp,
            key=m.key,
            value=m.value,
        )
        for m in await read_topic(kafka, spec.name, deadline_s=600.0)
    ]


def read_inputs(kafka: KafkaParams) -> list[ExternalInput]:
    """The external inputs of the live feed and entities topics, merged by broker time."""

    async def run() -> tuple[list[TopicRecord], list[TopicRecord]]:
        return await _records(kafka, FEED), await _records(kafka, ENTITIES)

    feed, entities = asyncio.run(run())
    inputs = merge([*feed_inputs(feed), *entity_commands(entities)])
    log.info("replay.inputs_read", feed_messages=len(feed), entity_messages=len(entities))
    return inputs


def check_topics(
    kafka: KafkaParams, partitions: int, private: StreamTopics, replay_id: str
) -> None:
    """The live topics have ``partitions`` partitions; the replay's private copies are new."""
    live = [FEED.name, ENTITIES.name]
    mine = list(private.streams())
    counts = asyncio.run(partition_counts(kafka, [*live, *mine]))
    for name in live:
        if counts[name] not in (0, partitions):
            raise ReplayRefused(
                f"{name} has {counts[name]} partitions and ENTSYNC_TOPIC_PARTITIONS is "
                f"{partitions}: set it to the live topics' count"
            )
    used = [name for name in mine if counts[name]]
    if used and any(asyncio.run(read_topic(kafka, name)) for name in used):
        raise ReplayRefused(
            f"replay id {replay_id!r} was already used (its topics hold messages): "
            "choose another --replay-id"
        )


@dataclass
class StageFeeder:
    """Copies one stage per idle point of the replay worker into its private topics."""

    topics: StreamTopics  # the replay's private topics
    kafka: KafkaParams
    stages: Sequence[Sequence[ExternalInput]]
    on_stage: Callable[[int, int], None] | None = None
    done: int = 0
    copied: int = 0

    async def __call__(self) -> bool:
        """Copy the next stage (delivery awaited); False once there is none."""
        if self.done >= len(self.stages):
            return False
        topics = {"feed": self.topics.feed, "entities": self.topics.entities}
        stage = self.stages[self.done]
        producer = clients.producer(self.kafka, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topics[item.role],
                    key=item.record.key,
                    value=item.record.value,
                    partition=item.record.partition,
                    timestamp_ms=item.record.timestamp_ms,
                )
                for item in stage
            ]
            for fut in futures:
                await fut
        finally:
            await producer.stop()
        self.done += 1
        self.copied += len(stage)
        log.info("replay.stage_copied", stage=self.done, of=len(self.stages), inputs=len(stage))
        if self.on_stage is not None:
            self.on_stage(self.done, len(self.stages))
        return True

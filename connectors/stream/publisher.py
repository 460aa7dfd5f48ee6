"""Publish feed events on ``entsync.feed.v1``, keyed by their stable key."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from schemas.feed import FeedEvent, FeedMessage, SnapshotCompleted
from schemas.topics import FEED


class FeedPublisher:
    """An idempotent producer: ``acks=all``, ordered per key, delivery awaited on ``flush``."""

    def __init__(self, kafka: KafkaParams) -> None:
        self._producer = clients.producer(
            kafka,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=30000,
        )
        self.published = 0

    async def __aenter__(self) -> FeedPublisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def publish(self, event: FeedEvent) -> None:
        if isinstance(event, SnapshotCompleted):
            # Every record of the snapshot must be in its partition before the completion is
            # seen: the coordinator's scans, sent after it, then come after them everywhere.
            await self._producer.flush()
        value = FeedMessage(event).model_dump_json().encode()
        await self._producer.send(FEED.name, key=event.key.encode(), value=value)
        self.published += 1

    async def publish_all(self, events: Iterable[FeedEvent]) -> int:
        count = 0
        for event in events:
            await self.publish(event)
            count += 1
        await self._producer.flush()
        return count

    async def flush(self) -> None:
        await self._producer.flush()

"""Publish the bridge's events: audit, bridge decisions, J+1 sync, session revocations."""

from __future__ import annotations

from types import TracebackType

from pydantic import BaseModel

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.topics import ensure_topics
from schemas.audit import DirectoryChanged
from schemas.bridge import (
    BridgeEvent,
    BridgeEventMessage,
    EduConnectGuardianChanged,
    SessionsRevoked,
)
from schemas.topics import AUDIT, BRIDGE_EVENTS, EDUCONNECT_SYNC, SESSIONS, TopicSpec


class EventSink:
    """An ``acks=all`` producer; every ``send`` waits for the broker's acknowledgement."""

    def __init__(self, kafka: KafkaParams, partitions: int = 4) -> None:
        self._kafka = kafka
        self._partitions = partitions
        self._producer = clients.producer(kafka, acks="all", request_timeout_ms=30000)
        self.sent: list[tuple[str, BaseModel]] = []

    async def __aenter__(self) -> EventSink:
        await ensure_topics(self._kafka, self._partitions)
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def _send(self, topic: TopicSpec, key: str, value: BaseModel) -> None:
        await self._producer.send_and_wait(
            topic.name, key=key.encode(), value=value.model_dump_json().encode()
        )
        self.sent.append((topic.name, value))

    async def audit(self, event: DirectoryChanged) -> None:
        await self._send(AUDIT, event.entity_id, event)

    async def bridge(self, key: str, event: BridgeEvent) -> None:
        await self._send(BRIDGE_EVENTS, key, BridgeEventMessage(event))

    async def educonnect(self, event: EduConnectGuardianChanged) -> None:
        await self._send(EDUCONNECT_SYNC, event.guardian_id, event)

    async def sessions(self, event: SessionsRevoked) -> None:
        await self._send(SESSIONS, event.bridge_id, event)

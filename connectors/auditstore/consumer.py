"""``entsync audit consume``: the audit topic into the audit store, each event exactly once.

A plain aiokafka consumer without a consumer group: partitions are assigned by hand and each is
read from the position the store holds (the offset after its chain's head), never from Kafka's
committed offsets, so the store's transaction is the only commit. A batch of one partition is one
transaction (:meth:`AuditStore.append`); a crash before it commits leaves nothing, after it the
next run starts after it.

Offsets the broker does not deliver (a hole between the stored position and the next message,
e.g. records deleted by the broker's retention before they were read, or compaction) are gaps:
logged (``audit.gap``), stored, and shown by ``entsync audit gaps`` and ``verify``. A message
below the stored position means the topic was recreated or the store belongs to another cluster:
the consumer stops rather than mix two histories.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

from connectors.auditstore.retention import cutoff_for, prune
from connectors.auditstore.schema import incoming
from connectors.auditstore.store import AuditStore
from connectors.logs import get_logger
from connectors.monitoring import metrics
from connectors.monitoring.server import Check, HealthServer
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets
from schemas.topics import AUDIT
from sync.auditchain import DUPLICATE, EVENT, Gap, OffsetRegressed
from sync.auditindex import utc_text

log = get_logger(__name__)

POLL_MS: Final = 500
REFRESH_S: Final = 10.0
PRUNE_EVERY_S: Final = 3600.0
# A timeout before the end is a failure like any other, as for the worker (entsync.exit_codes).
EXIT_OK, EXIT_ERROR = 0, 1


@dataclass
class ConsumeProgress:
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    gaps: list[tuple[int, Gap]] = field(default_factory=list)
    pruned: int = 0
    remaining: int | None = None  # until-idle: messages left to the ends seen at start


@dataclass
class ConsumeResult:
    progress: ConsumeProgress
    elapsed_s: float
    exit_code: int = EXIT_OK
    error: str | None = None
    topic_found: bool = True


ProgressCallback = Callable[[ConsumeProgress], None]


def now_text() -> str:
    return utc_text(datetime.now(UTC))


@dataclass
class AuditConsumer:
    store: AuditStore
    kafka: KafkaParams
    topic: str = AUDIT.name
    batch_max: int = 1000
    retention_days: int | None = None
    on_progress: ProgressCallback | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    progress: ConsumeProgress = field(default_factory=ConsumeProgress)
    assigned: list[TopicPartition] = field(default_factory=list)  # for /readyz

    async def run(self, until_idle: bool, timeout_s: float | None) -> ConsumeResult:
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        result = ConsumeResult(self.progress, 0.0)
        consumer = clients.consumer(
            self.kafka,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_max,
        )
        await consumer.start()
        try:
            await self._loop(consumer, until_idle, deadline, result)
        except OffsetRegressed as exc:
            result.exit_code, result.error = (
                EXIT_ERROR,
                (
                    f"{exc}: the audit topic was recreated, or this store belongs to another "
                    "cluster; use a new store (--db) for this topic"
                ),
            )
        finally:
            await consumer.stop()
        result.elapsed_s = time.monotonic() - started
        log.info(
            "audit.consumed",
            stored=self.progress.stored,
            duplicates=self.progress.duplicates,
            invalid=self.progress.invalid,
            gaps=len(self.progress.gaps),
            exit_code=result.exit_code,
        )
        return result

    async def _loop(
        self,
        consumer: AIOKafkaConsumer,
        until_idle: bool,
        deadline: float | None,
        result: ConsumeResult,
    ) -> None:
        self._prune()
        assigned = await self._assign(consumer)
        if until_idle and not assigned:
            result.topic_found = False
            return
        if until_idle:
            ends = await true_end_offsets(self.kafka, assigned)
            self.progress.remaining = sum(
                max(0, ends[tp] - self.store.head(self.topic, tp.partition).next_offset)
                for tp in assigned
            )
            self._report()
        last_refresh = last_prune = time.monotonic()
        while not self.stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                result.exit_code = EXIT_ERROR
                result.error = "timed out before the audit topic was consumed to its end"
                return
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=self.batch_max)
            for tp, messages in sorted(batch.items()):
                self._store(tp.partition, messages)
                end = consumer.highwater(tp)
                if end is not None:
                    lag = max(0, end - messages[-1].offset - 1)
                    metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
            if batch:
                continue
            if until_idle and await self._caught_up(consumer, assigned):
                return
            if time.monotonic() - last_refresh > REFRESH_S:
                last_refresh = time.monotonic()
                assigned = await self._assign(consumer, assigned)
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                self._prune()

    async def _assign(
        self, consumer: AIOKafkaConsumer, current: list[TopicPartition] | None = None
    ) -> list[TopicPartition]:
        """Assign every partition of the topic (new ones too), each at its stored position."""
        await consumer._client.force_metadata_update()
        partitions = sorted(consumer.partitions_for_topic(self.topic) or set())
        wanted = [TopicPartition(self.topic, p) for p in partitions]
        if current is not None and wanted == current:
            return current
        self.assigned = wanted
        consumer.assign(wanted)
        # Called between batches only: everything fetched so far is stored, so the store's
        # positions are the consumer's.
        for tp in wanted:
            consumer.seek(tp, self.store.head(self.topic, tp.partition).next_offset)
        return wanted

    def _store(self, partition: int, messages: list[ConsumerRecord[bytes, bytes]]) -> None:
        batch = [incoming(self.topic, partition, m.offset, m.timestamp, m.value) for m in messages]
        appended = self.store.append(self.topic, partition, batch, now_text())
        statuses = [link.fields["status"] for link in appended.links]
        self.progress.stored += statuses.count(EVENT)
        self.progress.duplicates += statuses.count(DUPLICATE)
        invalid = len(statuses) - statuses.count(EVENT) - statuses.count(DUPLICATE)
        self.progress.invalid += invalid
        metrics.AUDIT_EVENTS.labels("stored").inc(statuses.count(EVENT))
        metrics.AUDIT_EVENTS.labels("duplicate").inc(statuses.count(DUPLICATE))
        metrics.AUDIT_EVENTS.labels("invalid").inc(invalid)
        metrics.AUDIT_GAPS.inc(len(appended.gaps))
        if self.progress.remaining is not None:
            self.progress.remaining = max(0, self.progress.remaining - len(statuses))
        for gap in appended.gaps:
            self.progress.gaps.append((partition, gap))
            log.warning(
                "audit.gap", topic=self.topic, partition=partition, start=gap.start, end=gap.end
            )
        log.info(
            "audit.chain.head",
            topic=self.topic,
            partition=partition,
            offset=appended.head.offset,
            hash=appended.head.hash,
            records=len(statuses),
        )
        self._report()

    async def _caught_up(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> bool:
        ends = await true_end_offsets(self.kafka, assigned)
        for tp in assigned:
            position = max(
                await consumer.position(tp), self.store.head(self.topic, tp.partition).next_offset
            )
            if position < ends[tp]:
                return False
        return True

    def _prune(self) -> None:
        if self.retention_days is None:
            return
        removed = prune(self.store, cutoff_for(self.retention_days, datetime.now(UTC)), now_text())
        self.progress.pruned += sum(removed.values())

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


def consumer_checks(consumer: AuditConsumer) -> dict[str, Check]:
    """/readyz of the audit consumer: its store answers, and it has the topic's partitions."""

    async def store_answers() -> str | None:
        consumer.store.head(consumer.topic, 0)
        return None

    async def assigned() -> str | None:
        return None if consumer.assigned else "no partition assigned"

    return {"store": store_answers, "partitions": assigned}


def run_consumer(
    consumer: AuditConsumer,
    until_idle: bool,
    timeout_s: float | None,
    health: socket.socket | None = None,
) -> ConsumeResult:
    """Run until idle (or the timeout), or until SIGINT / SIGTERM; serve the metrics and health
    endpoints on ``health`` meanwhile (see :mod:`connectors.monitoring.server`)."""

    async def main() -> ConsumeResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, consumer.stop.set)
        server = None if health is None else HealthServer(health, consumer_checks(consumer))
        if server is not None:
            await server.start()
        try:
            return await consumer.run(until_idle, timeout_s)
        finally:
            if server is not None:
                await server.stop()

    return asyncio.run(main())

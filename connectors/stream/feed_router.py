"""The ``route_feed`` agent's batch: feed events and lifecycle controls -> entity inputs.

Per batch: the messages are parsed and routed by the pure step :func:`sync.feedbatch.route_batch`
(the one the simulator and ``replay --dry-run`` use) from the table's states, then, in this
order, the entity inputs are delivered, the controls and snapshot decisions are delivered, and
last the keys' states are written (:mod:`connectors.stream.changelog`). A crash anywhere is
repaired by re-reading the batch: routing is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from connectors.logs import get_logger
from connectors.monitoring import metrics
from connectors.stream import monitor
from connectors.stream import partition_scans as shell
from connectors.stream.changelog import known_partitions, write_through
from connectors.stream.intake import EntityEnds
from connectors.stream.outbox import cause_from, send, send_inputs
from connectors.stream.ports import StreamEvent, Table, Topic
from connectors.stream.progress import Progress
from schemas.lifecycle import FeedTopicMessage, SchoolYearState, ScopeState
from schemas.state import SourceState
from sync.absence import Guard
from sync.feedbatch import FeedRead, StateChange, TableKey, YearOf, route_batch

log = get_logger(__name__)


class TableView:
    """The routing table as :func:`sync.feedbatch.route_batch` reads it, for one batch."""

    def __init__(self, sources: Table, partitions: int) -> None:
        self.sources = sources
        self.partitions = partitions
        self._memo: shell.ScanMemo | None = None  # shared by the batch's snapshot scans
        self._where: dict[bytes, int] = {}  # partitions of the keys the batch changed

    def _raw(self, key: bytes) -> bytes | None:
        raw: bytes | None = self.sources.get(key)
        return raw

    def source(self, key: str) -> SourceState | None:
        raw = self._raw(key.encode())
        return None if raw is None else SourceState.model_validate_json(raw)

    def scope(self, key: str) -> ScopeState | None:
        raw = self._raw(key.encode())
        return None if raw is None else ScopeState.model_validate_json(raw)

    def year(self, partition: int) -> SchoolYearState | None:
        raw = self._raw(shell.year_key(partition, self.partitions))
        return None if raw is None else SchoolYearState.model_validate_json(raw)

    def sources_of(
        self, partition: int, scope: str, category: str, pending: Mapping[str, StateChange]
    ) -> Iterable[tuple[str, SourceState]]:
        overlay = {key.encode(): change.state for key, change in pending.items()}
        self._where.update((key.encode(), change.partition) for key, change in pending.items())
        if self._memo is None:
            known = known_partitions(self.sources)
            self._memo = shell.ScanMemo(self.partitions, self._where, known)
        found = shell.source_states(
            self.sources, overlay, partition, self.partitions, scope, self._memo, category
        )
        return [(key.decode(), state) for key, state in found]


def table_key(key: TableKey, partitions: int) -> bytes:
    if isinstance(key, YearOf):
        return shell.year_key(key.partition, partitions)
    return key.encode()


def feed_read(event: StreamEvent) -> FeedRead:
    """A feed topic message as :func:`sync.feedbatch.route_batch` reads it."""
    message = FeedTopicMessage.model_validate_json(event.value).root
    return FeedRead(
        key=event.key.decode(),
        message=message,
        cause=cause_from(event, f"feed.{message.type}", getattr(message, "source", None)),
        partition=event.message.partition,
        timestamp=event.message.timestamp,
    )


@dataclass
class FeedRouter:
    """What ``route_feed`` works with: its table, the topics it writes, its settings."""

    sources: Table  # feed-key states (SourceState JSON) and control states
    feed_topic: Topic
    entities_topic: Topic
    lifecycle_topic: Topic
    partitions: int
    namespace: str
    guard: Guard
    progress: Progress
    tally: monitor.Tally | None = None  # the metrics' counts of the table
    ends: EntityEnds = field(default_factory=EntityEnds)  # where its inputs landed (intake)

    async def route_batch(self, batch: Sequence[StreamEvent]) -> None:
        """Route one batch (:func:`sync.feedbatch.route_batch`), then deliver: the entity
        inputs, the controls and decisions, and last the states."""
        routed = route_batch(
            [feed_read(event) for event in batch],
            TableView(self.sources, self.partitions),
            partitions=self.partitions,
            namespace=self.namespace,
            guard=self.guard,
        )
        await send_inputs(self.entities_topic, routed.inputs, self.ends)
        futures = []
        for control in routed.controls:
            value = FeedTopicMessage(control.message).model_dump_json().encode()
            # A control carries the time of the input that caused it (a SnapshotCompleted, a
            # HoldDecided), so absence is dated by its evidence: a replay dates it the same.
            futures.append(
                await self.feed_topic.send(
                    key=control.message.key.encode(),
                    value=value,
                    partition=control.partition,  # None: a tally, to its coordinator
                    timestamp=control.timestamp,
                )
            )
        decided = routed.decisions
        futures += await send(
            self.lifecycle_topic,
            ((f"snapshot:{d.category.value}:{d.scope}", d.model_dump_json()) for d in decided),
        )
        for fut in futures:
            await fut
        for d in decided:
            monitor.snapshot_decided(d)
            log.info(
                "lifecycle.snapshot_decided",
                category=d.category.value,
                scope=d.scope,
                outcome=d.outcome,
                active=d.active,
                absent=d.absent,
            )
        # After the outputs are delivered: a state that says "routed" must not outlive a crash
        # that lost what it routed (the re-read record would then route nothing).
        writes = {
            table_key(key, self.partitions): (
                change.partition,
                None if change.state is None else change.state.model_dump_json().encode(),
            )
            for key, change in routed.changes.items()
        }
        for fut in await write_through(self.sources, writes):
            await fut
        if self.tally is not None:
            for key, change in routed.changes.items():
                self.tally.scope_changed(table_key(key, self.partitions), change.state)
        for (category, outcome), count in routed.records.items():
            metrics.FEED_RECORDS.labels(category, outcome).inc(count)
        self.progress.feed_events += len(batch)
        self.progress.control_events += routed.controls_read
        log.debug(
            "route_feed.batch",
            offsets=sorted((e.message.partition, e.message.offset) for e in batch),
        )

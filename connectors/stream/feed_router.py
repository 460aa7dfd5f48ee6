"""The ``route_feed`` agent's batch: feed events and lifecycle controls -> entity inputs.

Per batch: each event is parsed and routed by the pure core (:func:`sync.routing.route`; the
snapshot coordinator :func:`sync.absence.coordinate`; scans and tallies of a partition's keys),
then, in this order, the entity inputs are delivered, the controls and snapshot decisions are
delivered, and last the keys' states are written (:mod:`connectors.stream.changelog`). A crash
anywhere is repaired by re-reading the batch: routing is idempotent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.logs import get_logger
from connectors.monitoring import metrics
from connectors.stream import lifecycle as shell
from connectors.stream import monitor
from connectors.stream.changelog import known_partitions, write_through
from connectors.stream.outbox import cause_from, send, send_inputs
from connectors.stream.progress import Progress
from schemas.entities import EntityInput
from schemas.feed import RecordDeleted, RecordRejected, SnapshotCompleted, SnapshotStarted
from schemas.lifecycle import (
    FeedTopicMessage,
    HoldDecided,
    SchoolYearState,
    ScopeState,
    SnapshotScan,
    SnapshotTally,
    YearCommand,
)
from schemas.state import SourceState
from sync import absence
from sync.absence import Guard
from sync.routing import Routed, route

log = get_logger(__name__)


@dataclass
class FeedRouter:
    """What ``route_feed`` works with: its table, the topics it writes, its settings."""

    sources: Any  # the faust table of feed-key states (SourceState JSON, control states)
    feed_topic: Any
    entities_topic: Any
    lifecycle_topic: Any
    partitions: int
    namespace: str
    guard: Guard
    progress: Progress
    tally: monitor.Tally | None = None  # the metrics' counts of the table

    async def route_batch(self, batch: Sequence[Any]) -> None:
        """Route one batch: states, entity inputs, controls and decisions, then the states."""
        sources, partitions, guard, progress = (
            self.sources,
            self.partitions,
            self.guard,
            self.progress,
        )
        new_states: dict[bytes, Any] = {}  # SourceState, or a control key's state; None: gone
        changed: set[bytes] = set()  # unchanged states are not written back
        where: dict[bytes, int] = {}  # each put key's partition: that of the message causing it
        outgoing: list[EntityInput] = []
        # (partition, control message, time of the event that caused it) on the feed topic
        controls: list[tuple[int, Any, float | None]] = []
        decided: list[Any] = []  # snapshot decisions for entsync.lifecycle.v1
        memo: shell.ScanMemo | None = None  # shared by the batch's snapshot scans
        controls_read = 0
        records: Counter[tuple[str, str]] = Counter()  # (category, outcome) for the metrics

        def current(key: bytes, model: Any) -> Any:
            if key in new_states:
                return new_states[key]
            raw = sources.get(key)
            return None if raw is None else model.model_validate_json(raw)

        def put(key: bytes, state: Any, before: Any, partition: int) -> None:
            new_states[key] = state
            where[key] = partition
            if state is not before:
                changed.add(key)

        for event in batch:
            key = event.key
            message = FeedTopicMessage.model_validate_json(event.value).root
            cause = cause_from(event, f"feed.{message.type}", getattr(message, "source", None))
            partition = event.message.partition
            controls_read += isinstance(message, SnapshotScan | SnapshotTally)
            match message:
                case YearCommand():
                    ykey = shell.year_key(partition, partitions)
                    year = current(ykey, SchoolYearState)
                    year = year or SchoolYearState()
                    put(
                        ykey,
                        absence.apply_year(year, message.action, message.school_year, message.at),
                        None,
                        partition,  # the year key hashes to its partition
                    )
                case SnapshotStarted() | SnapshotCompleted() | SnapshotTally() | HoldDecided():
                    prev = current(key, ScopeState)
                    year = current(shell.year_key(partition, partitions), SchoolYearState)
                    step = absence.coordinate(
                        prev,
                        message,
                        key=message.key,
                        at=cause.at,
                        partitions=partitions,
                        year=year or SchoolYearState(),
                        guard=guard,
                    )
                    put(key, step.state, prev, partition)
                    stamp = event.message.timestamp
                    controls.extend((scan.partition, scan, stamp) for scan in step.scans)
                    decided.extend(step.decisions)
                case SnapshotScan():
                    memo = memo or shell.ScanMemo(partitions, where, known_partitions(sources))
                    local = shell.source_states(
                        sources,
                        new_states,
                        message.partition,
                        partitions,
                        message.snapshot.scope,
                        memo,
                        message.snapshot.category.value,
                    )
                    if message.phase == "tally":
                        active, absent = absence.tally((s for _, s in local), message.snapshot)
                        tally = SnapshotTally(
                            key=message.key,
                            snapshot_id=message.snapshot.snapshot_id,
                            partition=message.partition,
                            partitions=message.partitions,
                            active=active,
                            absent=absent,
                        )
                        controls.append((-1, tally, event.message.timestamp))
                        continue
                    removal_cause = cause.model_copy(
                        update={
                            "rule": message.rule,
                            "source_file_digest": message.snapshot.snapshot_id,
                        }
                    )
                    for skey, state in list(local):
                        if absence.is_absent(state, message.snapshot):
                            removed, removal = absence.mark_absent(
                                state, message.snapshot, removal_cause
                            )
                            put(skey, removed, None, message.partition)
                            outgoing.append(removal)
                case _:
                    prev = current(key, SourceState)
                    routed = route(prev, message, cause, self.namespace)
                    put(key, routed.state, prev, partition)
                    outgoing.extend(routed.inputs)
                    records[message.source.category.value, record_outcome(message, routed)] += 1
        await send_inputs(self.entities_topic, outgoing)
        futures = []
        for partition, control, stamp in controls:
            value = FeedTopicMessage(control).model_dump_json().encode()
            target = None if partition < 0 else partition  # a tally goes to its coordinator
            # A control carries the time of the input that caused it (a SnapshotCompleted, a
            # HoldDecided), so absence is dated by its evidence: a replay dates it the same.
            futures.append(
                await self.feed_topic.send(
                    key=control.key.encode(), value=value, partition=target, timestamp=stamp
                )
            )
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
            key: (
                where[key],
                None if new_states[key] is None else new_states[key].model_dump_json().encode(),
            )
            for key in changed
        }
        for fut in await write_through(sources, writes):
            await fut
        if self.tally is not None:
            for key in changed:
                self.tally.scope_changed(key, new_states[key])
        for (category, outcome), count in records.items():
            metrics.FEED_RECORDS.labels(category, outcome).inc(count)
        progress.feed_events += len(batch)
        progress.control_events += controls_read
        log.debug(
            "route_feed.batch",
            offsets=sorted((e.message.partition, e.message.offset) for e in batch),
        )


def record_outcome(message: Any, routed: Routed) -> str:
    """How a feed record was taken, for ``entsync_feed_records_total``."""
    if isinstance(message, RecordRejected):
        return "rejected"
    if not routed.inputs:
        return "unchanged"
    if isinstance(message, RecordDeleted):
        return "deleted"
    payload = getattr(message, message.type.split(".")[0], None)
    return "held" if getattr(payload, "held_reasons", ()) else "changed"

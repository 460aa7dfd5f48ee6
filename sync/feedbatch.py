"""One batch of the feed topic routed: the step the ``route_feed`` agent and the simulator share.

The feed topic carries feed events (records of the files) and lifecycle controls. Per message,
in the batch's order:

1. a year command (freeze, open, close a school year) updates its partition's calendar
   (:func:`sync.absence.apply_year`);
2. a snapshot's start and end, a partition's tally and an operator's hold decision go to the
   snapshot's coordinator (:func:`sync.absence.coordinate`), which may send scans to every
   partition and decide the snapshot (applied, held, ...);
3. a scan's ``tally`` phase counts the partition's active and absent keys of the snapshot and
   sends the count to the coordinator; its ``apply`` phase marks each absent key removed
   (:func:`sync.absence.mark_absent`), in key order, the removal's cause naming the scan's
   rule and the snapshot;
4. any other message is a record, routed by :func:`sync.routing.route` from its key's state.

A message sees the states the batch's earlier messages left. The outcome lists the changed
states (with the partition of the message that changed them), the entity inputs, the controls
to send back on the feed topic (a tally to its coordinator, a scan to its partition), and the
snapshot decisions. Nothing is read or written here: the caller gives the states through
:class:`RoutingState` and delivers the outcome (the agent: inputs, then controls and decisions,
then the states, so that a crash re-reads the batch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.entities import Cause, EntityInput
from schemas.feed import (
    FeedEvent,
    RecordDeleted,
    RecordRejected,
    SnapshotCompleted,
    SnapshotStarted,
)
from schemas.lifecycle import (
    ControlEvent,
    HoldDecided,
    SchoolYearState,
    ScopeState,
    SnapshotDecision,
    SnapshotScan,
    SnapshotTally,
    YearCommand,
)
from schemas.state import SourceState
from sync import absence
from sync.routing import Routed, route

FeedOrControl = FeedEvent | ControlEvent


@dataclass(frozen=True)
class YearOf:
    """The table key of a partition's school-year calendar."""

    partition: int


TableKey = str | YearOf  # a feed key, a snapshot coordinator's key, or a calendar
State = SourceState | ScopeState | SchoolYearState


@dataclass(frozen=True)
class FeedRead:
    """One message of the feed topic as the router reads it."""

    key: str
    message: FeedOrControl
    cause: Cause  # rule ``feed.<type>``, the topic position, the message's broker time
    partition: int
    timestamp: float | None = None  # broker time (s), given to the controls it causes


@dataclass(frozen=True)
class Control:
    """A control to send on the feed topic: a scan to ``partition``, a tally (``partition``
    None) to its coordinator, keyed by its snapshot."""

    partition: int | None
    message: SnapshotScan | SnapshotTally
    timestamp: float | None  # that of the message that caused it: absence is dated by it


@dataclass(frozen=True)
class StateChange:
    partition: int  # the partition of the message that changed it
    state: State | None  # None: the key is gone


class RoutingState(Protocol):
    """The states a batch starts from (the routing table) and the partition scans' reads."""

    def source(self, key: str) -> SourceState | None: ...

    def scope(self, key: str) -> ScopeState | None: ...

    def year(self, partition: int) -> SchoolYearState | None: ...

    def sources_of(
        self,
        partition: int,
        scope: str,
        category: str,
        pending: Mapping[str, StateChange],
    ) -> Iterable[tuple[str, SourceState]]:
        """The feed keys' states of ``partition`` that :func:`sync.absence.scan_candidate`
        admits for ``scope`` and ``category``, ``pending`` (the batch's changes so far) winning
        over the table."""
        ...


@dataclass
class RoutedBatch:
    changes: dict[TableKey, StateChange] = field(default_factory=dict)
    inputs: list[EntityInput] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    decisions: list[SnapshotDecision] = field(default_factory=list)
    records: Counter[tuple[str, str]] = field(default_factory=Counter)  # (category, outcome)
    controls_read: int = 0  # scans and tallies among the batch's messages


def route_batch(
    reads: Sequence[FeedRead],
    table: RoutingState,
    *,
    partitions: int,
    namespace: str,
    guard: absence.Guard,
) -> RoutedBatch:
    """Route ``reads`` in order from ``table``'s states; see the module's rules."""
    out = RoutedBatch()
    pending: dict[TableKey, State | None] = {}  # every state put, changed or not
    where: dict[TableKey, int] = {}
    changed: set[TableKey] = set()

    def put(key: TableKey, state: State | None, before: State | None, partition: int) -> None:
        pending[key] = state
        where[key] = partition
        if state is not before:
            changed.add(key)

    def source(key: str) -> SourceState | None:
        if key in pending:
            state = pending[key]
            return state if isinstance(state, SourceState) else None
        return table.source(key)

    def scope(key: str) -> ScopeState | None:
        if key in pending:
            state = pending[key]
            return state if isinstance(state, ScopeState) else None
        return table.scope(key)

    def year(partition: int) -> SchoolYearState:
        key = YearOf(partition)
        state = pending[key] if key in pending else table.year(partition)
        return state if isinstance(state, SchoolYearState) else SchoolYearState()

    for read in reads:
        message, cause, partition = read.message, read.cause, read.partition
        out.controls_read += isinstance(message, SnapshotScan | SnapshotTally)
        match message:
            case YearCommand():
                calendar = absence.apply_year(
                    year(partition), message.action, message.school_year, message.at
                )
                put(YearOf(partition), calendar, None, partition)
            case SnapshotStarted() | SnapshotCompleted() | SnapshotTally() | HoldDecided():
                before = scope(read.key)
                step = absence.coordinate(
                    before,
                    message,
                    key=message.key,
                    at=cause.at,
                    partitions=partitions,
                    year=year(partition),
                    guard=guard,
                )
                put(read.key, step.state, before, partition)
                out.controls.extend(Control(s.partition, s, read.timestamp) for s in step.scans)
                out.decisions.extend(step.decisions)
            case SnapshotScan():
                local = table.sources_of(
                    message.partition,
                    message.snapshot.scope,
                    message.snapshot.category.value,
                    _overlay(pending, where),
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
                    out.controls.append(Control(None, tally, read.timestamp))
                    continue
                removal_cause = cause.model_copy(
                    update={
                        "rule": message.rule,
                        "source_file_digest": message.snapshot.snapshot_id,
                    }
                )
                for key, state in sorted(local, key=lambda found: found[0]):  # in key order
                    if absence.is_absent(state, message.snapshot):
                        removed, removal = absence.mark_absent(
                            state, message.snapshot, removal_cause
                        )
                        put(key, removed, None, message.partition)
                        out.inputs.append(removal)
            case _:
                before_source = source(read.key)
                routed = route(before_source, message, cause, namespace)
                put(read.key, routed.state, before_source, partition)
                out.inputs.extend(routed.inputs)
                category = message.source.category.value
                out.records[category, record_outcome(message, routed)] += 1
    out.changes = {key: StateChange(where[key], pending[key]) for key in changed}
    return out


def _overlay(
    pending: Mapping[TableKey, State | None], where: Mapping[TableKey, int]
) -> dict[str, StateChange]:
    """The batch's feed-key states so far (None: removed), for the partition scans."""
    return {
        key: StateChange(where[key], state)
        for key, state in pending.items()
        if isinstance(key, str) and (state is None or isinstance(state, SourceState))
    }


def record_outcome(message: FeedEvent, routed: Routed) -> str:
    """How a feed record was taken, for ``entsync_feed_records_total``."""
    if isinstance(message, RecordRejected):
        return "rejected"
    if not routed.inputs:
        return "unchanged"
    if isinstance(message, RecordDeleted):
        return "deleted"
    payload = getattr(message, message.type.split(".")[0], None)
    return "held" if getattr(payload, "held_reasons", ()) else "changed"

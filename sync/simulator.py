"""A pure in-memory driver of the core, for tests and dry-runs.

:func:`run_to_quiescence` plays what the faust agents do, without Kafka or LDAP: it routes feed
events, delivers entity inputs (and everything they emit) until nothing is pending, and applies
the decided ops to an in-memory directory (``dn → attributes``).

Delivery order follows Kafka's only guarantee: messages from one sender to one key stay in order
(one *channel* per feed key, and per (sending entity, receiving entity)). Which channel delivers
next is up to a *chooser*: by default the oldest pending message overall (a global FIFO); a
``random.Random`` or any ``(n) -> index`` function (e.g. drawing from hypothesis) picks among the
``n`` channel heads, oldest first, to explore other interleavings.

Entity inputs can also be given directly (``inputs``): admin commands as ``entsync admin``
publishes them, one channel per target entity (one producer, keyed by entity id).

Feed topic messages go through the worker's own step (:func:`sync.feedbatch.route_batch`), on a
single partition: a snapshot's coordinator (:mod:`sync.absence`) sends its scans and receives
their tallies on the feed key's channel as the worker's do on the feed topic; year commands
update the one calendar. :func:`sweep_world` and :func:`switch_year_world` play the sweeper and
the switchover over every entity, then deliver what follows.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.admin import AdminCommandDecided
from schemas.audit import DirectoryChanged, RecordsHeld
from schemas.entities import Cause, EntityInput
from schemas.feed import FeedEvent
from schemas.lifecycle import (
    ControlEvent,
    SchoolYearState,
    ScopeState,
    SnapshotDecision,
)
from schemas.state import EntityState, SourceState
from sync import absence, equality, lifecycle
from sync.feedbatch import FeedRead, RoutedBatch, StateChange, TableKey, YearOf, route_batch
from sync.ops import AddEntry, DeleteEntry, DirectoryOp, ModifyEntry
from sync.reconcile import Context, Decision, decide

Chooser = Callable[[int], int]
"""Given ``n`` deliverable messages (oldest first), the index of the one to deliver."""

Directory = dict[str, dict[str, tuple[str, ...]]]


class PipelineError(RuntimeError):
    """The core decided an op the directory cannot take (a bug), or it did not settle."""


@dataclass
class World:
    """Everything that persists between runs: the two tables and the directory."""

    sources: dict[str, SourceState] = field(default_factory=dict)
    entities: dict[str, EntityState] = field(default_factory=dict)
    directory: Directory = field(default_factory=dict)
    scopes: dict[str, ScopeState] = field(default_factory=dict)
    year: SchoolYearState = field(default_factory=SchoolYearState)
    decisions: list[SnapshotDecision] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    world: World
    ops: tuple[DirectoryOp, ...]
    audits: tuple[DirectoryChanged, ...]
    deliveries: int
    outcomes: tuple[AdminCommandDecided, ...] = ()
    notices: tuple[RecordsHeld, ...] = ()

    @property
    def directory(self) -> Directory:
        return self.world.directory


FeedOrControl = FeedEvent | ControlEvent
_Message = tuple[FeedOrControl, Cause] | EntityInput
_Channel = tuple[str, str]


def _stored_dn(directory: Directory, dn: str) -> str:
    """The DN the entry ``dn`` names is stored under (the directory ignores case in DNs)."""
    if dn in directory:
        return dn
    return next((d for d in directory if equality.equal(d, dn)), dn)


def apply_op(directory: Directory, op: DirectoryOp) -> None:
    """Carry out ``op`` on the in-memory directory, as strictly as LDAP would."""
    match op:
        case AddEntry():
            # As the directory compares: DNs and logins by caseIgnoreMatch (sync.equality),
            # logins unique in the tree (the unique overlay).
            if any(equality.equal(dn, op.dn) for dn in directory):
                raise PipelineError("add of an existing entry")
            logins = {equality.prepare(v) for v in op.attributes.get("ENTPersonLogin", ())}
            if logins and any(
                equality.prepare(v) in logins
                for entry in directory.values()
                for v in entry.get("ENTPersonLogin", ())
            ):
                raise PipelineError("add of a login the directory already has")
            directory[op.dn] = dict(op.attributes)
        case ModifyEntry():
            entry = directory.get(_stored_dn(directory, op.dn))
            if entry is None:
                raise PipelineError("modify of a missing entry")
            for name, values in op.changes.items():
                for existing in [k for k in entry if k.lower() == name.lower()]:
                    del entry[existing]
                if values:
                    entry[name] = tuple(values)
        case DeleteEntry():
            if directory.pop(_stored_dn(directory, op.dn), None) is None:
                raise PipelineError("delete of a missing entry")


class _Mailbox:
    """Pending messages in per-channel FIFO order, each stamped with a global sequence."""

    def __init__(self) -> None:
        self._channels: dict[_Channel, deque[tuple[int, _Message]]] = {}
        self._global: deque[tuple[_Channel, int, _Message]] = deque()
        self._seq = 0

    def put(self, channel: _Channel, message: _Message) -> None:
        self._seq += 1
        self._channels.setdefault(channel, deque()).append((self._seq, message))
        self._global.append((channel, self._seq, message))

    def take(self, choose: Chooser | None) -> _Message | None:
        if choose is None:
            if not self._global:
                return None
            channel, _, message = self._global.popleft()
            self._pop(channel)
            return message
        heads = sorted((q[0][0], ch) for ch, q in self._channels.items())
        if not heads:
            return None
        index = choose(len(heads))
        if not 0 <= index < len(heads):
            raise PipelineError("chooser returned an index out of range")
        return self._pop(heads[index][1])

    def _pop(self, channel: _Channel) -> _Message:
        queue = self._channels[channel]
        _, message = queue.popleft()
        if not queue:
            del self._channels[channel]
        return message


class WorldTable:
    """The world's routing table as :func:`sync.feedbatch.route_batch` reads it (one partition)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def source(self, key: str) -> SourceState | None:
        return self.world.sources.get(key)

    def scope(self, key: str) -> ScopeState | None:
        return self.world.scopes.get(key)

    def year(self, partition: int) -> SchoolYearState | None:
        return self.world.year

    def sources_of(
        self, partition: int, scope: str, category: str, pending: Mapping[str, StateChange]
    ) -> Iterator[tuple[str, SourceState]]:
        def wanted(state: SourceState | None) -> bool:
            return state is not None and absence.scan_candidate(state, scope, category)

        for key, change in pending.items():
            if isinstance(change.state, SourceState) and wanted(change.state):
                yield key, change.state
        for key, state in sorted(self.world.sources.items()):
            if key not in pending and wanted(state):
                yield key, state


def apply_changes(world: World, changes: Mapping[TableKey, StateChange]) -> None:
    for key, change in changes.items():
        match key, change.state:
            case YearOf(), SchoolYearState() as calendar:
                world.year = calendar
            case str(), ScopeState() as coordinator:
                world.scopes[key] = coordinator
            case str(), SourceState() as source:
                world.sources[key] = source
            case str(), None:
                world.sources.pop(key, None)
            case _:
                raise PipelineError(f"a state of the wrong kind for {key!r}")


def _route(
    world: World, event: FeedOrControl, cause: Cause, ctx: Context, guard: absence.Guard
) -> RoutedBatch:
    """One feed topic message through the worker's step, on one partition."""
    routed = route_batch(
        [FeedRead(event.key, event, cause, 0)],
        WorldTable(world),
        partitions=1,
        namespace=ctx.namespace,
        guard=guard,
    )
    apply_changes(world, routed.changes)
    world.decisions.extend(routed.decisions)
    return routed


def _control_cause(cause: Cause, control: FeedOrControl) -> Cause:
    """The cause a control sent back on the feed topic is read with: its own type as rule,
    the time of the message that caused it, and no file."""
    return cause.model_copy(
        update={
            "rule": f"feed.{control.type}",
            "offset": None,
            "source_file": None,
            "source_file_digest": None,
            "record_index": None,
        }
    )


def run_to_quiescence(
    events: Iterable[tuple[FeedOrControl, Cause]],
    *,
    ctx: Context | None = None,
    guard: absence.Guard | None = None,
    world: World | None = None,
    choose: Chooser | random.Random | None = None,
    max_deliveries: int = 1_000_000,
    redeliver: bool = False,
    inputs: Iterable[EntityInput] = (),
) -> RunResult:
    """Route ``events``, deliver ``inputs`` and every consequence; ``world`` (mutated) carries
    over runs.

    ``redeliver`` delivers every entity input a second time right away, as an at-least-once
    consumer may, and raises :class:`PipelineError` unless that second delivery changes nothing
    (it may only send again messages the first delivery sent: an allocator re-answers).
    """
    context = ctx or Context()
    state = world if world is not None else World()
    chooser = choose.randrange if isinstance(choose, random.Random) else choose
    mailbox = _Mailbox()
    for event, cause in events:
        mailbox.put(("feed", event.key), (event, cause))
    for inp in inputs:
        mailbox.put(("admin", inp.entity_id), inp)
    ops: list[DirectoryOp] = []
    audits: list[DirectoryChanged] = []
    outcomes: list[AdminCommandDecided] = []
    notices: list[RecordsHeld] = []
    deliveries = 0
    while (message := mailbox.take(chooser)) is not None:
        deliveries += 1
        if deliveries > max_deliveries:
            raise PipelineError("no quiescence within the delivery budget")
        if isinstance(message, tuple):
            event, cause = message
            routed = _route(state, event, cause, context, guard or absence.Guard())
            for inp in routed.inputs:
                mailbox.put((f"feed:{event.key}", inp.entity_id), inp)
            for control in routed.controls:  # back on the feed topic, keyed by the snapshot
                back = control.message
                mailbox.put(("feed", back.key), (back, _control_cause(cause, back)))
            continue
        decision = decide(state.entities.get(message.entity_id), message, context)
        if redeliver:
            again = decide(decision.state, message, context)
            resent = all(e in decision.emits for e in again.emits)
            if again.ops or again.audits or not resent or again.state != decision.state:
                raise PipelineError("an input delivered twice changed something the second time")
        state.entities[message.entity_id] = decision.state
        for op in decision.ops:
            apply_op(state.directory, op)
        ops.extend(decision.ops)
        audits.extend(decision.audits)
        outcomes.extend(decision.outcomes)
        notices.extend(decision.notices)
        for emitted in decision.emits:
            mailbox.put((message.entity_id, emitted.entity_id), emitted)
    return RunResult(state, tuple(ops), tuple(audits), deliveries, tuple(outcomes), tuple(notices))


def _run_decisions(
    world: World, decisions: list[Decision], ctx: Context, choose: Chooser | None
) -> RunResult:
    ops: list[DirectoryOp] = []
    audits: list[DirectoryChanged] = []
    emits: list[EntityInput] = []
    for decision in decisions:
        world.entities[decision.state.entity_id] = decision.state
        for op in decision.ops:
            apply_op(world.directory, op)
        ops.extend(decision.ops)
        audits.extend(decision.audits)
        emits.extend(decision.emits)
    rest = run_to_quiescence((), ctx=ctx, world=world, choose=choose, inputs=emits)
    return RunResult(world, (*ops, *rest.ops), (*audits, *rest.audits), rest.deliveries)


def sweep_world(
    world: World,
    now: datetime,
    *,
    policy: lifecycle.Policy | None = None,
    cause: Cause,
    ctx: Context | None = None,
    choose: Chooser | None = None,
) -> RunResult:
    """Run the sweeper at ``now`` over every entity, then deliver what follows."""
    context = ctx or Context()
    rules = policy or lifecycle.Policy()
    decided = [
        d
        for _, state in sorted(world.entities.items())
        if (d := lifecycle.sweep(state, now, rules, cause, context)) is not None
    ]
    return _run_decisions(world, decided, context, choose)


def switch_year_world(
    world: World,
    at: datetime,
    *,
    cause: Cause,
    ctx: Context | None = None,
    choose: Chooser | None = None,
) -> RunResult:
    """The switchover's per-entity effects (classes retired), then what follows."""
    context = ctx or Context()
    decided = [
        d
        for _, state in sorted(world.entities.items())
        if (d := lifecycle.switch_year(state, at, cause, context)) is not None
    ]
    return _run_decisions(world, decided, context, choose)

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
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.admin import AdminCommandDecided
from schemas.audit import DirectoryChanged
from schemas.entities import Cause, EntityInput
from schemas.feed import FeedEvent
from schemas.state import EntityState, SourceState
from sync.ops import AddEntry, DeleteEntry, DirectoryOp, ModifyEntry
from sync.reconcile import Context, decide
from sync.routing import route

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


@dataclass(frozen=True)
class RunResult:
    world: World
    ops: tuple[DirectoryOp, ...]
    audits: tuple[DirectoryChanged, ...]
    deliveries: int
    outcomes: tuple[AdminCommandDecided, ...] = ()

    @property
    def directory(self) -> Directory:
        return self.world.directory


_Message = tuple[FeedEvent, Cause] | EntityInput
_Channel = tuple[str, str]


def apply_op(directory: Directory, op: DirectoryOp) -> None:
    """Carry out ``op`` on the in-memory directory, as strictly as LDAP would."""
    match op:
        case AddEntry():
            if op.dn in directory:
                raise PipelineError("add of an existing entry")
            directory[op.dn] = dict(op.attributes)
        case ModifyEntry():
            entry = directory.get(op.dn)
            if entry is None:
                raise PipelineError("modify of a missing entry")
            for name, values in op.changes.items():
                for existing in [k for k in entry if k.lower() == name.lower()]:
                    del entry[existing]
                if values:
                    entry[name] = tuple(values)
        case DeleteEntry():
            if directory.pop(op.dn, None) is None:
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


def run_to_quiescence(
    events: Iterable[tuple[FeedEvent, Cause]],
    *,
    ctx: Context | None = None,
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
    deliveries = 0
    while (message := mailbox.take(chooser)) is not None:
        deliveries += 1
        if deliveries > max_deliveries:
            raise PipelineError("no quiescence within the delivery budget")
        if isinstance(message, tuple):
            event, cause = message
            routed = route(state.sources.get(event.key), event, cause, context.namespace)
            if routed.state is not None:
                state.sources[event.key] = routed.state
            for inp in routed.inputs:
                mailbox.put((f"feed:{event.key}", inp.entity_id), inp)
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
        for emitted in decision.emits:
            mailbox.put((message.entity_id, emitted.entity_id), emitted)
    return RunResult(state, tuple(ops), tuple(audits), deliveries, tuple(outcomes))

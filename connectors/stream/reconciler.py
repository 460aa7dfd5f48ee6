"""The ``reconcile`` agent's batch: entity inputs -> directory writes, audit events, inputs.

Per batch, in this order, so that a crash anywhere is repaired by re-processing the batch:
decide (pure, :func:`sync.reconcile.decide`) -> the entity inputs it emits delivered -> directory
writes acknowledged -> audit events and admin decisions delivered (and the links of a person whose
entry the directory refused to add withdrawn: they would name no entry) -> the entities' states
written. Re-processing is harmless: decisions are idempotent, so are the inputs sent again (the
core converges whatever the order and however often an input comes), the writer heals writes
already done, audit ids are deterministic. The emitted inputs do not wait for the directory:
what they carry (links, login requests and answers) does not depend on whether a write is
accepted, but for the links of a refused add, which are withdrawn afterwards; the next entities
get on with their part meanwhile.

The steps are :meth:`Reconciler.prepare` (decide), :meth:`Reconciler.send_emits`,
:meth:`Reconciler.write` (the directory) and :meth:`Reconciler.complete` (audit events,
decisions, states); :mod:`connectors.stream.write_window` calls them so that a batch is decided
while the previous one is written, and written while the one before is completed. While more
input waits (:meth:`Reconciler.waiting`), the pipeline holds several decided batches back and
has them carried out as one (:meth:`Reconciler.merge`): each entry is written once for all of
them (:class:`sync.coalesce.Coalescer`), its audit event naming every cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from faust.types import TP

from connectors.ldap.directory import holders
from connectors.ldap.errors import DirectoryWriteError
from connectors.ldap.healing import OpResult
from connectors.ldap.writer import Action
from connectors.logs import get_logger
from connectors.monitoring import metrics
from connectors.stream import monitor
from connectors.stream import partition_scans as shell
from connectors.stream.changelog import write_through
from connectors.stream.faust_compat import access
from connectors.stream.intake import EntityEnds
from connectors.stream.outbox import cause_from, send, send_inputs
from connectors.stream.partition_scans import partition_of
from connectors.stream.ports import DirectoryPort, StreamEvent, Table, Topic
from connectors.stream.progress import Progress
from schemas.admin import AdminCommandDecided
from schemas.audit import DirectoryChanged, IdentityHeld, RecordsHeld
from schemas.entities import (
    EntityInput,
    EntityMessage,
    LoginRefused,
    SweepRequested,
    SwitchoverRequested,
)
from schemas.state import EntityState
from sync import ids, lifecycle
from sync.coalesce import Coalescer, coalesce
from sync.lifecycle import Policy
from sync.links import refused_write
from sync.ops import AddEntry, DirectoryOp
from sync.reconcile import Context, Decision, decide

log = get_logger(__name__)
LOGIN_ATTRIBUTE = "ENTPersonLogin"
HOT_STATES = 1_000  # changed states a window holds as objects (about 15 KB each, JSON 3 KB)


@dataclass
class DecidedBatch:
    """A batch decided by :meth:`Reconciler.prepare`, then carried out (``write``, ``complete``)."""

    batch: Sequence[StreamEvent]
    # the states decided; a window holds its earlier batches' as JSON (a fifth of the memory),
    # but for the HOT_STATES changed last (``hot``, oldest first): those are read again most
    # (a group per batch of members, a person's login answer), so they stay objects
    new_states: dict[bytes, EntityState | bytes] = field(default_factory=dict)
    hot: dict[bytes, None] = field(default_factory=dict)
    # each key's state before the batch, as it was held: the table's JSON as read (a fifth of
    # the object's memory: a window holds one for each entity its inputs touched), or an
    # earlier batch's state; None: no state yet
    before: dict[bytes, EntityState | bytes | None] = field(default_factory=dict)
    changed: set[bytes] = field(default_factory=set)  # unchanged states are not written back
    where: dict[bytes, int] = field(default_factory=dict)  # a key's partition: its message's
    ops: list[DirectoryOp] = field(default_factory=list)
    audits: list[DirectoryChanged] = field(default_factory=list)
    emits: list[EntityInput] = field(default_factory=list)
    withdrawn: list[EntityInput] = field(default_factory=list)  # links of refused adds
    outcomes: list[AdminCommandDecided] = field(default_factory=list)  # admin decisions
    # records held for an INE conflict, persons held by a login rule: audited without an op
    notices: list[RecordsHeld | IdentityHeld] = field(default_factory=list)
    written: list[DirectoryChanged] = field(default_factory=list)  # those of the writes done
    # batches merged into this one (Reconciler.merge): their writes, merged per entry
    merged: Coalescer | None = None


@dataclass
class Reconciler:
    """What ``reconcile`` works with: its table, the directory writer, the topics it writes."""

    entities: Table  # entity states (EntityState JSON)
    writer: DirectoryPort
    entities_topic: Topic
    audit_topic: Topic
    decisions_topic: Topic
    partitions: int
    ctx: Context
    policy: Policy
    progress: Progress
    generation: Callable[[], int]  # the consumer group generation, for debug logs
    tally: monitor.Tally | None = None  # the metrics' counts of the table
    # per partition of the entities topic: the offset after the last input decided
    read: dict[TP, int] = field(default_factory=dict)
    # where this worker's own inputs landed (shared with the router): ends the fetch may not
    # have seen yet
    ends: EntityEnds = field(default_factory=EntityEnds)

    async def send_emits(self, p: DecidedBatch) -> None:
        """Deliver the entity inputs the batch's decisions emit."""
        await send_inputs(self.entities_topic, p.emits, self.ends)

    def prepare(
        self,
        batch: Sequence[StreamEvent],
        pending: Mapping[bytes, EntityState | bytes] | None = None,
    ) -> DecidedBatch:
        """Decide a batch (no I/O but table reads). ``pending``: the states an earlier batch
        decided and has not written to the table yet (see :mod:`connectors.stream.write_window`)."""
        entities, ctx = self.entities, self.ctx
        earlier: Mapping[bytes, EntityState | bytes] = pending or {}
        p = DecidedBatch(batch)
        new_states = p.new_states

        def record(
            key: bytes,
            state: EntityState | None,
            stored: EntityState | bytes | None,
            decision: Decision,
            partition: int,
        ) -> None:
            """``stored``: ``state`` as it is held (the table's JSON, an earlier batch's)."""
            if key not in new_states:
                p.before[key] = stored
                p.where[key] = partition
            if decision.state is not state and decision.state != state:
                p.changed.add(key)
                new_states[key] = decision.state
            else:  # unchanged: held as it was (JSON read from the table stays JSON)
                new_states[key] = stored if stored is not None else decision.state
            p.ops.extend(decision.ops)
            p.audits.extend(decision.audits)
            p.emits.extend(decision.emits)
            p.outcomes.extend(decision.outcomes)
            p.notices.extend(decision.notices)
            p.notices.extend(decision.holds)
            for held in decision.holds:
                # No entry changes, so no DirectoryChanged: the audit topic has the hold (and
                # the log, for an operator watching the worker; ids only).
                log.warning(
                    "identity.held",
                    event_id=held.event_id,
                    entity_id=held.entity_id,
                    entity_kind=held.entity_kind,
                    reason=held.reason,
                    previous=held.previous,
                    rule=held.cause.rule,
                )

        for event in batch:
            key = event.key
            inp = EntityMessage.model_validate_json(event.value).root
            if isinstance(inp, SweepRequested | SwitchoverRequested):
                overlay = {**earlier, **new_states} if earlier else new_states
                for pkey, pstate, decision in self._partition_request(inp, event, overlay):
                    record(pkey, pstate, pstate, decision, inp.partition)
                continue
            stored: EntityState | bytes | None
            if key in new_states:
                stored = new_states[key]
            elif key in earlier:
                stored = earlier[key]
            else:
                stored = entities.get(key)
            state = None if stored is None else state_of(stored)
            record(key, state, stored, decide(state, inp, ctx), event.message.partition)
        # One write (and one audit event) per entry and batch: see sync.coalesce.
        merged = coalesce(list(zip(p.ops, p.audits, strict=True)))
        p.ops = [op for op, _ in merged]
        p.audits = [audit for _, audit in merged]
        for event in batch:
            tp, offset = event.message.tp, event.message.offset
            if offset >= self.read.get(tp, 0):
                self.read[tp] = offset + 1
        return p

    def merge(self, into: DecidedBatch, later: DecidedBatch) -> DecidedBatch:
        """One batch of ``into`` and ``later`` (decided after it, on its states): carried out
        as one, each entry written once for both (its audit event naming every cause)."""
        held, hot = into.new_states, into.hot
        if into.merged is None:  # the first batch's writes and states, as a window holds them
            into.merged = Coalescer(zip(into.ops, into.audits, strict=True))
            into.ops, into.audits = [], []
            hot.update(dict.fromkeys(into.changed))
            into.batch = list(into.batch)
        into.merged.add(zip(later.ops, later.audits, strict=True))
        cast(list[StreamEvent], into.batch).extend(later.batch)  # a list since the first merge
        for key, state in later.new_states.items():
            if key not in held:
                into.before[key] = later.before[key]
                into.where[key] = later.where[key]
                held[key] = state  # unchanged: the very object ``before`` holds
            if key in later.changed:
                held[key] = state
                hot.pop(key, None)
                hot[key] = None  # the last changed
        while len(hot) > HOT_STATES:  # the others' as JSON
            key = next(iter(hot))
            del hot[key]
            held[key] = json_of(held[key])
        into.changed |= later.changed
        into.emits = []  # sent already; not kept for the whole window (memory)
        into.outcomes += later.outcomes
        into.notices += later.notices
        return into

    def waiting(self, p: DecidedBatch | None = None) -> int:
        """How many entity inputs wait for this worker once ``p`` is decided: those its
        partitions hold beyond what was read (as the last fetch, or this worker's own deliveries,
        saw them), and those ``p`` sends to its own partitions (round trips: login answers,
        links)."""
        emits = p.emits if p is not None else []
        consumer = self.entities_topic.app.consumer
        topic = self.entities_topic.get_topic_name()
        committed = access.committed_offsets(consumer)
        mine = {tp.partition: tp for tp in consumer.assignment() if tp.topic == topic}
        count = 0
        for tp in mine.values():
            highwater = max(consumer.highwater(tp) or 0, self.ends.end(tp.partition))
            count += max(0, highwater - self.read.get(tp, committed.get(tp) or 0))
        if len(mine) == self.partitions:  # the only worker: every input comes back to it
            return count + len(emits)
        return count + sum(
            1 for i in emits if partition_of(i.entity_id.encode(), self.partitions) in mine
        )

    def delivering(self) -> bool:
        """Whether faust hands the agents their input (not suspended for a rebalance or a stop,
        when it waits for every message taken to be acknowledged)."""
        app = self.entities_topic.app
        return bool(app.flow_control.is_active()) and not app.rebalancing

    async def write(self, p: DecidedBatch) -> bool:
        """Write the batch's directory changes. False if the directory refused a write for good:
        the entity then keeps what the directory has, not the state ``prepare`` decided."""
        progress, new_states = self.progress, p.new_states
        if p.merged is not None:  # several batches: their writes merged per entry
            pairs, p.merged = p.merged.pairs(), None
            p.ops, p.audits = [op for op, _ in pairs], [audit for _, audit in pairs]
        results = await self._apply(p.ops)
        written = p.written
        as_decided = True
        for op, audit, result in zip(p.ops, p.audits, results, strict=True):
            count_write(op, result)
            if result is None:  # refused for good: the entity keeps what the directory has
                key = audit.entity_id.encode()
                decided = state_of(new_states[key])
                allocated = decided.login  # an academic login is not the allocator's
                before = p.before.get(key)
                state, withdrawn = refused_write(
                    None if before is None else state_of(before), decided, audit.cause
                )
                new_states[key] = state
                p.withdrawn.extend(withdrawn)  # no entry: no DN of it elsewhere
                p.withdrawn.extend(await self._login_taken(op, audit, allocated))
                p.changed.add(key)
                as_decided = False
                continue
            written.append(audit)
            if result.action is Action.NOOP:
                # The directory already had this change: most likely this very batch wrote it
                # before a crash, and its audit event may never have gone out. It goes out now,
                # with the same deterministic id, so the audit store keeps it exactly once.
                progress.noop_writes += 1
                continue
            progress.directory_changes += 1
            progress.by_action[audit.action] = progress.by_action.get(audit.action, 0) + 1
        return as_decided

    async def complete(self, p: DecidedBatch) -> None:
        """After :meth:`write`: send the audit events of what was written (and of the records
        held for an INE conflict) and the admin decisions, then write the batch's states."""
        progress, new_states = self.progress, p.new_states
        await send_inputs(self.entities_topic, p.withdrawn, self.ends)
        audited = [*p.written, *p.notices]
        futures = await send(
            self.audit_topic, ((a.entity_id, a.model_dump_json()) for a in audited)
        )
        futures += await send(
            self.decisions_topic, ((o.entity_id, o.model_dump_json()) for o in p.outcomes)
        )
        for fut in futures:
            await fut
        writes = {key: (p.where[key], json_of(new_states[key])) for key in p.changed}
        if self.tally is not None:  # as the table changes (see connectors.stream.monitor)
            self.tally.changed((p.before.get(key), state_of(new_states[key])) for key in p.changed)
        for fut in await write_through(self.entities, writes):
            await fut
        progress.entity_inputs += len(p.batch)
        metrics.ENTITY_INPUTS.inc(len(p.batch))
        log.debug(
            "reconcile.batch",
            generation=self.generation(),
            offsets=sorted((e.message.partition, e.message.offset) for e in p.batch),
            writes=len(p.ops),
        )

    async def _login_taken(
        self, op: DirectoryOp, audit: DirectoryChanged, allocated: str | None
    ) -> list[EntityInput]:
        """A person's add refused while another entry holds the login its allocator gave it (a
        manual account, another tool made it): the person is told, and asks for another one
        (:mod:`sync.reconcile`). An academic login stays a refused write: it is the academy's."""
        login = op.attributes.get(LOGIN_ATTRIBUTE, ()) if isinstance(op, AddEntry) else ()
        if len(login) != 1 or audit.entity_kind not in ids.PERSON_KINDS:
            return []
        if allocated is None or login[0] != allocated:
            return []
        found = await asyncio.to_thread(
            holders, self.writer.params, self.ctx.base_dn, LOGIN_ATTRIBUTE, login[0]
        )
        if not [dn for dn in found if dn.lower() != op.dn.lower()]:
            return []
        self.progress.logins_reallocated += 1
        log.warning("login.taken_in_directory", entity_id=audit.entity_id, dn=op.dn)
        return [LoginRefused(entity_id=audit.entity_id, cause=audit.cause, login=login[0])]

    async def _apply(self, ops: list[DirectoryOp]) -> list[OpResult | None]:
        """Results per op; None for an op the directory refused for good (or skipped after one).

        A refused write must not stop the stream for everyone: it is reported, counted, and the
        entity's next input tries again. An unreachable directory still stops the worker.
        """
        if not ops:
            return []
        try:
            return list(await self.writer.apply(ops))
        except DirectoryWriteError as exc:
            if not all(isinstance(error, DirectoryWriteError) for error in exc.errors):
                raise
            for error in exc.errors:
                assert isinstance(error, DirectoryWriteError)
                self.progress.refused_writes += 1
                log_write_refused(error)
            return list(exc.results)

    def _partition_request(
        self,
        inp: SweepRequested | SwitchoverRequested,
        event: StreamEvent,
        overlay: Mapping[bytes, EntityState | bytes],
    ) -> list[tuple[bytes, EntityState, Decision]]:
        """The sweeper's or the switchover's decisions for the entities of one partition."""
        cause = cause_from(event, inp.cause.rule)
        found: list[tuple[bytes, EntityState, Decision]] = []
        if isinstance(inp, SweepRequested):
            for key, state in shell.sweepable_states(
                self.entities, overlay, inp.partition, self.partitions
            ):
                decision = lifecycle.sweep(state, inp.now, self.policy, cause, self.ctx)
                if decision is not None:
                    found.append((key, state, decision))
        else:
            for key, state in shell.switchover_states(
                self.entities, overlay, inp.partition, self.partitions
            ):
                decision = lifecycle.switch_year(state, inp.at, cause, self.ctx)
                if decision is not None:
                    found.append((key, state, decision))
        log.info(
            "lifecycle.partition_request",
            request=inp.type,
            partition=inp.partition,
            entities=len(found),
        )
        return found


def state_of(held: EntityState | bytes) -> EntityState:
    """A decided state, held as an object or as its JSON."""
    return EntityState.model_validate_json(held) if isinstance(held, bytes) else held


def json_of(held: EntityState | bytes) -> bytes:
    return held if isinstance(held, bytes) else held.model_dump_json().encode()


def log_write_refused(error: DirectoryWriteError) -> None:
    """The operator's only clue to a refused write: the server's diagnostic says which
    attribute or class is at fault. It names attribute types, not values (filter assertion
    values, as the unique overlay prints them, are redacted by DirectoryWriteError), and our
    DNs are opaque ids (see :mod:`sync.dit`)."""
    log.error(
        "directory.write_refused",
        dn=error.dn,
        operation=error.operation,
        code=error.result_code,
        result=error.result_name,
        diagnostic=error.diagnostic,
    )


_OP = {"AddEntry": "add", "ModifyEntry": "modify", "DeleteEntry": "delete"}
_OUTCOME = {Action.NOOP: "already_done"}


def count_write(op: DirectoryOp, result: OpResult | None) -> None:
    """One directory write in the metrics (``result`` None: refused)."""
    kind = _OP.get(type(op).__name__, "other")
    if result is None:
        metrics.DIRECTORY_WRITES.labels(kind, "refused").inc()
        return
    metrics.DIRECTORY_WRITES.labels(kind, _OUTCOME.get(result.action, result.action.value)).inc()
    metrics.WRITE_SECONDS.labels(kind).observe(result.seconds)
    if result.retries:
        metrics.LDAP_RETRIES.labels(kind).inc(result.retries)

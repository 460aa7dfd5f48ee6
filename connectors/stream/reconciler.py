"""The ``reconcile`` agent's batch: entity inputs -> directory writes, audit events, inputs.

Per batch, in this order, so that a crash anywhere is repaired by re-processing the batch:
decide (pure, :func:`sync.reconcile.decide`) -> directory writes acknowledged -> audit events,
emitted inputs and admin decisions delivered -> the entities' states written. Re-processing is
harmless: decisions are idempotent, the writer heals writes already done, audit ids are
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.ldap.errors import DirectoryWriteError
from connectors.ldap.writer import Action
from connectors.stream import lifecycle as shell
from connectors.stream.changelog import write_through
from connectors.stream.outbox import cause_from, send, send_inputs
from connectors.stream.progress import Progress
from entsync.logs import get_logger
from schemas.entities import EntityInput, EntityMessage, SweepRequested, SwitchoverRequested
from schemas.state import EntityState
from sync import lifecycle
from sync.coalesce import coalesce
from sync.lifecycle import Policy
from sync.reconcile import Context, Decision, decide

log = get_logger(__name__)


@dataclass
class Reconciler:
    """What ``reconcile`` works with: its table, the directory writer, the topics it writes."""

    entities: Any  # the faust table of entity states (EntityState JSON)
    writer: Any  # connectors.ldap.writer.DirectoryWriter
    entities_topic: Any
    audit_topic: Any
    decisions_topic: Any
    partitions: int
    ctx: Context
    policy: Policy
    progress: Progress
    generation: Callable[[], int]  # the consumer group generation, for debug logs

    async def reconcile_batch(self, batch: Sequence[Any]) -> None:
        """Decide one batch, write the directory, send what follows, then the states."""
        entities, ctx, progress = self.entities, self.ctx, self.progress
        new_states: dict[bytes, EntityState] = {}
        before: dict[bytes, EntityState | None] = {}
        changed: set[bytes] = set()  # unchanged states are not written back
        where: dict[bytes, int] = {}  # each key's partition: that of the message deciding it
        ops: list[Any] = []
        audits: list[Any] = []
        emits: list[EntityInput] = []
        outcomes: list[Any] = []  # decisions on admin commands (accepted, unchanged, refused)

        def record(
            key: bytes, state: EntityState | None, decision: Decision, partition: int
        ) -> None:
            if key not in new_states:
                before[key] = state
                where[key] = partition
            new_states[key] = decision.state
            if decision.state is not state and decision.state != state:
                changed.add(key)
            ops.extend(decision.ops)
            audits.extend(decision.audits)
            emits.extend(decision.emits)
            outcomes.extend(decision.outcomes)

        for event in batch:
            key = event.key
            inp = EntityMessage.model_validate_json(event.value).root
            if isinstance(inp, SweepRequested | SwitchoverRequested):
                for pkey, pstate, decision in self._partition_request(inp, event, new_states):
                    record(pkey, pstate, decision, inp.partition)
                continue
            if key in new_states:
                state: EntityState | None = new_states[key]
            else:
                raw = entities.get(key)
                state = None if raw is None else EntityState.model_validate_json(raw)
            record(key, state, decide(state, inp, ctx), event.message.partition)
        # One write (and one audit event) per entry and batch: see sync.coalesce.
        merged = coalesce(list(zip(ops, audits, strict=True)))
        ops = [op for op, _ in merged]
        audits = [audit for _, audit in merged]
        results = await self._apply(ops)
        written = []
        for audit, result in zip(audits, results, strict=True):
            if result is None:  # refused for good: the entity keeps what the directory has
                key = audit.entity_id.encode()
                previous = before.get(key)
                applied = None if previous is None else previous.applied
                new_states[key] = new_states[key].model_copy(update={"applied": applied})
                changed.add(key)
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
        futures = await send(
            self.audit_topic, ((a.entity_id, a.model_dump_json()) for a in written)
        )
        await send_inputs(self.entities_topic, emits)
        futures += await send(
            self.decisions_topic, ((o.entity_id, o.model_dump_json()) for o in outcomes)
        )
        for fut in futures:
            await fut
        writes = {key: (where[key], new_states[key].model_dump_json().encode()) for key in changed}
        for fut in await write_through(entities, writes):
            await fut
        progress.entity_inputs += len(batch)
        log.debug(
            "reconcile.batch",
            generation=self.generation(),
            offsets=sorted((e.message.partition, e.message.offset) for e in batch),
            writes=len(ops),
        )

    async def _apply(self, ops: list[Any]) -> list[Any]:
        """Results per op; None for an op the directory refused for good (or skipped after one).

        A refused write must not stop the stream for everyone: it is reported, counted, and the
        entity's next input tries again. An unreachable directory still stops the worker.
        """
        if not ops:
            return []
        try:
            results: list[Any] = await self.writer.apply(ops)
            return results
        except DirectoryWriteError as exc:
            if not all(isinstance(error, DirectoryWriteError) for error in exc.errors):
                raise
            for error in exc.errors:
                assert isinstance(error, DirectoryWriteError)
                self.progress.refused_writes += 1
                log.error(
                    "directory.write_refused",
                    dn=error.dn,
                    operation=error.operation,
                    result=error.result_name,
                )
            return list(exc.results)

    def _partition_request(
        self,
        inp: SweepRequested | SwitchoverRequested,
        event: Any,
        overlay: dict[bytes, EntityState],
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

"""The faust application: two thin agents around the pure core.

``route_feed``   entsync.feed.v1     --sync.routing.route-->     entsync.entities.v1
``reconcile``    entsync.entities.v1 --sync.reconcile.decide-->  LDAP ops, entity inputs, audit

Per batch, in this order, so that a crash anywhere is repaired by re-processing the batch:
decide (pure) -> directory writes acknowledged -> emitted inputs and audit events delivered ->
table state updated -> offsets acked (by faust, after the batch). Re-processing is harmless:
decisions are idempotent, the writer heals writes already done, audit ids are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust

from connectors.ldap.errors import DirectoryWriteError
from connectors.ldap.writer import Action
from connectors.stream import lifecycle as shell
from connectors.stream.changelog import known_partitions, write_through
from connectors.stream.faust_fixes import (
    StallGuard,
    commit_acknowledged_offsets_only,
    fetch_max_wait,
    guard_untracked_acks,
    leave_group_from_first_generation,
    recover_tables_to_true_end,
)
from connectors.stream.gc_freeze import freeze_long_lived_objects
from entsync.audit_key import audit_digest_key
from entsync.logs import get_logger
from entsync.settings import Settings
from schemas.entities import (
    LIFECYCLE_ENTITY,
    Cause,
    EntityInput,
    EntityMessage,
    SweepRequested,
    SwitchoverRequested,
)
from schemas.feed import SnapshotCompleted, SnapshotStarted
from schemas.lifecycle import (
    FeedTopicMessage,
    HoldDecided,
    SchoolYearState,
    ScopeState,
    SnapshotScan,
    SnapshotTally,
    YearCommand,
)
from schemas.state import EntityState, SourceState
from schemas.topics import ADMIN_DECISIONS, AUDIT, ENTITIES, FEED, LIFECYCLE
from sync import absence, lifecycle
from sync.coalesce import coalesce
from sync.links import pack_links
from sync.reconcile import Context, Decision, decide
from sync.routing import route

log = get_logger(__name__)

PARIS = ZoneInfo("Europe/Paris")
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.05
STALL_CHECK_INTERVAL_S = 1.0


@dataclass
class Progress:
    """Counters read by the idle detector and the end-of-run summary."""

    in_flight: int = 0
    feed_events: int = 0
    control_events: int = 0  # of which the worker's own snapshot scans and tallies
    entity_inputs: int = 0
    directory_changes: int = 0
    noop_writes: int = 0
    refused_writes: int = 0
    by_action: dict[str, int] = field(default_factory=dict)


def _cause_from(event: Any, rule: str, source: Any = None) -> Cause:
    message = event.message
    timestamp = getattr(message, "timestamp", None) or 0.0
    return Cause(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        source_file=getattr(source, "file_name", None),
        source_file_digest=getattr(source, "file_digest", None),
        record_index=getattr(source, "record_index", None),
        rule=rule,
        at=datetime.fromtimestamp(timestamp, tz=UTC),
    )


def _faust_datadir(settings: Settings) -> Path:
    path = settings.state_dir / "faust"
    path.mkdir(parents=True, exist_ok=True)  # faust makes only its own folder in it
    return path


def build_app(settings: Settings, writer: Any) -> tuple[faust.App, Progress]:
    """Create the app. ``writer`` is a ``connectors.ldap.writer.DirectoryWriter``."""
    bootstrap = settings.require_kafka()
    partitions = settings.topic_partitions
    guard_untracked_acks()
    commit_acknowledged_offsets_only()
    leave_group_from_first_generation()
    fetch_max_wait(settings.kafka_fetch_max_wait_ms)
    recover_tables_to_true_end(bootstrap)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        # faust makes <app id>-data/ under its data dir even for in-memory tables: not in the
        # directory the command was started from.
        datadir=str(_faust_datadir(settings)),
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=1,
        broker_commit_every=BATCH_MAX,
        broker_commit_interval=0.5,
        producer_acks=-1,
        producer_linger_ms=5,  # batch sends: an input fans out into several messages
    )
    progress = Progress()
    ctx = Context(
        base_dn=settings.ldap_base_dn,
        namespace=settings.id_namespace,
        digest_key=audit_digest_key(settings),
    )

    # Live names, or a replay's private copies (settings.replay_id): see README "Replay".
    feed_name, entities_name = settings.topic_name(FEED), settings.topic_name(ENTITIES)
    feed_topic = app.topic(feed_name, key_type=bytes, value_type=bytes, partitions=partitions)
    entities_topic = app.topic(
        entities_name, key_type=bytes, value_type=bytes, partitions=partitions
    )
    audit_topic = app.topic(
        settings.topic_name(AUDIT), key_type=bytes, value_type=bytes, partitions=partitions
    )
    decisions_topic = app.topic(
        settings.topic_name(ADMIN_DECISIONS),
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
    )
    lifecycle_topic = app.topic(
        settings.topic_name(LIFECYCLE), key_type=bytes, value_type=bytes, partitions=partitions
    )
    guard = shell.guard_from(settings)
    policy = shell.policy_from(settings)
    # use_partitioner: the changelog partition follows the key (same partitioner as the
    # source topic), not the partition of whichever event of a batch happens to be current.
    sources = app.Table(
        "sources", key_type=bytes, value_type=bytes, partitions=partitions, use_partitioner=True
    )
    entities = app.Table(
        "entities", key_type=bytes, value_type=bytes, partitions=partitions, use_partitioner=True
    )

    async def send(topic: Any, messages: Iterable[tuple[str, str]]) -> list[Any]:
        """Hand (key, JSON) messages to the producer; the futures resolve on delivery."""
        return [await topic.send(key=k.encode(), value=v.encode()) for k, v in messages]

    async def send_inputs(inputs: Sequence[EntityInput]) -> None:
        # The links to one entity travel and are decided together (see sync.links.pack_links).
        packed = pack_links(inputs)
        messages = ((i.entity_id, EntityMessage(i).model_dump_json()) for i in packed)
        for fut in await send(entities_topic, messages):
            await fut

    @app.agent(feed_topic, name="route_feed")
    async def route_feed(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            freeze_long_lived_objects()  # start-up is over (see connectors.stream.gc_freeze)
            progress.in_flight += 1
            try:
                await _route_batch(batch)
            finally:
                progress.in_flight -= 1

    async def _route_batch(batch: Sequence[Any]) -> None:
        new_states: dict[bytes, Any] = {}  # SourceState, or a control key's state; None: gone
        changed: set[bytes] = set()  # unchanged states are not written back
        where: dict[bytes, int] = {}  # each put key's partition: that of the message causing it
        outgoing: list[EntityInput] = []
        # (partition, control message, time of the event that caused it) on the feed topic
        controls: list[tuple[int, Any, float | None]] = []
        decided: list[Any] = []  # snapshot decisions for entsync.lifecycle.v1
        memo: shell.ScanMemo | None = None  # shared by the batch's snapshot scans
        controls_read = 0

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
            cause = _cause_from(event, f"feed.{message.type}", getattr(message, "source", None))
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
                    routed = route(prev, message, cause, settings.id_namespace)
                    put(key, routed.state, prev, partition)
                    outgoing.extend(routed.inputs)
        await send_inputs(outgoing)
        futures = []
        for partition, control, stamp in controls:
            value = FeedTopicMessage(control).model_dump_json().encode()
            target = None if partition < 0 else partition  # a tally goes to its coordinator
            # A control carries the time of the input that caused it (a SnapshotCompleted, a
            # HoldDecided), so absence is dated by its evidence: a replay dates it the same.
            futures.append(
                await feed_topic.send(
                    key=control.key.encode(), value=value, partition=target, timestamp=stamp
                )
            )
        futures += await send(
            lifecycle_topic,
            ((f"snapshot:{d.category.value}:{d.scope}", d.model_dump_json()) for d in decided),
        )
        for fut in futures:
            await fut
        for d in decided:
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
        progress.feed_events += len(batch)
        progress.control_events += controls_read
        log.debug(
            "route_feed.batch",
            offsets=sorted((e.message.partition, e.message.offset) for e in batch),
        )

    @app.agent(entities_topic, name="reconcile")
    async def reconcile(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            progress.in_flight += 1
            try:
                await _reconcile_batch(batch)
            finally:
                progress.in_flight -= 1

    async def _apply(ops: list[Any]) -> list[Any]:
        """Results per op; None for an op the directory refused for good (or skipped after one).

        A refused write must not stop the stream for everyone: it is reported, counted, and the
        entity's next input tries again. An unreachable directory still stops the worker.
        """
        if not ops:
            return []
        try:
            results: list[Any] = await writer.apply(ops)
            return results
        except DirectoryWriteError as exc:
            if not all(isinstance(error, DirectoryWriteError) for error in exc.errors):
                raise
            for error in exc.errors:
                assert isinstance(error, DirectoryWriteError)
                progress.refused_writes += 1
                log.error(
                    "directory.write_refused",
                    dn=error.dn,
                    operation=error.operation,
                    result=error.result_name,
                )
            return list(exc.results)

    async def _reconcile_batch(batch: Sequence[Any]) -> None:
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
                for pkey, pstate, decision in _partition_request(inp, event, new_states):
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
        results = await _apply(ops)
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
        futures = await send(audit_topic, ((a.entity_id, a.model_dump_json()) for a in written))
        await send_inputs(emits)
        futures += await send(
            decisions_topic, ((o.entity_id, o.model_dump_json()) for o in outcomes)
        )
        for fut in futures:
            await fut
        writes = {key: (where[key], new_states[key].model_dump_json().encode()) for key in changed}
        for fut in await write_through(entities, writes):
            await fut
        progress.entity_inputs += len(batch)
        log.debug(
            "reconcile.batch",
            generation=app.consumer_generation_id,
            offsets=sorted((e.message.partition, e.message.offset) for e in batch),
            writes=len(ops),
        )

    def _partition_request(
        inp: SweepRequested | SwitchoverRequested, event: Any, overlay: dict[bytes, EntityState]
    ) -> list[tuple[bytes, EntityState, Decision]]:
        """The sweeper's or the switchover's decisions for the entities of one partition."""
        cause = _cause_from(event, inp.cause.rule)
        found: list[tuple[bytes, EntityState, Decision]] = []
        if isinstance(inp, SweepRequested):
            for key, state in shell.sweepable_states(entities, overlay, inp.partition, partitions):
                decision = lifecycle.sweep(state, inp.now, policy, cause, ctx)
                if decision is not None:
                    found.append((key, state, decision))
        else:
            for key, state in shell.switchover_states(entities, overlay, inp.partition, partitions):
                decision = lifecycle.switch_year(state, inp.at, cause, ctx)
                if decision is not None:
                    found.append((key, state, decision))
        log.info(
            "lifecycle.partition_request",
            request=inp.type,
            partition=inp.partition,
            entities=len(found),
        )
        return found

    if settings.lifecycle_sweep_hour is not None:
        # One worker of the group sends the night's requests (a sweep is idempotent anyway).
        @app.crontab(f"0 {settings.lifecycle_sweep_hour} * * *", timezone=PARIS, on_leader=True)
        async def nightly_sweep() -> None:
            now = datetime.now(UTC)
            for request in shell.sweep_requests(now, partitions):
                value = EntityMessage(request).model_dump_json().encode()
                await entities_topic.send(
                    key=LIFECYCLE_ENTITY.encode(), value=value, partition=request.partition
                )
            log.info("lifecycle.sweep_scheduled", partitions=partitions)

    stall_guard = StallGuard(app, progress, {feed_name, entities_name})
    app.timer(STALL_CHECK_INTERVAL_S)(stall_guard.check)
    return app, progress

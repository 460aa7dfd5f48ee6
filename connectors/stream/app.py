"""The faust application: two thin agents around the pure core.

``route_feed``   entsync.feed.v1     --sync.routing.route-->     entsync.entities.v1
``reconcile``    entsync.entities.v1 --sync.reconcile.decide-->  LDAP ops, entity inputs, audit

This module wires topics, tables and agents; what an agent does with a batch is in
:mod:`connectors.stream.feed_router` and :mod:`connectors.stream.reconciler` (through
:mod:`connectors.stream.write_window`, which decides a batch while the previous one is written).
In both, a batch's outputs are delivered before its table states are written, and its offsets
are acked only after both: a crash anywhere is repaired by re-processing the batch.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import faust

from connectors.ldap.errors import DirectoryError, WriterStoppedError
from connectors.logs import get_logger
from connectors.stream import clients, faust_compat
from connectors.stream import partition_scans as shell
from connectors.stream.clients import KafkaParams
from connectors.stream.deployment import StreamConfig
from connectors.stream.faust_compat.patches import StallGuard
from connectors.stream.feed_router import FeedRouter
from connectors.stream.gc_freeze import freeze_long_lived_objects
from connectors.stream.group import Membership, describe_group
from connectors.stream.intake import FEED_BUFFER, EntityEnds, FeedIntake, IntakeLimits
from connectors.stream.localstate import verifier
from connectors.stream.monitor import BatchTimer, Tally, seed_snapshot_times, update_lag
from connectors.stream.ports import DirectoryPort, FaustStream
from connectors.stream.progress import Progress
from connectors.stream.reconciler import Reconciler
from connectors.stream.restore import ENTITIES_TABLE, SOURCES_TABLE
from connectors.stream.settling import CHECK_S, SETTLE_WARN_SESSIONS, SettleWatch
from connectors.stream.statestore import STORE_URL, raw_view, worker_datadir
from connectors.stream.stopping import AbandonedInputs
from connectors.stream.write_window import ReconcilePipeline, WindowLimits, hold_acks
from schemas.entities import LIFECYCLE_ENTITY, EntityMessage
from sync.absence import Guard
from sync.lifecycle import Policy
from sync.reconcile import Context

log = get_logger(__name__)

PARIS = ZoneInfo("Europe/Paris")
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.05
STALL_CHECK_INTERVAL_S = 1.0
LAG_INTERVAL_S = 5.0
ABANDON_CHECK_INTERVAL_S = 0.2


def _faust_datadir(config: StreamConfig) -> Path:
    """faust's data dir (the tables' databases): ``<state dir>/faust/worker-N``, N the first
    that no other running worker holds (see :func:`connectors.stream.statestore.worker_datadir`)."""
    return worker_datadir(config.state_dir / "faust")


def build_app(
    config: StreamConfig,
    ctx: Context,
    writer: DirectoryPort,
    kafka: KafkaParams,
    *,
    guard: Guard,
    policy: Policy,
) -> tuple[faust.App, Progress]:
    """Create the app. ``writer`` is a ``connectors.ldap.writer.DirectoryWriter``; ``ctx`` the
    core's deployment constants; ``guard`` the mass-absence guard; ``policy`` the lifecycle
    delays."""
    partitions = config.partitions
    faust_compat.install(kafka, config.fetch_max_wait_ms)  # checked first: refuses a mismatch
    app = faust.App(
        config.app_id,
        # brokers, credentials and the replication of the topics faust creates (changelogs)
        **clients.faust_options(kafka),
        key_serializer="raw",
        value_serializer="raw",
        # The tables in RocksDB under the state dir (faust makes <app id>-data/ there): memory
        # bounded whatever the directory's size, a restart reads the changelogs from where its
        # databases stand (connectors.stream.statestore).
        store=STORE_URL,
        datadir=str(_faust_datadir(config)),
        web_enabled=False,
        topic_partitions=partitions,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=1,
        broker_commit_every=BATCH_MAX,
        broker_commit_interval=0.5,
        producer_acks=-1,
        producer_linger_ms=5,  # batch sends: an input fans out into several messages
        # records.send_record_batches fills batches of this size: a batch of inputs in a few
        # requests
        producer_max_batch_size=262144,
        # A fetch brings this much per partition at most: what the worker has taken in and
        # not routed stays small, so the intake's pause takes effect (connectors.stream.intake).
        consumer_max_fetch_size=config.fetch_partition_bytes,
    )
    progress = Progress()

    # Live names, or a replay's private copies: see README "Replay".
    names = config.topics
    feed_name, entities_name = names.streams()
    feed_topic = app.topic(
        feed_name,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        maxsize=FEED_BUFFER,  # faust's default holds 4,096 events: see connectors.stream.intake
    )
    entities_topic = app.topic(
        entities_name, key_type=bytes, value_type=bytes, partitions=partitions
    )
    audit_topic = app.topic(names.audit, key_type=bytes, value_type=bytes, partitions=partitions)
    decisions_topic = app.topic(
        names.decisions,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
    )
    lifecycle_topic = app.topic(
        names.lifecycle, key_type=bytes, value_type=bytes, partitions=partitions
    )
    # Both tables are written through connectors.stream.changelog (the causing message's
    # partition); use_partitioner would make faust's own writes, if any, follow the key too,
    # not the partition of whichever event of a batch happens to be current.
    # faust compacts the changelogs it creates; min.insync.replicas comes with them.
    changelog = clients.changelog_configs(kafka)
    # A database kept from an earlier run is checked against its changelog when its partition
    # is assigned (connectors.stream.localstate).
    verify = verifier(kafka)
    sources = app.Table(
        SOURCES_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        use_partitioner=True,
        extra_topic_configs=changelog,
        options={"verify": verify},
    )
    entities = app.Table(
        ENTITIES_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        use_partitioner=True,
        extra_topic_configs=changelog,
        options={"verify": verify},
    )

    tally = Tally()
    ends = EntityEnds()  # where the worker's own inputs landed: the backlog the intake reads
    router = FeedRouter(
        sources=sources,
        feed_topic=feed_topic,
        entities_topic=entities_topic,
        lifecycle_topic=lifecycle_topic,
        partitions=partitions,
        namespace=ctx.namespace,
        guard=guard,
        progress=progress,
        tally=tally,
        ends=ends,
    )
    reconciler = Reconciler(
        entities=entities,
        writer=writer,
        entities_topic=entities_topic,
        audit_topic=audit_topic,
        decisions_topic=decisions_topic,
        partitions=partitions,
        ctx=ctx,
        policy=policy,
        progress=progress,
        generation=lambda: int(app.consumer_generation_id),
        tally=tally,
        ends=ends,
    )
    if config.intake_max_waiting:
        limits = IntakeLimits(high=config.intake_max_waiting, low=config.intake_max_waiting // 2)
        intake = FeedIntake(
            app, feed_name, reconciler.waiting, reconciler.delivering, progress, limits
        )
        app.task(intake.run)

    @app.agent(feed_topic, name="route_feed")
    async def route_feed(stream: FaustStream) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            freeze_long_lived_objects()  # if the recovery signal below did not come first
            progress.in_flight += 1
            timer = BatchTimer("route_feed", len(batch))
            try:
                await router.route_batch(batch)
                timer.done()
            finally:
                progress.in_flight -= 1

    crashing: set[asyncio.Future[None]] = set()
    abandoned = AbandonedInputs(app, entities_name)
    app.timer(ABANDON_CHECK_INTERVAL_S)(abandoned.tick)

    def crash(exc: BaseException) -> None:
        # A batch failed: no later one completes. Its inputs are read again at the next start.
        first = not abandoned.failed
        abandoned.fail()
        writer.abort()  # the batches still writing stop retrying: the worker stops now
        if isinstance(exc, WriterStoppedError):
            return  # stopping on request (see connectors.stream.stopping): not a crash
        if first:
            crashing.add(asyncio.ensure_future(app.crash(exc)))

    @app.agent(entities_topic, name="reconcile")
    async def reconcile(stream: FaustStream) -> None:
        # The next batch is decided while the directory writes of this one run (see write_window).
        pipeline = ReconcilePipeline(
            reconciler,
            progress,
            hold_acks(stream),
            on_error=crash,
            limits=WindowLimits(max_inputs=config.window_max_inputs),
        )
        try:
            async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
                await pipeline.submit(batch)
        except DirectoryError:
            # A batch's writes failed: the pipeline reported it (crash above), the worker is
            # stopping. Raised, it would make faust start this agent again, and its stop wait
            # for a new actor that never ends.
            return
        finally:
            await pipeline.cancel()

    if config.sweep_hour is not None:
        # One worker of the group sends the night's requests (a sweep is idempotent anyway).
        @app.crontab(f"0 {config.sweep_hour} * * *", timezone=PARIS, on_leader=True)
        async def nightly_sweep() -> None:
            now = datetime.now(UTC)
            for request in shell.sweep_requests(now, partitions):
                value = EntityMessage(request).model_dump_json().encode()
                await entities_topic.send(
                    key=LIFECYCLE_ENTITY.encode(), value=value, partition=request.partition
                )
            log.info("lifecycle.sweep_scheduled", partitions=partitions)

    @app.on_rebalance_complete.connect
    def tables_recovered(
        sender: object, /, *args: object, signal: object, **kwargs: object
    ) -> None:
        # Start-up is over (see connectors.stream.gc_freeze): before the first batch, not in it.
        freeze_long_lived_objects()
        tally.recount(raw_view(entities), raw_view(sources))  # the partitions held now

    async def seed_metrics() -> None:
        await seed_snapshot_times(kafka, names.lifecycle)

    async def consumer_lag() -> None:
        update_lag(app, (feed_name, entities_name))

    app.task(seed_metrics)
    app.timer(LAG_INTERVAL_S)(consumer_lag)

    stall_guard = StallGuard(app, progress, {feed_name, entities_name})
    app.timer(STALL_CHECK_INTERVAL_S)(stall_guard.check)

    async def describe() -> Membership:
        return await describe_group(kafka, config.app_id)  # faust's group is the app id

    settle_watch = SettleWatch(app, describe, SETTLE_WARN_SESSIONS * config.session_timeout_s)
    app.timer(CHECK_S)(settle_watch.tick)
    return app, progress

"""Run the faust worker, continuously or until idle (batch mode for tests and scripts).

Idle means the whole consumer group's input is done, whichever worker holds which partition (or
none): no batch is in flight here, the group's committed offsets, read on the broker, are at the
true ends of every partition of the feed and entities topics (read after them, see
:mod:`connectors.stream.group`; a batch's offsets are committed only once its directory writes
are acknowledged), and this held for ``stable_checks`` checks in a row with the same ends. Each
worker of a group run with ``--until-idle`` stops there, leaving the group in turn with the
others (:func:`connectors.stream.group.may_leave`). SIGTERM and SIGINT stop a worker in
every state (see :mod:`connectors.stream.stopping`).

The process around it (settings, directory preflight, topics, lost state, exit codes) is
:mod:`entsync.worker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import faust
from aiokafka.structs import TopicPartition
from mode import ServiceT

from connectors.ldap.batch import BatchWriter
from connectors.logs import get_logger
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import access
from connectors.stream.group import (
    GroupPosition,
    describe_group,
    group_position,
    leave_in_turn,
    stream_partitions,
)
from connectors.stream.progress import Progress
from connectors.stream.settling import unsettled
from connectors.stream.stopping import stop_promptly
from schemas.topics import ENTITIES, FEED

log = get_logger(__name__)

IDLE_CHECK_INTERVAL_S = 0.5
# At idle, a worker waits its turn to leave the group for at most this many session timeouts
# without the group moving (a member gone, a rebalance done): see connectors.stream.group.
LEAVE_PATIENCE_SESSIONS = 3


class IdleDetector:
    """Counts consecutive observations of the group's input done (see the module docstring)."""

    def __init__(
        self,
        app: faust.App,
        progress: Progress,
        partitions: int,
        stable_checks: int,
        kafka: KafkaParams,
        topics: Sequence[str] = (FEED.name, ENTITIES.name),
    ) -> None:
        self.app = app
        self.kafka = kafka
        self.progress = progress
        self.group = str(app.conf.id)  # faust's consumer group is the app id
        self.expected = stream_partitions(topics, partitions)
        self.stable_checks = stable_checks
        self.streak = 0
        self._seen: tuple[int, ...] = ()
        self._ends: dict[TopicPartition, int] = {}

    async def observe(self) -> bool:
        # Batches may start and finish between two checks: any progress restarts the count.
        seen = (
            self.progress.feed_events,
            self.progress.entity_inputs,
            self.progress.directory_changes,
            self.progress.noop_writes,
        )
        # In a rebalance (or before the first join), the consumer thread waits on the broker: a
        # worker stopped then could leave it hanging (see connectors.stream.stopping).
        if seen != self._seen or self.progress.in_flight or unsettled(self.app):
            self._seen = seen
            self.streak = 0
            return False
        consumer = self.app.consumer
        await consumer.commit()  # what this worker acknowledged since faust's last commit
        try:
            position = await group_position(self.kafka, self.group, self.expected)
        except Exception as exc:  # the broker busy or away: not idle, ask again at the next check
            log.warning("worker.group_position_unknown", error=type(exc).__name__)
            self.streak = 0
            return False
        if not position.done:
            self.streak = 0
            await self._commit_again(position)
            return False
        if position.ends != self._ends:  # others made progress in between
            self._ends = position.ends
            self.streak = 0
        self.streak += 1
        if self.streak < self.stable_checks:
            return False
        # As faust's own commit does: whatever faust's producer still buffers goes out.
        await self.app.producer.flush()
        return True

    async def _commit_again(self, position: GroupPosition) -> None:
        """faust records an offset as committed even when the broker refused the commit (a
        rebalance in between), and never commits it again: the group would stay behind on a
        partition this worker has done. Such offsets are committed again (refused again while
        the assignment changes: the next check retries)."""
        consumer = self.app.consumer
        mine = access.committed_offsets(consumer)
        again = {}
        for tp in consumer.assignment():
            offset = mine.get(tp)
            broker = position.committed.get(TopicPartition(tp.topic, tp.partition))
            if offset is not None and broker is not None and broker < offset:
                again[tp] = offset
        if again:
            await access.commit(consumer, again)


def faust_worker(app: faust.App, loglevel: str, *services: ServiceT) -> faust.Worker:
    """faust's worker for ``app``, quiet, without its terminal spinner: with one, faust puts the
    root logger at DEBUG, so that every debug call of aiokafka and faust builds a record the
    handler then drops (a fifth of the CPU of an initial load), and it writes cursor codes.
    ``services`` run in its loop beside the app (the metrics server)."""
    worker = faust.Worker(app, *services, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


@dataclass
class Run:
    """How a faust worker's run ended."""

    exit_code: int  # faust's own (SystemExit), or 1 when it raised
    idle: bool  # stopped at idle (``until_idle``)
    error: str | None  # not idle in time, or why the worker raised
    crash: BaseException | None  # what crashed the app, if anything


def execute(
    app: faust.App,
    progress: Progress,
    writer: BatchWriter,
    kafka: KafkaParams,
    *,
    streams: Sequence[str],
    partitions: int,
    services: Sequence[ServiceT] = (),
    loglevel: str = "warn",
    until_idle: bool,
    started: float,
    timeout_s: float | None = None,
    stable_checks: int = 3,
    on_idle: Callable[[], Awaitable[bool]] | None = None,
) -> Run:
    """Run ``app`` until stopped (continuous) or until idle. ``streams``: the topics whose ends
    idle waits for; ``started``: the ``time.monotonic()`` the timeout counts from.

    ``on_idle`` (with ``until_idle``) is called at each idle point; when it returns True (it
    published more input, as a replay does stage by stage) the worker goes on to the next idle.
    """
    outcome = Run(0, idle=False, error=None, crash=None)  # what the callbacks find out
    worker = faust_worker(app, loglevel, *services)
    disarm = stop_promptly(worker, writer.abort)

    if until_idle:
        detector = IdleDetector(app, progress, partitions, stable_checks, kafka, streams)
        stopping: set[asyncio.Future[None]] = set()

        def _stop(in_turn: bool = False) -> None:
            if not stopping:
                stopping.add(
                    asyncio.ensure_future(_leave_then_stop() if in_turn else worker.stop())
                )

        async def _leave_then_stop() -> None:
            # Workers idle together leave the group one at a time (connectors.stream.group).
            member = access.member_id(app.consumer)
            if member is not None:
                patience = LEAVE_PATIENCE_SESSIONS * float(app.conf.broker_session_timeout)
                group = detector.group
                turn = await leave_in_turn(lambda: describe_group(kafka, group), member, patience)
                if not turn:
                    log.warning("worker.left_out_of_turn", waited_s=patience)
            await worker.stop()

        async def _check_idle() -> None:
            if stopping:
                return
            if await detector.observe():
                if on_idle is not None and await on_idle():
                    detector.streak = 0
                    return
                outcome.idle = True
                log.info(
                    "worker.idle",
                    feed_events=progress.feed_events,
                    changes=progress.directory_changes,
                )
                _stop(in_turn=True)
            elif timeout_s is not None and time.monotonic() - started > timeout_s:
                outcome.error = f"not idle after {timeout_s:.0f} s"
                _stop()

        app.timer(IDLE_CHECK_INTERVAL_S)(_check_idle)

    exit_code = 0
    try:
        writer.start()  # its processes: a start-up cost, before the first batch
        worker.execute_from_commandline()
    except SystemExit as exc:
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # the worker already logged it
        outcome.error = f"worker crashed: {type(exc).__name__}"
        exit_code = 1
    finally:
        writer.close()
        disarm()
    if access.consumer_thread_left(app):
        log.warning("worker.consumer_thread_left")  # a rebalance under way: see faust_compat
    crash = access.crash_reason(app)
    return Run(exit_code, outcome.idle, outcome.error, crash)

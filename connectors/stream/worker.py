"""Run the faust worker, continuously or until idle (batch mode for tests and scripts).

Idle means: every partition of the feed and entities topics is assigned to this worker, its
committed offset has reached the partition's end, no batch is in flight (so every directory write
of consumed events is acknowledged), this held for ``stable_checks`` checks in a row, and a final
commit of those offsets was accepted by the broker. The cheap checks use the consumer's fetch high
watermarks; the last one confirms with the true ends (``connectors.stream.offsets``), since fetch
high watermarks go stale as soon as our own agents produce. SIGTERM and SIGINT stop a worker in
every state (see :mod:`connectors.stream.stopping`).

The process around it (settings, directory preflight, topics, lost state, exit codes) is
:mod:`entsync.worker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from connectors.ldap.writer import DirectoryWriter
from connectors.logs import get_logger
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets
from connectors.stream.progress import Progress
from connectors.stream.stopping import stop_promptly
from schemas.topics import ENTITIES, FEED

log = get_logger(__name__)

IDLE_CHECK_INTERVAL_S = 0.5


class IdleDetector:
    """Counts consecutive idle observations of a running app."""

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
        self.expected = {(t, p) for t in topics for p in range(partitions)}
        self.stable_checks = stable_checks
        self.streak = 0
        self._seen: tuple[int, ...] = ()

    async def observe(self) -> bool:
        # Batches may start and finish between two checks: any progress restarts the count.
        seen = (
            self.progress.feed_events,
            self.progress.entity_inputs,
            self.progress.directory_changes,
            self.progress.noop_writes,
        )
        if seen != self._seen:
            self._seen = seen
            self.streak = 0
            return False
        consumer = self.app.consumer
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        if not self.expected <= assigned.keys() or self.progress.in_flight:
            self.streak = 0
            return False
        await consumer.commit()
        committed: Any = consumer._committed_offset  # type: ignore[attr-defined]  # no accessor
        for key in self.expected:
            tp = assigned[key]
            highwater = consumer.highwater(tp)
            if highwater is None:
                self.streak = 0
                return False
            if (committed.get(tp) or 0) < highwater:
                self.streak = 0
                return False
        self.streak += 1
        if self.streak < self.stable_checks:
            return False
        # faust records an offset as committed even when the broker refused the commit (a
        # rebalance in between), so the final commit is made here and must be accepted.
        # The fetch high watermarks go stale as soon as our own agents produce: confirm with the
        # true ends that nothing was produced after the last fetch.
        final = await true_end_offsets(self.kafka, [assigned[key] for key in sorted(self.expected)])
        if any((committed.get(tp) or 0) < end for tp, end in final.items()):
            self.streak = 0
            return False
        # As faust's own commit does: table changelogs and emitted inputs reach the broker
        # before the offsets that produced them are committed.
        await self.app.producer.flush()
        if await consumer._commit(final):  # type: ignore[attr-defined]
            return True
        self.streak = 0
        return False


def faust_worker(app: faust.App, loglevel: str, *services: Any) -> faust.Worker:
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
    writer: DirectoryWriter,
    kafka: KafkaParams,
    *,
    streams: Sequence[str],
    partitions: int,
    services: Sequence[Any] = (),
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
    outcome: dict[str, Any] = {"idle": False, "error": None}
    worker = faust_worker(app, loglevel, *services)
    disarm = stop_promptly(worker, writer.abort)

    if until_idle:
        detector = IdleDetector(app, progress, partitions, stable_checks, kafka, streams)
        stopping: set[asyncio.Future[Any]] = set()

        def _stop() -> None:
            if not stopping:
                stopping.add(asyncio.ensure_future(worker.stop()))

        async def _check_idle() -> None:
            if stopping:
                return
            if await detector.observe():
                if on_idle is not None and await on_idle():
                    detector.streak = 0
                    return
                outcome["idle"] = True
                log.info(
                    "worker.idle",
                    feed_events=progress.feed_events,
                    changes=progress.directory_changes,
                )
                _stop()
            elif timeout_s is not None and time.monotonic() - started > timeout_s:
                outcome["error"] = f"not idle after {timeout_s:.0f} s"
                _stop()

        app.timer(IDLE_CHECK_INTERVAL_S)(_check_idle)

    exit_code = 0
    try:
        writer.start()  # its processes: a start-up cost, before the first batch
        worker.execute_from_commandline()
    except SystemExit as exc:
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # the worker already logged it
        outcome["error"] = f"worker crashed: {type(exc).__name__}"
        exit_code = 1
    finally:
        writer.close()
        disarm()
    crash = getattr(app, "_crash_reason", None)
    return Run(exit_code, outcome["idle"], outcome["error"], crash)

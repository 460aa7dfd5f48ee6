"""Run the faust worker, continuously or until idle (batch mode for tests and scripts).

Idle means: every partition of the feed and entities topics is assigned to this worker, its
committed offset has reached the partition's end, no batch is in flight (so every directory write
of consumed events is acknowledged), this held for ``stable_checks`` checks in a row, and a final
commit of those offsets was accepted by the broker. The cheap checks use the consumer's fetch high
watermarks; the last one confirms with the true ends (``connectors.stream.offsets``), since fetch
high watermarks go stale as soon as our own agents produce.

Exit codes: 0 done (idle, or stopped on request); 1 other failures; 4 directory writes refused
(``REFUSED_WRITES_EXIT``); 5 the directory's schema refused at start (``PREFLIGHT_EXIT``); 6 the
directory did not answer for the whole retry budget (``DIRECTORY_DOWN_EXIT``); 7 a stop signal
and no clean stop within 8 s, or a second signal (``FORCED_STOP_EXIT``). SIGTERM and SIGINT stop
a worker in every state (see :mod:`connectors.stream.stopping`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from connectors.ldap.errors import (
    BaseEntryError,
    DirectoryError,
    DirectoryUnavailableError,
    PreflightError,
)
from connectors.ldap.preflight import prepare_directory
from connectors.logs import get_logger
from connectors.monitoring.metrics import set_build_info
from connectors.monitoring.server import HealthServer, PortInUseError, bind
from connectors.stream.app import build_app, context_of
from connectors.stream.clients import KafkaParams
from connectors.stream.monitor import MetricsService, worker_checks
from connectors.stream.offsets import true_end_offsets
from connectors.stream.progress import Progress
from connectors.stream.restore import restore_lost_state
from connectors.stream.stopping import stop_promptly
from connectors.stream.topics import ensure_topics, require_partitions
from entsync.ldap_clients import directory_writer, ldap_params
from entsync.settings import ConfigurationError, Settings
from schemas.topics import ENTITIES, FEED

log = get_logger(__name__)

IDLE_CHECK_INTERVAL_S = 0.5
REFUSED_WRITES_EXIT = 4
PREFLIGHT_EXIT = 5
DIRECTORY_DOWN_EXIT = 6


@dataclass
class WorkerResult:
    exit_code: int
    idle: bool
    progress: Progress
    elapsed_s: float
    error: str | None = None


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


async def _prepare_topics(settings: Settings, kafka: KafkaParams) -> None:
    await ensure_topics(kafka, settings.topic_partitions, extra=settings.private_topic_names())
    streams = [settings.topic_name(FEED), settings.topic_name(ENTITIES)]
    await require_partitions(kafka, settings.topic_partitions, streams)


def faust_worker(app: faust.App, loglevel: str, *services: Any) -> faust.Worker:
    """faust's worker for ``app``, quiet, without its terminal spinner: with one, faust puts the
    root logger at DEBUG, so that every debug call of aiokafka and faust builds a record the
    handler then drops (a fifth of the CPU of an initial load), and it writes cursor codes.
    ``services`` run in its loop beside the app (the metrics server)."""
    worker = faust.Worker(app, *services, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


def _directory_refused(settings: Settings) -> tuple[int, str] | None:
    """Before anything runs: the directory's schema must accept our writes (else every write
    would be refused one by one), and the base entries are created when absent. (exit code,
    message) if the worker must not start."""
    try:
        prepare_directory(ldap_params(settings), settings.ldap_base_dn)
    except (PreflightError, BaseEntryError) as exc:
        return PREFLIGHT_EXIT, str(exc)
    except DirectoryError as exc:
        return 1, f"directory not ready: {exc}"
    return None


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


def run_worker(
    settings: Settings,
    kafka: KafkaParams,
    *,
    until_idle: bool,
    timeout_s: float | None = None,
    stable_checks: int = 3,
    loglevel: str = "warn",
    on_idle: Callable[[], Awaitable[bool]] | None = None,
) -> WorkerResult:
    """Run until stopped (continuous) or until idle; returns the exit code and counters.
    ``kafka``: from ``entsync.kafka_clients.kafka_params(settings)``.

    ``on_idle`` (with ``until_idle``) is called at each idle point; when it returns True (it
    published more input, as a replay does stage by stage) the worker goes on to the next idle.
    """
    settings.require_ldap()
    started = time.monotonic()
    port = settings.metrics_port_for(continuous=not until_idle)
    try:  # first: a port already taken stops the worker before anything is done
        metrics_socket = None if port is None else bind(settings.metrics_host, port)
    except PortInUseError as exc:
        raise ConfigurationError(str(exc)) from exc
    set_build_info("worker")
    refused = _directory_refused(settings)
    if refused is not None:
        _close(metrics_socket)
        return WorkerResult(refused[0], False, Progress(), time.monotonic() - started, refused[1])
    asyncio.run(_prepare_topics(settings, kafka))
    try:
        # Tables lost with the broker come back from the directory before anything is decided.
        asyncio.run(restore_lost_state(settings, kafka, context_of(settings)))
    except DirectoryError as exc:
        _close(metrics_socket)
        return WorkerResult(1, False, Progress(), time.monotonic() - started, f"directory: {exc}")
    writer = directory_writer(settings)
    app, progress = build_app(settings, writer, kafka)
    outcome: dict[str, Any] = {"idle": False, "error": None}
    if settings.log_level.upper() == "DEBUG":
        loglevel = "info"  # faust's own rebalance and recovery messages
    streams = (settings.topic_name(FEED), settings.topic_name(ENTITIES))
    services = []
    if metrics_socket is not None:
        checks = worker_checks(app, streams)
        services.append(MetricsService(HealthServer(metrics_socket, checks)))
    worker = faust_worker(app, loglevel, *services)
    disarm = stop_promptly(worker, writer.abort)

    if until_idle:
        detector = IdleDetector(
            app,
            progress,
            settings.topic_partitions,
            stable_checks,
            kafka,
            (settings.topic_name(FEED), settings.topic_name(ENTITIES)),
        )

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
    if isinstance(crash, DirectoryUnavailableError):
        # The DN and the last error are in the 'ldap.retry' log events; not repeated here.
        outcome["error"] = (
            f"the directory at {settings.resolved().ldap_url} did not answer for the whole "
            f"retry budget ({settings.ldap_retry_total_s:g} s, ENTSYNC_LDAP_RETRY_TOTAL_S): "
            "worker stopped; the writes not acknowledged are made again at the next start"
        )
        exit_code = DIRECTORY_DOWN_EXIT
    elif crash is not None:
        outcome["error"] = outcome["error"] or f"worker crashed: {type(crash).__name__}: {crash}"
    # A person's add refused for a login another entry holds is not left refused: the person
    # gets another login (see 'login.taken_in_directory').
    left_refused = progress.refused_writes - progress.logins_reallocated
    if left_refused > 0 and not outcome["error"]:
        outcome["error"] = (
            f"{left_refused} directory writes refused (see the "
            "'directory.write_refused' log events); those entries are retried at their next change"
        )
        exit_code = exit_code or REFUSED_WRITES_EXIT
    if outcome["error"]:
        exit_code = exit_code or 1
    elif until_idle and not outcome["idle"]:
        exit_code = exit_code or 1
        outcome["error"] = "worker stopped before reaching idle"
    return WorkerResult(
        exit_code=exit_code,
        idle=outcome["idle"],
        progress=progress,
        elapsed_s=time.monotonic() - started,
        error=outcome["error"],
    )

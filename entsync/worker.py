"""``entsync worker``: the worker process around the faust app, from the settings.

Before the app runs: the metrics port is bound (a port taken stops the worker first), the
directory's schema is checked and its base entries made, the topics are created, and tables lost
with the broker are rebuilt from the directory. The app itself runs in
:func:`connectors.stream.faust_worker.execute`.

Exit codes (:mod:`entsync.exit_codes`): 0 done (idle, or stopped on request); 1 other failures;
4 directory writes refused; 5 the directory's schema refused at start; 6 the directory did not
answer (at start, or for the whole retry budget); 7 a stop signal and no clean stop within 8 s,
or a second signal (``connectors.stream.stopping``).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.errors import ConfigurationError
from connectors.ldap.errors import (
    BaseEntryError,
    DirectoryAuthError,
    DirectoryError,
    DirectoryUnavailableError,
    PreflightError,
)
from connectors.ldap.preflight import prepare_directory
from connectors.monitoring.metrics import set_build_info
from connectors.monitoring.server import HealthServer, PortInUseError, bind
from connectors.stream.app import build_app
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_worker import execute
from connectors.stream.monitor import MetricsService, worker_checks
from connectors.stream.progress import Progress
from connectors.stream.restore import restore_lost_state
from connectors.stream.topics import ensure_topics, require_partitions
from entsync.exit_codes import ExitCode
from entsync.ldap_clients import directory_writer, ldap_params
from entsync.settings import Settings
from entsync.stream_config import context_of, guard_from, policy_from, stream_config

REFUSED_WRITES_EXIT = ExitCode.WRITES_REFUSED
PREFLIGHT_EXIT = ExitCode.SCHEMA_REFUSED
DIRECTORY_DOWN_EXIT = ExitCode.DIRECTORY_UNREACHABLE


@dataclass
class WorkerResult:
    exit_code: int
    idle: bool
    progress: Progress
    elapsed_s: float
    error: str | None = None


async def _prepare_topics(settings: Settings, kafka: KafkaParams) -> None:
    await ensure_topics(kafka, settings.topic_partitions, extra=settings.private_topic_names())
    streams = list(stream_config(settings).topics.streams())
    await require_partitions(kafka, settings.topic_partitions, streams)


def _directory_refused(settings: Settings) -> tuple[int, str] | None:
    """Before anything runs: the directory's schema must accept our writes (else every write
    would be refused one by one), and the base entries are created when absent. (exit code,
    message) if the worker must not start."""
    try:
        prepare_directory(ldap_params(settings), settings.ldap_base_dn)
    except (PreflightError, BaseEntryError) as exc:
        return PREFLIGHT_EXIT, str(exc)
    except (DirectoryUnavailableError, DirectoryAuthError) as exc:  # as 'directory check' does
        return DIRECTORY_DOWN_EXIT, f"directory not ready: {exc}"
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
    config = stream_config(settings)
    ctx = context_of(settings)
    try:
        # Tables lost with the broker come back from the directory before anything is decided.
        asyncio.run(restore_lost_state(config, kafka, ctx, ldap_params(settings)))
    except DirectoryError as exc:
        _close(metrics_socket)
        return WorkerResult(1, False, Progress(), time.monotonic() - started, f"directory: {exc}")
    writer = directory_writer(settings)
    app, progress = build_app(
        config, ctx, writer, kafka, guard=guard_from(settings), policy=policy_from(settings)
    )
    if settings.log_level.upper() == "DEBUG":
        loglevel = "info"  # faust's own rebalance and recovery messages
    streams = config.topics.streams()
    services = []
    if metrics_socket is not None:
        services.append(MetricsService(HealthServer(metrics_socket, worker_checks(app, streams))))
    run = execute(
        app,
        progress,
        writer,
        kafka,
        streams=streams,
        partitions=config.partitions,
        services=services,
        loglevel=loglevel,
        until_idle=until_idle,
        started=started,
        timeout_s=timeout_s,
        stable_checks=stable_checks,
        on_idle=on_idle,
    )
    exit_code, error = run.exit_code, run.error
    if isinstance(run.crash, DirectoryUnavailableError):
        # The DN and the last error are in the 'ldap.retry' log events; not repeated here.
        error = (
            f"the directory at {settings.resolved().ldap_url} did not answer for the whole "
            f"retry budget ({settings.ldap_retry_total_s:g} s, ENTSYNC_LDAP_RETRY_TOTAL_S): "
            "worker stopped; the writes not acknowledged are made again at the next start"
        )
        exit_code = DIRECTORY_DOWN_EXIT
    elif run.crash is not None:
        error = error or f"worker crashed: {type(run.crash).__name__}: {run.crash}"
    # A person's add refused for a login another entry holds is not left refused: the person
    # gets another login (see 'login.taken_in_directory').
    left_refused = progress.refused_writes - progress.logins_reallocated
    if left_refused > 0 and not error:
        error = (
            f"{left_refused} directory writes refused (see the "
            "'directory.write_refused' log events); those entries are retried at their next change"
        )
        exit_code = exit_code or REFUSED_WRITES_EXIT
    if error:
        exit_code = exit_code or 1
    elif until_idle and not run.idle:
        exit_code = exit_code or 1
        error = "worker stopped before reaching idle"
    return WorkerResult(
        exit_code=exit_code,
        idle=run.idle,
        progress=progress,
        elapsed_s=time.monotonic() - started,
        error=error,
    )

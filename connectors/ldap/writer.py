"""The ldap3 directory writer: ops in a thread pool, or in processes of their own.

ldap3 connections are synchronous, so ops run in a thread pool, one connection per thread at a
time; optionally that pool lives in processes of their own (ldap3 is pure Python: its threads
share the caller's interpreter lock). The default writer is python-ldap's
(:mod:`connectors.ldap.pipelined`); this one stays selectable (``ENTSYNC_LDAP_WRITER=ldap3``).
Both share :class:`connectors.ldap.batch.BatchWriter`'s front (per-DN order, processes) and the
healing of :mod:`connectors.ldap.healing`.

``abort`` makes retries stop at their next pause and ``apply`` raise at once (a worker told to
stop); writer processes also exit with the process that started them
(:mod:`connectors.ldap.lifeline`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import structlog
from ldap3 import BASE, Connection
from ldap3.core.exceptions import LDAPException

from connectors.ldap.batch import BatchWriter, Chain, Outcome, RetryPolicy
from connectors.ldap.connection import (
    TRANSIENT_RESULT_CODES,
    LdapParams,
    TransientLdapError,
    classify,
    close_quietly,
    connect,
    result_of,
)
from connectors.ldap.errors import DirectoryError, DirectoryUnavailableError, DirectoryWriteError
from connectors.ldap.healing import (
    Action,
    AddRequest,
    DeleteRequest,
    ModifyRequest,
    OpResult,
    ReadRequest,
    Reply,
    Request,
    kind,
    run_steps,
    steps,
    value_changes,
)
from connectors.ldap.lifeline import EitherStop, StopFlag
from connectors.ldap.writer_processes import LogSetup
from sync.ops import DirectoryOp

__all__ = [  # the writers' shared names, from here as before
    "Action",
    "BatchWriter",
    "Chain",
    "DirectoryWriter",
    "OpResult",
    "RetryPolicy",
    "value_changes",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")


class _Cancelled(Exception):
    """The apply() call that owns this op was cancelled."""


class _ConnectionPool:
    """Bound connections reused across ops; at most one per pool thread is ever in use."""

    def __init__(self, params: LdapParams) -> None:
        self._params = params
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return connect(self._params)

    def release(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for conn in idle:
            close_quietly(conn)


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an ldap3 call, turning lost connections into TransientLdapError."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        transient = classify(exc)
        if transient is not None:
            raise transient from exc
        raise


def _send(conn: Connection, request: Request) -> Reply:
    """One request on an ldap3 connection; TransientLdapError if the server was busy."""
    if isinstance(request, AddRequest):
        ok = _call(conn.add, request.dn, attributes=request.attributes)
    elif isinstance(request, ModifyRequest):
        ok = _call(conn.modify, request.dn, request.changes)
    elif isinstance(request, DeleteRequest):
        ok = _call(conn.delete, request.dn)
    else:
        ok = _call(conn.search, request.dn, "(objectClass=*)", BASE, attributes=request.attributes)
    code, name, message = result_of(conn)
    if code in TRANSIENT_RESULT_CODES:
        raise TransientLdapError(name or str(code), maybe_applied=False)
    if ok or not code:
        return Reply(0, entry=_existing_values(conn) if isinstance(request, ReadRequest) else {})
    return Reply(code, name, message)


class DirectoryWriter(BatchWriter):
    """The ldap3 writer: ops in threads, one connection each, or in processes of their own."""

    KIND = "ldap3"

    def __init__(
        self,
        params: LdapParams,
        *,
        max_in_flight: int = 8,
        retry: RetryPolicy | None = None,
        processes: int = 0,
        log_setup: LogSetup | None = None,
    ) -> None:
        """``max_in_flight``: connections (and threads); ``processes``: see BatchWriter."""
        super().__init__(
            params,
            max_in_flight=max_in_flight,
            retry=retry,
            processes=processes,
            log_setup=log_setup,
        )
        self._pool = _ConnectionPool(params)
        if not processes:
            self._executor = ThreadPoolExecutor(
                max_workers=max_in_flight, thread_name_prefix="entsync-ldap"
            )

    async def _run_here(self, chains: list[Chain]) -> list[Outcome]:
        pending = deque(chains)
        outcomes: list[Outcome] = []
        stop = EitherStop(self._abort)
        loop = asyncio.get_running_loop()

        async def worker() -> None:
            while pending:
                chain = pending.popleft()
                outcomes.extend(
                    await loop.run_in_executor(self._executor, self._run_chain, chain, stop)
                )

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(self._max_in_flight, len(chains)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            stop.set()  # threads finish their current op, then stop
            for task in workers:
                task.cancel()
            raise
        return outcomes

    def run_chains(self, chains: list[Chain], stop: StopFlag) -> list[Outcome]:
        """In a writer process: the chains on this writer's threads, as many at a time as it
        has."""
        futures = [self._executor.submit(self._run_chain, chain, stop) for chain in chains]
        return [outcome for future in futures for outcome in future.result()]

    def _close_here(self) -> None:
        if self._processes is None:
            self._executor.shutdown(wait=True)
        self._pool.close()

    # -- worker threads -------------------------------------------------------------------

    def _run_chain(
        self, chain: list[tuple[int, DirectoryOp]], stop: StopFlag
    ) -> list[tuple[int, OpResult | DirectoryError]]:
        outcomes: list[tuple[int, OpResult | DirectoryError]] = []
        for index, op in chain:
            if stop.is_set():
                break
            try:
                outcomes.append((index, self._run_op(op, stop)))
            except DirectoryError as exc:
                outcomes.append((index, exc))
                if isinstance(exc, DirectoryUnavailableError):
                    stop.set()  # the call's other ops would each wait out the budget again
                break  # later ops on this DN assumed this one succeeded
            except _Cancelled:
                break
        return outcomes

    def _run_op(self, op: DirectoryOp, stop: StopFlag) -> OpResult:
        policy = self._retry
        started = time.monotonic()
        deadline = started + policy.total
        delay = policy.initial_delay
        retries = 0
        uncertain = False  # an earlier attempt may have been applied before the link broke
        while True:
            conn: Connection | None = None
            try:
                conn = self._pool.acquire()
                result = self._apply_once(conn, op, uncertain)
            except TransientLdapError as exc:
                if conn is not None:
                    close_quietly(conn)
                uncertain = uncertain or exc.maybe_applied
                pause = policy.pause(delay)
                if time.monotonic() + pause > deadline:
                    raise DirectoryUnavailableError(
                        f"LDAP {kind(op)} of {op.dn!r} abandoned after {retries + 1} attempts "
                        f"in {policy.total:.0f}s: {exc}"
                    ) from exc
                log.warning(
                    "ldap.retry",
                    operation=kind(op),
                    attempt=retries + 1,
                    error=str(exc),
                    delay=round(pause, 3),
                )
                if stop.wait(pause):
                    raise _Cancelled from exc
                delay *= 2
                retries += 1
                continue
            except DirectoryError:
                if conn is not None:
                    self._pool.release(conn)
                raise
            except LDAPException as exc:  # client-side refusal (malformed DN...): permanent
                if conn is not None:
                    close_quietly(conn)
                raise DirectoryWriteError(kind(op), op.dn, -1, type(exc).__name__, "") from exc
            except BaseException:
                if conn is not None:
                    close_quietly(conn)
                raise
            self._pool.release(conn)
            return replace(result, retries=retries, seconds=time.monotonic() - started)

    def _apply_once(self, conn: Connection, op: DirectoryOp, uncertain: bool) -> OpResult:
        return run_steps(steps(op, uncertain), lambda request: _send(conn, request))


def _existing_values(conn: Connection) -> dict[str, tuple[str, ...]]:
    """Attribute values of the entry just read, keyed by lower-cased name."""
    for item in conn.response or []:
        if item.get("type") == "searchResEntry":
            raw: Mapping[str, list[bytes]] = item.get("raw_attributes") or {}
            return {
                name.lower(): tuple(v.decode("utf-8", errors="replace") for v in values)
                for name, values in raw.items()
            }
    return {}

"""Apply directory ops: bounded concurrency, retries on transient errors, idempotent healing.

ldap3 connections are synchronous, so ops run in a thread pool, one connection per thread at a
time; optionally that pool lives in processes of their own (ldap3 is pure Python: its threads
share the caller's interpreter lock). Ops on the same DN run in the order given, one after the
other; ops on different DNs run concurrently, so the caller must not rely on an order between
DNs (e.g. a parent created in the same batch as its children must come in an earlier ``apply``
call). The per-DN order holds within one ``apply`` call; concurrent calls touching the same DN
are not ordered.

``abort`` makes retries stop at their next pause and ``apply`` raise at once (a worker told to
stop); writer processes also exit with the process that started them
(:mod:`connectors.ldap.lifeline`).

Healing makes every op safe to replay (after a crash, a retry, a redelivered message):
Add on an existing entry replaces the attributes that differ; Modify on a missing entry adds
the op's ``desired`` entry; Delete on a missing entry succeeds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import structlog
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection
from ldap3.core.exceptions import LDAPException

from connectors.ldap import writer_processes as in_process
from connectors.ldap.connection import (
    TRANSIENT_RESULT_CODES,
    LdapParams,
    TransientLdapError,
    classify,
    close_quietly,
    connect,
    result_of,
)
from connectors.ldap.directory import (
    ALREADY_EXISTS,
    ATTRIBUTE_OR_VALUE_EXISTS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    dn_sort_key,
)
from connectors.ldap.errors import (
    DirectoryError,
    DirectoryUnavailableError,
    DirectoryWriteError,
    WriterStoppedError,
)
from connectors.ldap.lifeline import EitherStop, StopFlag
from connectors.ldap.writer_processes import LogSetup
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry

if TYPE_CHECKING:
    from entsync.settings import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Action(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    HEALED = "healed"  # the entry was not as the op expected; it was brought to the op's state
    NOOP = "noop"  # nothing to write: the directory already matched


@dataclass(frozen=True)
class OpResult:
    """What was actually done for one op. ``attributes``: names written (never values)."""

    op: DirectoryOp
    action: Action
    attributes: tuple[str, ...] = ()
    detail: str = ""
    retries: int = 0
    seconds: float = 0.0  # the op's time, retries included (its latency for the metrics)

    @property
    def dn(self) -> str:
        return self.op.dn


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on transient errors, for at most ``total`` seconds."""

    initial_delay: float = 0.1
    max_delay: float = 2.0
    total: float = 60.0


Chain = list[tuple[int, DirectoryOp]]  # one DN's ops, with their indexes in the apply() call
_Outcome = tuple[int, "OpResult | DirectoryError"]


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


def _kind(op: DirectoryOp) -> str:
    return {AddEntry: "add", ModifyEntry: "modify", DeleteEntry: "delete"}[type(op)]


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an ldap3 call, turning lost connections into TransientLdapError."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        transient = classify(exc)
        if transient is not None:
            raise transient from exc
        raise


def _failed(conn: Connection, operation: str, dn: str) -> tuple[int, str, str]:
    """The result of a failed call; raises TransientLdapError if the server was busy."""
    code, name, message = result_of(conn)
    if code in TRANSIENT_RESULT_CODES:
        raise TransientLdapError(name or str(code), maybe_applied=False)
    return code, name, message


def _same_values(name: str, have: Sequence[str], want: Sequence[str]) -> bool:
    if name.lower() == "objectclass":  # object class names are case-insensitive
        return {v.lower() for v in have} == {v.lower() for v in want}
    return set(have) == set(want)


class DirectoryWriter:
    """Applies :mod:`sync.ops` operations to an LDAP directory."""

    def __init__(
        self,
        params: LdapParams,
        *,
        max_in_flight: int = 8,
        retry: RetryPolicy | None = None,
        processes: int = 0,
        log_setup: LogSetup | None = None,
    ) -> None:
        """``processes``: run the ops in that many processes of their own, each with its share
        of the ``max_in_flight`` threads (at least one), instead of in this process: ldap3 is
        pure Python, and in this process its threads share the caller's interpreter lock. Each
        process configures logging with ``log_setup`` (format, level)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._params = params
        self._max_in_flight = max_in_flight
        self._retry = retry or RetryPolicy()
        self._pool = _ConnectionPool(params)
        self._processes = processes
        self._executor: Executor
        self._abort: StopFlag
        if processes:
            # not fork: the caller runs threads (faust's consumer, this pool's feeder)
            context = multiprocessing.get_context("spawn")
            self._abort = context.Event()
            # The processes' lifeline: they exit when this end closes (see lifeline).
            self._lifeline_end, self._lifeline = context.Pipe(duplex=False)
            self._executor = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=context,
                initializer=in_process.start_writer,
                initargs=(
                    params,
                    self._retry,
                    log_setup,
                    -(-max_in_flight // processes),
                    self._lifeline_end,
                    self._abort,
                ),
            )
        else:
            self._abort = threading.Event()
            self._executor = ThreadPoolExecutor(
                max_workers=max_in_flight, thread_name_prefix="entsync-ldap"
            )
        self._closed = False
        self._started = False

    @property
    def params(self) -> LdapParams:
        """Where it writes (for the shell's reads after a refused write)."""
        return self._params

    @classmethod
    def from_settings(
        cls, settings: Settings, *, retry: RetryPolicy | None = None
    ) -> DirectoryWriter:
        return cls(
            LdapParams.from_settings(settings),
            max_in_flight=settings.ldap_max_in_flight,
            retry=retry or RetryPolicy(total=settings.ldap_retry_total_s),
            processes=settings.writer_processes(),
            log_setup=(settings.log_format, settings.log_level),
        )

    def start(self) -> None:
        """Start the writer processes now (each binds on its first op), not at the first
        ``apply``: a start-up cost, not one of the first batch. Nothing to do for threads.

        The processes are spawned (each submit starts one until there are ``processes``) with
        the program's main module out of sight: a spawned process imports the main module of
        its parent, here the whole CLI (faust and all), about a second and 30 MB for nothing;
        they import this module alone.
        """
        if not self._processes or self._started:
            return
        with in_process.main_module_hidden():
            ready = [self._executor.submit(in_process.ready) for _ in range(self._processes)]
        for future in ready:
            future.result()
        self._started = True

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]:
        """Apply ``ops``; return one result per op, in the same order.

        On a permanent error the ops after it on the same DN are skipped, other DNs go on, then
        the first error (in op order) is raised with ``results`` (None for ops not done) and
        ``errors`` (all of them) set.
        """
        if self._closed:
            raise RuntimeError("DirectoryWriter is closed")
        if not ops:
            return []
        if self._abort.is_set():
            raise WriterStoppedError(f"{len(ops)} directory writes not started: writer stopping")
        self.start()
        chains: dict[tuple[tuple[str, str], ...], Chain] = {}
        for index, op in enumerate(ops):
            chains.setdefault(dn_sort_key(op.dn), []).append((index, op))
        if self._processes:
            outcomes = await self._apply_in_processes(list(chains.values()))
        else:
            outcomes = await self._apply_in_threads(list(chains.values()))
        results: list[OpResult | None] = [None] * len(ops)
        errors: list[tuple[int, DirectoryError]] = []
        for index, outcome in outcomes:
            if isinstance(outcome, DirectoryError):
                errors.append((index, outcome))
            else:
                results[index] = outcome
        if len(outcomes) < len(ops) and self._abort.is_set():
            # Not "refused": the ops not done must be done again, not skipped.
            raise WriterStoppedError(
                f"{len(ops) - len(outcomes)} of {len(ops)} directory writes abandoned: "
                "writer stopping"
            )
        if errors:
            errors.sort(key=lambda item: item[0])
            first = errors[0][1]
            first.results = results
            first.errors = [error for _index, error in errors]
            raise first
        return [result for result in results if result is not None]

    async def _apply_in_threads(self, chains: list[Chain]) -> list[_Outcome]:
        pending = deque(chains)
        outcomes: list[_Outcome] = []
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

    async def _apply_in_processes(self, chains: list[Chain]) -> list[_Outcome]:
        """One message per process: its share of the chains, whole (a DN's ops stay in order).

        Shares are balanced by op count; results come back without their ops (the caller has
        them). A process finishes its share even if the call is cancelled.
        """
        shares: list[list[Chain]] = [[] for _ in range(min(self._processes, len(chains)))]
        sizes = [0] * len(shares)
        for chain in sorted(chains, key=len, reverse=True):
            smallest = sizes.index(min(sizes))
            shares[smallest].append(chain)
            sizes[smallest] += len(chain)
        loop = asyncio.get_running_loop()
        done = await asyncio.gather(
            *(loop.run_in_executor(self._executor, in_process.run_share, share) for share in shares)
        )
        by_index = {index: op for chain in chains for index, op in chain}
        outcomes: list[_Outcome] = []
        for share_outcomes in done:
            for index, outcome in share_outcomes:
                if isinstance(outcome, DirectoryError):
                    outcomes.append((index, outcome))
                else:
                    action, attributes, detail, retries, seconds = outcome
                    op = by_index[index]
                    result = OpResult(op, action, attributes, detail, retries, seconds)
                    outcomes.append((index, result))
        return outcomes

    def abort(self) -> None:
        """Stop retrying (now, in every thread and process) and start no more op: ``apply``
        calls in progress raise :class:`WriterStoppedError` once their current attempts end,
        later ones at once. Then ``close``. Safe from any thread."""
        self._abort.set()

    def close(self) -> None:
        """Wait for running ops, then close the connections (and end the processes).
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        if self._processes:
            self._lifeline.close()
            self._lifeline_end.close()
        self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

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
                pause = min(delay, policy.max_delay) * random.uniform(0.5, 1.0)
                if time.monotonic() + pause > deadline:
                    raise DirectoryUnavailableError(
                        f"LDAP {_kind(op)} of {op.dn!r} abandoned after {retries + 1} attempts "
                        f"in {policy.total:.0f}s: {exc}"
                    ) from exc
                log.warning(
                    "ldap.retry",
                    operation=_kind(op),
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
                raise DirectoryWriteError(_kind(op), op.dn, -1, type(exc).__name__, "") from exc
            except BaseException:
                if conn is not None:
                    close_quietly(conn)
                raise
            self._pool.release(conn)
            return replace(result, retries=retries, seconds=time.monotonic() - started)

    def _apply_once(self, conn: Connection, op: DirectoryOp, uncertain: bool) -> OpResult:
        if isinstance(op, AddEntry):
            outcome, names = self._put_entry(conn, op.dn, op.attributes)
            if outcome == "added":
                return OpResult(op, Action.ADDED, names)
            if outcome == "replaced":
                return OpResult(
                    op, Action.HEALED, names, "entry existed; differing attributes replaced"
                )
            if uncertain:
                return OpResult(op, Action.ADDED, names, "entry found complete after a retry")
            return OpResult(op, Action.NOOP, (), "entry already as requested")
        if isinstance(op, ModifyEntry):
            return self._modify(conn, op)
        return self._delete(conn, op, uncertain)

    def _modify(self, conn: Connection, op: ModifyEntry) -> OpResult:
        if not op.changes:
            return OpResult(op, Action.NOOP, (), "no changes")
        if _call(conn.modify, op.dn, value_changes(op)):
            return OpResult(op, Action.MODIFIED, tuple(sorted(op.changes)))
        code, name, message = _failed(conn, "modify", op.dn)
        if code in (ATTRIBUTE_OR_VALUE_EXISTS, NO_SUCH_ATTRIBUTE):
            # A value added is there already, or one removed is gone (a retry after a lost
            # answer, another writer): the attributes are given their whole values instead.
            if _call(conn.modify, op.dn, _replacing(op.changes)):
                return OpResult(
                    op, Action.HEALED, tuple(sorted(op.changes)), "values replaced whole"
                )
            code, name, message = _failed(conn, "modify", op.dn)
        if code != NO_SUCH_OBJECT or not op.desired:
            raise DirectoryWriteError("modify", op.dn, code, name, message)
        outcome, names = self._put_entry(conn, op.dn, op.desired)
        if outcome == "same":
            return OpResult(op, Action.NOOP, (), "entry reappeared as desired")
        return OpResult(op, Action.HEALED, names, "entry was missing; added from desired")

    def _delete(self, conn: Connection, op: DeleteEntry, uncertain: bool) -> OpResult:
        if _call(conn.delete, op.dn):
            return OpResult(op, Action.DELETED)
        code, name, message = _failed(conn, "delete", op.dn)
        if code == NO_SUCH_OBJECT:
            if uncertain:
                return OpResult(op, Action.DELETED, (), "entry gone after a retry")
            return OpResult(op, Action.NOOP, (), "entry already absent")
        raise DirectoryWriteError("delete", op.dn, code, name, message)

    def _put_entry(
        self, conn: Connection, dn: str, attributes: Attributes
    ) -> tuple[str, tuple[str, ...]]:
        """Make ``dn`` hold ``attributes``: ("added" | "replaced" | "same", names written)."""
        present = {name: list(values) for name, values in attributes.items() if values}
        if _call(conn.add, dn, attributes=present):
            return "added", tuple(sorted(present))
        code, name, message = _failed(conn, "add", dn)
        if code != ALREADY_EXISTS:
            raise DirectoryWriteError("add", dn, code, name, message)
        return self._replace_differences(conn, dn, attributes)

    def _replace_differences(
        self, conn: Connection, dn: str, attributes: Attributes
    ) -> tuple[str, tuple[str, ...]]:
        names = list(attributes)
        if not _call(conn.search, dn, "(objectClass=*)", BASE, attributes=names or ["1.1"]):
            code, name, message = _failed(conn, "search", dn)
            if code == NO_SUCH_OBJECT:  # deleted meanwhile: start the op over
                raise TransientLdapError("entry vanished while healing", maybe_applied=False)
            raise DirectoryWriteError("search", dn, code, name, message)
        existing = _existing_values(conn)
        changes = {
            name: [(MODIFY_REPLACE, list(values))]
            for name, values in attributes.items()
            if not _same_values(name, existing.get(name.lower(), ()), values)
        }
        if not changes:
            return "same", ()
        if not _call(conn.modify, dn, changes):
            code, name, message = _failed(conn, "modify", dn)
            if code == NO_SUCH_OBJECT:
                raise TransientLdapError("entry vanished while healing", maybe_applied=False)
            raise DirectoryWriteError("modify", dn, code, name, message)
        return "replaced", tuple(sorted(changes))


def _replacing(changes: Attributes) -> dict[str, list[tuple[str, list[str]]]]:
    return {name: [(MODIFY_REPLACE, list(values))] for name, values in changes.items()}


def value_changes(op: ModifyEntry) -> dict[str, list[tuple[str, list[str]]]]:
    """The LDAP modification of ``op``: a multi-valued attribute the entry has changes by the
    values added and removed (a group gaining a member is not rewritten whole), anything else
    is replaced."""
    previous = {name.lower(): values for name, values in op.previous.items()}
    changes: dict[str, list[tuple[str, list[str]]]] = {}
    for name, values in op.changes.items():
        old = previous.get(name.lower(), ())
        if not old or not values or (len(old) == 1 and len(values) == 1):
            changes[name] = [(MODIFY_REPLACE, list(values))]
            continue
        added = sorted(set(values) - set(old))
        removed = sorted(set(old) - set(values))
        parts = [(MODIFY_ADD, added)] if added else []
        parts += [(MODIFY_DELETE, removed)] if removed else []
        changes[name] = parts or [(MODIFY_REPLACE, list(values))]
    return changes


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

"""The python-ldap directory writer: each batch's requests pipelined on one connection.

libldap sends a request and returns its message id at once; replies come back in any order
and are matched by that id. One ``apply`` call runs in a thread of the writer, on a bound
connection of its own (kept for the next call): at most ``max_in_flight`` ops are under way,
one per DN at a time (a DN's next op starts when the previous one is done), each carried out
by the generator of :mod:`connectors.ldap.healing`, which says what to send next on each
reply. The client's CPU per op is about a tenth of a millisecond, against half a millisecond
or more with ldap3; but each python-ldap call gives the interpreter lock up, and waits to get it
back while the worker decides: the worker runs this writer in a process of its own
(:mod:`connectors.ldap.writer_processes`).

Retries, as the ldap3 writer's: a busy or unavailable server (51, 52) retries that op alone
after a pause; a lost or silent connection (no reply for ``receive_timeout``) sends every op
under way again, from its start, on a new connection opened after a pause (what was applied
is healed); an op still not done when its retry budget runs out ends the call with
:class:`DirectoryUnavailableError`. ``abort`` (or an unreachable directory) stops the call
within a tenth of a second: requests still unanswered are not waited for and their connection
is closed (their ops are not reported done, so they are done again).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import ldap
import structlog

from connectors.ldap import libldap
from connectors.ldap.batch import BatchWriter, Chain, Outcome, RetryPolicy
from connectors.ldap.connection import TRANSIENT_RESULT_CODES, LdapParams, TransientLdapError
from connectors.ldap.errors import DirectoryError, DirectoryUnavailableError, DirectoryWriteError
from connectors.ldap.healing import OpResult, ReadRequest, Reply, Request, Steps, kind, steps
from connectors.ldap.lifeline import EitherStop, StopFlag
from connectors.ldap.writer_processes import LogSetup
from sync.ops import DirectoryOp

log = structlog.get_logger(__name__)

POLL_S = 0.1  # longest wait for a reply before looking at the stop flag again
CALLS = 4  # apply calls carried out at once, each on its own connection


@dataclass(eq=False)
class _Op:
    """One op under way (or waiting to retry)."""

    index: int
    op: DirectoryOp
    rest: deque[tuple[int, DirectoryOp]]  # the DN's later ops
    started: float
    deadline: float
    delay: float  # the backoff step of its next retry
    retries: int = 0
    uncertain: bool = False  # an earlier attempt may have been applied
    steps: Steps | None = None
    request: Request | None = None  # the next request to send
    sent: bool = False  # a request of the current attempt went out
    due: float = 0.0  # when a retry may start


class _Run:
    """One ``apply`` call's chains, carried out on one connection (see the module's doc)."""

    def __init__(
        self,
        params: LdapParams,
        retry: RetryPolicy,
        window: int,
        chains: list[Chain],
        stop: StopFlag,
        conn: libldap.Connection | None,
    ) -> None:
        self.params, self.retry, self.window, self.stop = params, retry, window, stop
        self.conn = conn
        self.chains = deque(deque(chain) for chain in chains)  # a DN's ops not started
        self.ready: deque[_Op] = deque()  # their next request is to be sent
        self.waiting: dict[int, _Op] = {}  # by message id: awaiting their reply
        self.later: list[_Op] = []  # retrying after a pause
        self.outcomes: list[Outcome] = []
        self.heard = time.monotonic()  # the last reply, or the first request into silence
        self.broken: str | None = None  # why the last connection was lost
        self.conn_delay = retry.initial_delay

    def go(self) -> list[Outcome]:
        while not self.stop.is_set():
            while self.chains and self._under_way() < self.window:
                self._start(self.chains.popleft())
            if not self._under_way():
                break
            self._wake()
            if self.ready and (self.conn is not None or self._connect()):
                self._send_ready()
            if self.waiting:
                self._receive()
            elif self.later and not self.ready:
                self.stop.wait(max(0.0, min(o.due for o in self.later) - time.monotonic()))
        return self.outcomes

    def clean(self) -> bool:
        """Whether the connection may serve another call (no reply still owed on it)."""
        return not self.waiting

    # -- ops ----------------------------------------------------------------------------

    def _under_way(self) -> int:
        return len(self.ready) + len(self.waiting) + len(self.later)

    def _start(self, rest: deque[tuple[int, DirectoryOp]]) -> None:
        index, op = rest.popleft()
        now = time.monotonic()
        o = _Op(index, op, rest, now, now + self.retry.total, self.retry.initial_delay)
        self._attempt(o)

    def _attempt(self, o: _Op) -> None:
        o.steps, o.sent = steps(o.op, o.uncertain), False
        self._advance(o, None)

    def _advance(self, o: _Op, reply: Reply | None) -> None:
        """Give the op its reply (None: begin): its next request, or its end."""
        assert o.steps is not None
        try:
            o.request = next(o.steps) if reply is None else o.steps.send(reply)
        except StopIteration as done:
            r: OpResult = done.value
            seconds = time.monotonic() - o.started
            self._finish(o, OpResult(r.op, r.action, r.attributes, r.detail, o.retries, seconds))
        except DirectoryWriteError as refused:
            self._finish(o, refused)
        except TransientLdapError as exc:  # the entry vanished while healing: start over
            self._retry_later(o, str(exc))
        else:
            self.ready.append(o)

    def _finish(self, o: _Op, outcome: OpResult | DirectoryError) -> None:
        self.outcomes.append((o.index, outcome))
        if isinstance(outcome, DirectoryUnavailableError):
            self.stop.set()  # the call's other ops would each wait out the budget again
        elif not isinstance(outcome, DirectoryError) and o.rest:
            self.chains.appendleft(o.rest)  # next (else they assumed this one succeeded)

    def _retry_later(self, o: _Op, reason: str) -> None:
        """This op alone, after a pause (a busy server, an entry deleted meanwhile)."""
        pause = self.retry.pause(o.delay)
        if time.monotonic() + pause > o.deadline:
            self._give_up(o, reason)
            return
        log.warning(
            "ldap.retry",
            operation=kind(o.op),
            attempt=o.retries + 1,
            error=reason,
            delay=round(pause, 3),
        )
        o.delay *= 2
        o.retries += 1
        o.due = time.monotonic() + pause
        self.later.append(o)

    def _give_up(self, o: _Op, reason: str) -> None:
        self._finish(
            o,
            DirectoryUnavailableError(
                f"LDAP {kind(o.op)} of {o.op.dn!r} abandoned after {o.retries + 1} attempts "
                f"in {self.retry.total:.0f}s: {reason}"
            ),
        )

    def _wake(self) -> None:
        if not self.later:
            return
        now = time.monotonic()
        due = [o for o in self.later if o.due <= now]
        if due:
            self.later = [o for o in self.later if o.due > now]
            for o in due:
                self._attempt(o)

    # -- the connection -----------------------------------------------------------------

    def _connect(self) -> bool:
        """Open a connection for the ops ready to go, pausing first if one was just lost;
        False when the run is over (stopped, out of budget, or refused for good)."""
        reason = self.broken
        while True:
            if reason is not None:
                pause = self.retry.pause(self.conn_delay)
                now = time.monotonic()
                late = sorted((o for o in self.ready if now + pause > o.deadline), key=_index)
                if late:
                    self.ready.remove(late[0])
                    self._give_up(late[0], reason)
                    return False
                first = min(self.ready, key=_index)
                log.warning(
                    "ldap.retry",
                    operation=kind(first.op),
                    attempt=first.retries + 1,
                    error=reason,
                    delay=round(pause, 3),
                    ops=len(self.ready),
                )
                for o in self.ready:
                    o.retries += 1
                self.conn_delay *= 2
                if self.stop.wait(pause):
                    return False
            try:
                self.conn = libldap.open_connection(self.params)
            except TransientLdapError as exc:
                reason = str(exc)
                continue
            except DirectoryError as refused:  # TLS or bind refused: it does not heal
                for o in sorted(self.ready, key=_index):
                    self.outcomes.append((o.index, refused))
                self.ready.clear()
                self.stop.set()
                return False
            self.broken, self.conn_delay = None, self.retry.initial_delay
            return True

    def _lost(self, reason: str) -> None:
        """The connection is gone: every op under way starts over on the next one."""
        assert self.conn is not None
        libldap.close(self.conn)
        self.conn, self.broken = None, reason
        again = [*self.waiting.values(), *self.ready]
        self.waiting.clear()
        self.ready.clear()
        for o in again:
            o.uncertain = o.uncertain or o.sent
            self._attempt(o)

    def _send_ready(self) -> None:
        assert self.conn is not None
        if not self.waiting:
            self.heard = time.monotonic()
        while self.ready:
            o = self.ready.popleft()
            assert o.request is not None
            try:
                msgid = libldap.send(self.conn, o.request)
            except libldap.LOST as exc:
                self.ready.appendleft(o)
                self._lost(libldap.describe(exc))
                return
            except ldap.LDAPError as exc:  # refused by the client library: the op's reply
                self._advance(o, libldap.reply_of_error(exc))
                continue
            o.sent = True
            self.waiting[msgid] = o

    def _receive(self) -> None:
        assert self.conn is not None
        timeout = POLL_S
        if self.later:
            timeout = max(0.0, min(timeout, min(o.due for o in self.later) - time.monotonic()))
        try:
            kind_of_reply, data, msgid, *_ = self.conn.result4(ldap.RES_ANY, 1, timeout)
        except ldap.TIMEOUT:
            if time.monotonic() - self.heard > self.params.receive_timeout:
                self._lost(f"no reply in {self.params.receive_timeout:g}s")
            return
        except libldap.LOST as exc:
            self._lost(libldap.describe(exc))
            return
        except ldap.LDAPError as exc:
            o = self.waiting.pop(libldap.details(exc).get("msgid", -1), None)
            if o is None:  # a failure of no request of ours: trust the connection no more
                self._lost(libldap.describe(exc))
                return
            self.heard = time.monotonic()
            reply = libldap.reply_of_error(exc)
            if reply.code in TRANSIENT_RESULT_CODES:
                self._retry_later(o, reply.name or str(reply.code))
            else:
                self._advance(o, reply)
            return
        o = self.waiting.pop(msgid, None)
        if o is None:
            return  # not ours (a late reply to nothing we wait for)
        self.heard = time.monotonic()
        read = isinstance(o.request, ReadRequest) and kind_of_reply == ldap.RES_SEARCH_RESULT
        self._advance(o, Reply(0, entry=libldap.entry_of(data) if read else {}))


def _index(o: _Op) -> int:
    return o.index


class PipelinedWriter(BatchWriter):
    """Applies :mod:`sync.ops` operations with python-ldap, pipelined (see the module's doc)."""

    KIND = "python-ldap"

    def __init__(
        self,
        params: LdapParams,
        *,
        max_in_flight: int = 8,
        retry: RetryPolicy | None = None,
        processes: int = 0,
        log_setup: LogSetup | None = None,
    ) -> None:
        """``max_in_flight``: ops under way at once in one ``apply`` call (shared by the
        ``processes``, if any: see BatchWriter)."""
        super().__init__(
            params,
            max_in_flight=max_in_flight,
            retry=retry,
            processes=processes,
            log_setup=log_setup,
        )
        self._idle: list[libldap.Connection] = []
        self._lock = threading.Lock()
        if not processes:
            self._executor = ThreadPoolExecutor(
                max_workers=CALLS, thread_name_prefix="entsync-ldap"
            )

    async def _run_here(self, chains: list[Chain]) -> list[Outcome]:
        stop = EitherStop(self._abort)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self.run_chains, chains, stop)
        except BaseException:
            stop.set()  # the thread stops within POLL_S
            raise

    def run_chains(self, chains: list[Chain], stop: StopFlag) -> list[Outcome]:
        """The chains pipelined on an idle bound connection (or a new one), kept afterwards
        unless a reply is still owed on it."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        run = _Run(self._params, self._retry, self._max_in_flight, chains, stop, conn)
        try:
            return run.go()
        finally:
            if run.conn is not None:
                self._release(run.conn, run.clean())

    def _release(self, conn: libldap.Connection, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed:
                self._idle.append(conn)
                return
        libldap.close(conn)

    def _close_here(self) -> None:
        if self._processes is None:
            self._executor.shutdown(wait=True)
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            libldap.close(conn)

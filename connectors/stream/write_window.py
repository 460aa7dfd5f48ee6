"""Overlap the reconciler's batches (decide one while the previous one's writes run), and hold
batches back while more input waits, so that an entry is written once for all of them.

The ``reconcile`` agent hands each batch to :meth:`ReconcilePipeline.submit`, which decides it
(:meth:`Reconciler.prepare`) on the states the batches still in progress decided and delivers
the inputs it emits. The batch then joins the open *window*: the batches decided and not
written yet. A window is closed and carried out as one batch (:meth:`Reconciler.merge`: each
entry written once, its audit event naming every cause) when no more input waits for this
worker (:meth:`Reconciler.waiting`), or within :class:`WindowLimits`: a few inputs waiting (the
round trips of a delta: login answers, links) hold it at most ``short_s``, a backlog (a load:
a pupil's add and the guardians' answers that complete it are a whole backlog apart) at most
``max_s`` and ``max_inputs``; ``idle_s`` without a batch closes it, unless input still waits
and faust delivers (a busy machine, not a rebalance or a stop).

A window's writes start once the previous window's writes are done (one DN's writes stay in
order; ops on different DNs of one window run concurrently, so an entry a window adds may be
named by another of its entries a moment before it exists); its completion (audit events,
admin decisions, states in the table) waits for the previous window's completion, so each
window's states reach the table after the previous one's. The directory is never idle while the
previous window's audit events and states go out.

A batch's offsets are acknowledged only once its window is complete: faust acknowledges a
``take_events`` batch when the agent asks for the next one, so the agent's stream holds those
acknowledgements (:func:`hold_acks`) and the pipeline releases them. A crash anywhere before
leaves the window's inputs to be read again. faust waits for unacknowledged messages before a
rebalance goes on and before it stops (it suspends delivery, so the open window closes after
``idle_s``).

When the directory refused a write of the previous window for good, that entity's state is not
the one the next window was decided on: once the previous window is complete, the next one's
batches are decided again, on the table (the inputs they emit do not depend on what the
directory accepted; if they differ, the new ones are delivered too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import ChainMap
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from connectors.logs import get_logger
from connectors.stream.deployment import WINDOW_MAX_INPUTS
from connectors.stream.monitor import BatchTimer
from connectors.stream.ports import FaustStream, StreamEvent
from connectors.stream.progress import Progress
from connectors.stream.reconciler import DecidedBatch, Reconciler
from schemas.state import EntityState

log = get_logger(__name__)
Release = Callable[[Sequence[StreamEvent]], Awaitable[None]]
MAX_IN_PROGRESS = 2  # windows written or being completed, besides the open one


@dataclass(frozen=True)
class WindowLimits:
    """How long decided batches are held back, unwritten, while more input waits."""

    backlog: int = 200  # inputs waiting that make a load, not a delta's round trips
    short_s: float = 0.5  # the longest a delta's window is held (latency)
    max_s: float = 60.0  # the longest a load's window is held
    max_inputs: int = WINDOW_MAX_INPUTS  # bounds the memory held (up to three windows at
    # once), and the write a rebalance waits for; ENTSYNC_WRITE_WINDOW_MAX_INPUTS. 100 x 100
    # pupils: 30,000 gave peak RSS 790-806 MB and 1.53-1.61 writes an entry, 10,000 500-520 MB
    # and 1.76-1.78 (before the feed was held back; README "Where a load's time and memory go")
    idle_s: float = 2.0  # no batch for this long: carried out, unless input still waits and
    # faust delivers (not a rebalance, not a stop)


def hold_acks(stream: FaustStream) -> Release:
    """Make ``take_events`` on ``stream`` leave its events unacknowledged; return the function
    that acknowledges a batch of them (faust's own ``Stream.ack``, event by event)."""
    ack = type(stream).ack

    async def held(event: StreamEvent) -> bool:
        return False

    async def release(events: Sequence[StreamEvent]) -> None:
        for event in events:
            await ack(stream, event)

    stream.ack = held
    return release


@dataclass
class _Window:
    """Batches decided, not carried out yet (the open one), or being carried out as one."""

    prepared: DecidedBatch  # the batches merged (Reconciler.merge)
    batches: list[Sequence[StreamEvent]]
    timers: list[BatchTimer]
    opened: float  # loop time
    inputs: int
    load: bool = False  # a backlog was seen waiting: held while anything waits
    written: asyncio.Future[bool] | None = None  # its directory writes are done (True: all as
    task: asyncio.Future[None] | None = None  # decided); written, then complete and acknowledged


class ReconcilePipeline:
    """At most three windows in progress: one being decided, one written, one completed."""

    def __init__(
        self,
        reconciler: Reconciler,
        progress: Progress,
        release: Release,
        on_error: Callable[[BaseException], object],
        limits: WindowLimits = WindowLimits(),
    ) -> None:
        self._reconciler = reconciler
        self._progress = progress
        self._release = release
        self._on_error = on_error  # a batch failed in the background: stop the worker
        self._limits = limits
        self._open: _Window | None = None
        self._windows: list[_Window] = []  # being carried out, oldest first
        self._lock = asyncio.Lock()  # a batch joins, or the open window closes, one at a time
        self._idle: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Future[None]] = set()
        # A worker's first batch is carried out alone, so that the entities table has a state
        # stored before a whole window's entries are in the directory: a worker that finds
        # entries and an empty table takes the table for lost and rebuilds it from the
        # directory (connectors.stream.restore), and the audit events of a window written by
        # a worker killed before its states were stored would never go out.
        self._first = True

    async def submit(self, batch: Sequence[StreamEvent]) -> None:
        """Decide ``batch`` and send its inputs; add it to the open window, and carry that out
        unless more input waits (then this returns at once: the agent fetches the next batch)."""
        self._progress.in_flight += 1
        timer = BatchTimer("reconcile", len(batch))
        async with self._lock:
            try:
                await self._settle_finished()
                window = self._open
                prepared = self._reconciler.prepare(batch, self._pending())
                await self._reconciler.send_emits(prepared)
            except BaseException:
                self._progress.in_flight -= 1
                raise
            loop = asyncio.get_running_loop()
            if window is None:
                window = self._open = _Window(prepared, [batch], [timer], loop.time(), len(batch))
            else:
                window.prepared = self._reconciler.merge(window.prepared, prepared)
                window.batches.append(batch)
                window.timers.append(timer)
                window.inputs += len(batch)
            waiting = self._reconciler.waiting(prepared)
            if self._hold(window, waiting, loop.time()):
                self._arm_idle(window)
                return
            await self._close(waiting)

    def _pending(self) -> Mapping[bytes, EntityState | bytes] | None:
        """The states decided and not in the table yet: the open window's, then the others'."""
        maps = [w.prepared.new_states for w in (self._open, *reversed(self._windows)) if w]
        return ChainMap(*maps) if maps else None

    def _hold(self, window: _Window, waiting: int, now: float) -> bool:
        limits, age = self._limits, now - window.opened
        if self._first or waiting <= 0 or window.inputs >= limits.max_inputs:
            return False
        if age >= limits.max_s:
            return False
        # A load comes in waves (a pupil's add, then its guardians' logins, then their
        # answers): its window stays open between them, while anything at all waits.
        window.load = window.load or waiting >= limits.backlog
        return window.load or age < limits.short_s

    def _arm_idle(self, window: _Window) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(
            self._limits.idle_s, self._on_idle, window
        )

    def _on_idle(self, window: _Window) -> None:
        async def close_if_still_open() -> None:
            async with self._lock:
                if self._open is not window:
                    return
                # A slow next batch (a busy machine) while input still waits: held on, within
                # the limits. A rebalance or a stop (faust waits for every message taken to be
                # acknowledged): carried out now.
                now = asyncio.get_running_loop().time()
                waiting = self._reconciler.waiting()
                if self._reconciler.delivering() and self._hold(window, waiting, now):
                    self._arm_idle(window)
                    return
                await self._close(None)

        task = asyncio.ensure_future(close_if_still_open())
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Future[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._on_error(task.exception())  # type: ignore[arg-type]

    async def _close(self, waiting: int | None) -> None:
        """Carry out the open window (under the lock): wait for the previous window's writes
        and, if one was refused, decide this one again on the table first. ``waiting``: the
        inputs said to wait (None: closed for want of a next batch)."""
        window, self._open = self._open, None
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if window is None:
            return
        self._first = False
        log.debug(
            "reconcile.window",
            batches=len(window.batches),
            inputs=window.inputs,
            seconds=round(asyncio.get_running_loop().time() - window.opened, 3),
            waiting=waiting,
        )
        try:
            await self._settle_finished()
            while len(self._windows) >= MAX_IN_PROGRESS:  # completions lag: let them catch up
                assert self._windows[0].task is not None
                await asyncio.shield(self._windows[0].task)
                await self._settle_finished()
            previous = self._windows[-1] if self._windows else None
            if previous is not None and not await _written(previous):
                assert previous.task is not None
                await asyncio.shield(previous.task)  # its corrected states are in the table
                await self._decide_again(window)
        except BaseException:
            self._progress.in_flight -= len(window.batches)
            raise
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Read by the next window; marked retrieved here so that a failure is reported once.
        written.add_done_callback(lambda f: f.cancelled() or f.exception())
        window.written = written
        before = previous.task if previous is not None else None
        window.task = asyncio.ensure_future(self._carry_out(window, before))
        window.task.add_done_callback(self._report)
        self._windows.append(window)

    async def _decide_again(self, window: _Window) -> None:
        """The window's batches decided again, in order, on the table and on each other; the
        inputs they emit delivered again if they may differ (a merged window does not keep
        what its batches sent: delivered twice, an input is harmless)."""
        sent = window.prepared.emits if len(window.batches) == 1 else None
        again: DecidedBatch | None = None
        for batch in window.batches:
            prepared = self._reconciler.prepare(batch, again.new_states if again else None)
            if prepared.emits != sent:
                await self._reconciler.send_emits(prepared)
            again = prepared if again is None else self._reconciler.merge(again, prepared)
        assert again is not None
        window.prepared = again

    async def _settle_finished(self) -> None:
        """Forget the windows done; a window that failed stops this agent too (its error)."""
        for window in self._windows:
            assert window.task is not None
            if window.task.done() and not window.task.cancelled():
                await window.task  # raises its error, if any
        self._windows = [w for w in self._windows if w.task is not None and not w.task.done()]

    async def drain(self) -> None:
        """Carry out the open window, then wait for every window (their errors raised here)."""
        async with self._lock:
            await self._close(None)
        windows, self._windows = self._windows, []
        for window in windows:
            assert window.task is not None
            await window.task

    async def cancel(self) -> None:
        """Stop the windows in progress: their offsets stay unacknowledged (read again)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._open is not None:
            self._progress.in_flight -= len(self._open.batches)
            self._open = None
        for closing in list(self._closing):
            closing.cancel()
        windows, self._windows = self._windows, []
        for window in windows:
            if window.task is not None and not window.task.done():
                window.task.cancel()
        for window in windows:
            with contextlib.suppress(BaseException):
                await window.task  # type: ignore[misc]

    async def _carry_out(self, window: _Window, before: asyncio.Future[None] | None) -> None:
        written = window.written
        assert written is not None
        try:
            try:
                written.set_result(await self._reconciler.write(window.prepared))
            except asyncio.CancelledError:
                written.cancel()
                raise
            except BaseException as exc:
                written.set_exception(exc)
                raise
            if before is not None:
                await asyncio.shield(before)  # states and acknowledgements in window order
            await self._reconciler.complete(window.prepared)
            await self._release(window.prepared.batch)
            for timer in window.timers:
                timer.done()
        finally:
            self._progress.in_flight -= len(window.batches)

    def _report(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._on_error(task.exception())  # type: ignore[arg-type]


async def _written(window: _Window) -> bool:
    assert window.written is not None
    return await window.written

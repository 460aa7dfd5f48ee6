"""Overlap the reconciler's batches: decide one while the previous one's writes run.

The ``reconcile`` agent hands each batch to :meth:`ReconcilePipeline.submit`, which decides it
(:meth:`Reconciler.prepare`) on the states the batches still in progress decided, delivers the
inputs it emits, waits for the previous batch's directory writes, then starts this batch's writes
in the background and returns: the agent fetches the next batch meanwhile. A batch's writes start
once the previous batch's writes are done (one DN's writes stay in order); its completion (audit
events, admin decisions, states in the table) waits for the previous batch's completion, so each
batch's states reach the table after the previous one's. The directory is never idle while the
previous batch's audit events and states go out.

A batch's offsets are acknowledged only once it is complete: faust acknowledges a
``take_events`` batch when the agent asks for the next one, so the agent's stream holds those
acknowledgements (:func:`hold_acks`) and the pipeline releases them. faust waits for
unacknowledged messages before a rebalance goes on, so the batches in progress are finished
first.

When the directory refused a write of the previous batch for good, that entity's state is not
the one the next batch was decided on: once the previous batch is complete, the next batch is
decided again, on the table (the inputs it emits do not depend on what the directory accepted;
if they differ, the new ones are delivered too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import ChainMap
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.stream.monitor import BatchTimer
from connectors.stream.progress import Progress
from connectors.stream.reconciler import Prepared, Reconciler

Release = Callable[[Sequence[Any]], Awaitable[None]]
MAX_IN_PROGRESS = 2  # batches written or being completed, besides the one being decided


def hold_acks(stream: Any) -> Release:
    """Make ``take_events`` on ``stream`` leave its events unacknowledged; return the function
    that acknowledges a batch of them (faust's own ``Stream.ack``, event by event)."""
    ack = type(stream).ack

    async def held(event: Any) -> bool:
        return False

    async def release(events: Sequence[Any]) -> None:
        for event in events:
            await ack(stream, event)

    stream.ack = held
    return release


@dataclass
class _InProgress:
    prepared: Prepared
    written: asyncio.Future[bool]  # its directory writes are done (True: all as decided)
    task: asyncio.Future[None]  # written, then complete and acknowledged


class ReconcilePipeline:
    """At most three batches in progress: one being decided, one written, one completed."""

    def __init__(
        self,
        reconciler: Reconciler,
        progress: Progress,
        release: Release,
        on_error: Callable[[BaseException], Any],
    ) -> None:
        self._reconciler = reconciler
        self._progress = progress
        self._release = release
        self._on_error = on_error  # a batch failed in the background: stop the worker
        self._batches: list[_InProgress] = []  # oldest first

    async def submit(self, batch: Sequence[Any]) -> None:
        """Decide ``batch``, send its inputs, wait for the previous batch's writes, then start
        carrying this one out."""
        self._progress.in_flight += 1
        timer = BatchTimer("reconcile", len(batch))
        try:
            await self._settle_finished()
            while len(self._batches) >= MAX_IN_PROGRESS:  # completions lag: let them catch up
                await asyncio.shield(self._batches[0].task)
                await self._settle_finished()
            pending = (
                ChainMap(*(b.prepared.new_states for b in reversed(self._batches)))
                if self._batches
                else None
            )
            prepared = self._reconciler.prepare(batch, pending)
            await self._reconciler.send_emits(prepared)
            previous = self._batches[-1] if self._batches else None
            if previous is not None and not await previous.written:
                await asyncio.shield(previous.task)  # its corrected states are in the table
                again = self._reconciler.prepare(batch)
                if again.emits != prepared.emits:
                    await self._reconciler.send_emits(again)
                prepared = again
        except BaseException:
            self._progress.in_flight -= 1
            raise
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Read by the next submit; marked retrieved here so that a failure is reported once.
        written.add_done_callback(lambda f: f.cancelled() or f.exception())
        before = previous.task if previous is not None else None
        task = asyncio.ensure_future(self._carry_out(prepared, written, before, timer))
        task.add_done_callback(self._report)
        self._batches.append(_InProgress(prepared, written, task))

    async def _settle_finished(self) -> None:
        """Forget the batches done; a batch that failed stops this agent too (its error)."""
        for batch in self._batches:
            if batch.task.done() and not batch.task.cancelled():
                await batch.task  # raises its error, if any
        self._batches = [b for b in self._batches if not b.task.done()]

    async def drain(self) -> None:
        """Wait for the batches in progress (their errors are raised here)."""
        batches, self._batches = self._batches, []
        for batch in batches:
            await batch.task

    async def cancel(self) -> None:
        """Stop the batches in progress: their offsets stay unacknowledged (read again)."""
        batches, self._batches = self._batches, []
        for batch in batches:
            if not batch.task.done():
                batch.task.cancel()
        for batch in batches:
            with contextlib.suppress(BaseException):
                await batch.task

    async def _carry_out(
        self,
        prepared: Prepared,
        written: asyncio.Future[bool],
        before: asyncio.Future[None] | None,
        timer: BatchTimer,
    ) -> None:
        try:
            try:
                written.set_result(await self._reconciler.write(prepared))
            except asyncio.CancelledError:
                written.cancel()
                raise
            except BaseException as exc:
                written.set_exception(exc)
                raise
            if before is not None:
                await asyncio.shield(before)  # states and acknowledgements in batch order
            await self._reconciler.complete(prepared)
            await self._release(prepared.batch)
            timer.done()
        finally:
            self._progress.in_flight -= 1

    def _report(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._on_error(task.exception())  # type: ignore[arg-type]

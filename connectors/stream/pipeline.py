"""Decide the next batch of entity inputs while the directory writes of the previous one run.

The ``reconcile`` agent hands each batch to :meth:`ReconcilePipeline.submit`, which decides it
(:meth:`Reconciler.prepare`) on the states the previous batch decided, delivers the inputs it
emits, then waits for the previous batch to be carried out, then starts carrying out this one in
the background and returns: the agent fetches the next batch meanwhile. Batches are carried out
one at a time, in order, so one DN's writes stay in order and each batch's states reach the
table before the next one's.

A batch's offsets are acknowledged only once it is carried out: faust acknowledges a
``take_events`` batch when the agent asks for the next one, so the agent's stream holds those
acknowledgements (:func:`hold_acks`) and the pipeline releases them. faust waits for
unacknowledged messages before a rebalance goes on, so a batch in progress is finished first.

When the directory refused a write of the previous batch for good, that entity's state is not
the one the next batch was decided on: the next batch is decided again, on the table (the
inputs it emits do not depend on what the directory accepted; if they differ, the new ones are
delivered too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from connectors.stream.progress import Progress
from connectors.stream.reconciler import Prepared, Reconciler

Release = Callable[[Sequence[Any]], Awaitable[None]]


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


class ReconcilePipeline:
    """At most two batches in progress: one being decided, the previous one being carried out."""

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
        self._running: tuple[Prepared, asyncio.Future[bool]] | None = None

    async def submit(self, batch: Sequence[Any]) -> None:
        """Decide ``batch``, send its inputs, wait for the previous batch, then start carrying
        this one out."""
        self._progress.in_flight += 1
        try:
            running, self._running = self._running, None
            pending = running[0].new_states if running is not None else None
            prepared = self._reconciler.prepare(batch, pending)
            await self._reconciler.send_emits(prepared)
            if running is not None and not await running[1]:
                # decided on a state that was not kept: again, on the table
                again = self._reconciler.prepare(batch)
                if again.emits != prepared.emits:
                    await self._reconciler.send_emits(again)
                prepared = again
        except BaseException:
            self._progress.in_flight -= 1
            raise
        task = asyncio.ensure_future(self._carry_out(prepared))
        task.add_done_callback(self._report)
        self._running = (prepared, task)

    async def drain(self) -> None:
        """Wait for the batch being carried out, if any (its errors are raised here)."""
        running, self._running = self._running, None
        if running is not None:
            await running[1]

    async def cancel(self) -> None:
        """Stop carrying out the current batch: its offsets stay unacknowledged (re-read)."""
        running, self._running = self._running, None
        if running is not None and not running[1].done():
            running[1].cancel()
            with contextlib.suppress(BaseException):
                await running[1]

    async def _carry_out(self, prepared: Prepared) -> bool:
        try:
            as_decided = await self._reconciler.finish(prepared)
            await self._release(prepared.batch)
            return as_decided
        finally:
            self._progress.in_flight -= 1

    def _report(self, task: asyncio.Future[bool]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._on_error(task.exception())  # type: ignore[arg-type]

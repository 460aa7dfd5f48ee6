"""Feed intake flow control: the feed is taken in no faster than the worker decides what it
leads to.

Why: ``route_feed`` turns a batch of feed records into entity inputs in milliseconds, and the
reconciler decides about a thousand inputs a second. Unchecked, a load's whole feed becomes
inputs at once and every later round trip (a login answer, a guardian's link back to its pupil)
waits behind that backlog: a pupil's guardians answer a whole backlog later, in a later write
window, and the pupil is added, then modified (the entities topic is read in order). With the
backlog bounded, and the load published family by family (:mod:`connectors.aaf.load_order`),
more of a family's round trips end within one write window.

Rules (:func:`pause_feed`, checked every ``check_s``):

1. The backlog is what :meth:`~connectors.stream.reconciler.Reconciler.waiting` counts: the
   inputs on this worker's entities partitions beyond what it decided, the partitions' ends
   being the furthest its last fetch or its own deliveries (:class:`EntityEnds`) saw.
2. Over ``high`` inputs waiting, fetching the feed partitions this worker holds is paused
   (:func:`~connectors.stream.faust_compat.access.hold_fetching`: in aiokafka, whose position
   stays at the first record not handed to faust, so nothing is skipped and nothing read
   twice); under ``low`` it is resumed.
3. A pause lasts ``max_pause_s`` at the most: with several workers, inputs this worker sends to
   another's partitions are not in its backlog, and a count must never stall the feed.
4. No check while faust does not deliver (a rebalance, a stop). A rebalance clears aiokafka's
   pauses, so while a pause lasts every check holds the feed again (harmless when it is).
5. What a pause cannot hold back is small: the feed records faust holds for the routing agent
   (:data:`FEED_BUFFER`, not faust's 4,096), and those of the fetch under way, at most
   ``ENTSYNC_KAFKA_FETCH_PARTITION_BYTES`` a partition (16 KiB, about 20 records). Bounded in
   bytes, not records: faust takes a fetch's partitions in turn, record by record, so a family
   whose records hash to different partitions arrives together; aiokafka's
   ``max_poll_records`` hands them over one after the other (a pupil came a whole partition
   before its guardian).

An agent is never made to wait instead: faust delivers every topic from one fetch loop, so an
agent that stops taking its events stops the others' too, the reconciler's included.

What it gives (``bench/sync.py``, one run each, family order): 20 schools x 100 pupils, 1.10
to 1.12 writes an entry (1.44 without), peak RSS 224-238 MB (324); 100 x 100, 1.71 to 1.85
(1.76): there the reconciler's own round trips keep 1,000 to 6,000 inputs waiting while the
feed is paused, so a family's chain still spans write windows; peak RSS 400-426 MB (474).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.stream.deployment import INTAKE_MAX_WAITING
from connectors.stream.faust_compat import access
from connectors.stream.ports import FaustApp
from connectors.stream.progress import Progress

FEED_BUFFER = 32  # feed events faust holds for the routing agent (rule 5)


@dataclass(frozen=True)
class IntakeLimits:
    """When the feed is paused (rules 2 and 3). ``high`` as measured at 20 x 100 pupils (writes
    an entry): 300 with 16 KiB fetches, 1.10-1.12; 500 with 32 KiB, 1.14; 1,000 with 128 KiB,
    1.24; 2,000 with faust's 1 MiB, 1.44 (as never paused)."""

    high: int = INTAKE_MAX_WAITING  # inputs waiting: the feed is paused above
    low: int = 150  # ... and resumed below (half)
    max_pause_s: float = 5.0
    check_s: float = 0.02


def pause_feed(paused_for: float | None, waiting: int, limits: IntakeLimits) -> bool:
    """Whether the feed is to be paused after a check (rules 2 and 3). ``paused_for``: how long
    it has been paused, None when it is not."""
    if paused_for is None:
        return waiting > limits.high
    return paused_for < limits.max_pause_s and waiting >= limits.low


@dataclass
class EntityEnds:
    """The end of each entities partition as this worker's own deliveries saw it (the offset
    after the last input it delivered there)."""

    ends: dict[int, int] = field(default_factory=dict)

    def delivered(self, partition: int, end: int) -> None:
        """Inputs were delivered to ``partition`` up to offset ``end`` (excluded)."""
        if end > self.ends.get(partition, 0):
            self.ends[partition] = end

    def end(self, partition: int) -> int:
        return self.ends.get(partition, 0)


class FeedIntake:
    """The check of rule 2, run by the app as a task (:meth:`run`)."""

    def __init__(
        self,
        app: FaustApp,
        feed_topic: str,
        waiting: Callable[[], int],
        delivering: Callable[[], bool],
        progress: Progress,
        limits: IntakeLimits | None = None,
    ) -> None:
        self._app, self._feed_topic = app, feed_topic
        self._waiting, self._delivering = waiting, delivering
        self._progress = progress
        self.limits = limits or IntakeLimits()
        self._paused_at: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limits.check_s)
            await self.check(loop.time())

    async def check(self, now: float) -> None:
        if not self._delivering():  # rule 4
            return
        paused_for = None if self._paused_at is None else now - self._paused_at
        pause = pause_feed(paused_for, self._waiting(), self.limits)
        if not pause and self._paused_at is None:
            return
        # While paused, held again at every check: a rebalance may have cleared it (rule 4).
        await access.hold_fetching(self._app.consumer, self._feed_topic, held=pause)
        if pause and self._paused_at is None:
            self._paused_at = now
            self._progress.feed_pauses += 1
        elif not pause:
            self._paused_at = None

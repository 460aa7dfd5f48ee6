"""Feed intake flow control: the feed is taken in no faster than the worker decides what it
leads to.

Why: ``route_feed`` turns a batch of feed records into entity inputs in milliseconds, and the
reconciler decides about a thousand inputs a second. Unchecked, a load's whole feed becomes
inputs at once and every later round trip (a login answer, a guardian's link back to its pupil)
waits behind that backlog: a pupil's guardians answer a whole backlog later, in a later write
window, and the pupil is added, then modified (the entities topic is read in order). With the
backlog bounded, and the load published family by family (:mod:`connectors.aaf.load_order`), a
family's round trips end within one write window: each entry is written once.

Rules (:func:`pause_feed`, checked every ``check_s``):

1. The backlog is what :meth:`~connectors.stream.reconciler.Reconciler.waiting` counts: the
   inputs on this worker's entities partitions beyond what it decided, the partitions' ends
   being the furthest its last fetch or its own deliveries (:class:`EntityEnds`) saw.
2. Over ``high`` inputs waiting, the feed partitions this worker holds are paused (fetching
   from them stops; what was fetched is still delivered); under ``low`` they are resumed.
3. A pause lasts ``max_pause_s`` at the most: with several workers, inputs this worker sends to
   another's partitions are not in its backlog, and a count must never stall the feed.
4. No check while faust does not deliver (a rebalance, a stop): it pauses and resumes
   partitions itself then. A resumption is of the partitions held at that moment and harmless
   for those faust resumed already; the resumption of a partition not sought yet after a
   rebalance waits for its seek (:mod:`connectors.stream.faust_compat.patches`).

5. A paused partition is sought back to the first record faust has not handed to the agent:
   faust drops what its last fetch brought for a partition paused meanwhile, and the
   partition would go on after that gap (``faust_compat.access.rewind_to_undelivered``).

An agent is never made to wait instead: faust delivers every topic from one fetch loop, so an
agent that stops taking its events stops the others' too, the reconciler's included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.stream.faust_compat import access
from connectors.stream.ports import FaustApp
from connectors.stream.progress import Progress


@dataclass(frozen=True)
class IntakeLimits:
    """When the feed is paused. Measured (bench/sync.py, family order): 20 schools x 100
    pupils, 1.04 writes an entry with ``high`` 2,000 and 1.02 with 1,000 (1.44 unchecked), and
    a peak RSS a quarter lower; 100 x 100, about 1.4 (1.76): a family's round trips still span
    about half of a 10,000-input window there."""

    high: int = 2_000  # inputs waiting: the feed is paused above (ENTSYNC_INTAKE_MAX_WAITING)
    low: int = 1_000  # ... and resumed below (half)
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
        if not self._delivering():  # rule 4: faust pauses and resumes itself meanwhile
            return
        paused_for = None if self._paused_at is None else now - self._paused_at
        pause = pause_feed(paused_for, self._waiting(), self.limits)
        if pause == (self._paused_at is not None):
            return
        consumer = self._app.consumer
        feed = [tp for tp in consumer.assignment() if tp.topic == self._feed_topic]
        if pause:
            consumer.pause_partitions(feed)
            self._paused_at = now
            self._progress.feed_pauses += 1
            await access.rewind_to_undelivered(consumer, set(feed))  # rule 5
        else:
            consumer.resume_partitions(feed)
            self._paused_at = None

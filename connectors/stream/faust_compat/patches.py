"""Work-arounds for faust-streaming and aiokafka behaviours that would lose feed events.

Installed once per process by :func:`connectors.stream.faust_compat.install`, which checks first
that every attribute replaced here still exists (:func:`_original` refuses otherwise); the
values a patch needs (the brokers, the fetch wait) are read at call time from ``_config``, which
every install updates.

faust drops a message fetched under an older consumer-group generation (a rebalance happened in
between) and *acknowledges* it, so the committed offset moves past a message no agent processed:
with two rebalances at a worker's start-up (common with one worker), a pupil record could be
silently lost. Messages handed to an agent are always "tracked" first; the dropped ones are not.
Refusing to acknowledge untracked messages leaves them uncommitted, and the next generation, which
seeks to the committed offsets, reads them again. Processing is idempotent, so a re-read is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP

from connectors.logs import get_logger
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import access

log = get_logger(__name__)

_PATCHED_FLAG = "_entsync_untracked_ack_guard"


class FaustCompatError(RuntimeError):
    """faust or aiokafka is not the one the work-arounds were written for."""


@dataclass
class _Config:
    """What the patches read at call time: the last install's values (one app per process)."""

    kafka: KafkaParams | None = None
    fetch_max_wait_ms: int = 1500


_config = _Config()


def _original(owner: Any, name: str) -> Any:
    """The attribute a patch replaces or wraps, which must exist: a rename in faust or aiokafka
    would otherwise silently disable a fix that prevents data loss."""
    if not hasattr(owner, name):
        raise FaustCompatError(
            f"{owner.__module__}.{owner.__qualname__}.{name} is gone: this faust-streaming or "
            "aiokafka is not the one entsync's work-arounds were written for "
            "(connectors/stream/faust_compat)"
        )
    return getattr(owner, name)


def guard_untracked_acks() -> None:
    """Install the guard once per process."""
    if getattr(Consumer, _PATCHED_FLAG, False):
        return
    original = _original(Consumer, "ack")

    def ack(self: Any, message: Any) -> bool:
        if not getattr(message, "tracked", False):
            return False
        return bool(original(self, message))

    Consumer.ack = ack  # type: ignore[method-assign]
    setattr(Consumer, _PATCHED_FLAG, True)


def recover_tables_to_true_end() -> None:
    """Make table recovery read each changelog partition to its real end.

    faust asks for the end offsets with ListOffsets; the local broker (tansu) answers with the
    first offset of the partition's last record batch plus one, so a restarted worker would
    recover its tables without their latest entries and decide on stale state. Fetch responses
    carry the right high watermark: start from the reported end minus one (inside the last batch)
    and take the high watermark of the first fetch. On Apache Kafka this finds the same ends.
    """
    from faust.transport.drivers import aiokafka as driver

    from connectors.stream.offsets import true_end_offsets

    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, _PATCHED_FLAG + "_hw", False):
        return
    original = _original(thread_class, "_highwaters")

    async def _highwaters(self: Any, partitions: list[Any]) -> Any:
        kafka = _config.kafka  # the app built last (a process runs one at a time)
        if not partitions or self.consumer.in_transaction or kafka is None:
            return await original(self, partitions)
        ends = await true_end_offsets(kafka, partitions)
        return {tp: ends[tp] for tp in partitions}

    thread_class._highwaters = _highwaters  # type: ignore[method-assign]
    setattr(thread_class, _PATCHED_FLAG + "_hw", True)


class StallGuard:
    """Re-reads partitions that faust stopped delivering after a rebalance.

    With :func:`guard_untracked_acks`, a message faust dropped for an old generation stays
    uncommitted; faust does not always seek back to the committed offset, and the partition then
    stalls below its high watermark. When a partition stays behind, with no batch in flight and no
    progress at all for ``patience`` checks, it is sought back to its committed offset and the
    dropped messages are read again (processing is idempotent).
    """

    def __init__(self, app: Any, progress: Any, topics: set[str], patience: int = 4) -> None:
        self.app = app
        self.progress = progress
        self.topics = topics
        self.patience = patience
        self._seen: tuple[int, ...] = ()
        self._stalled_checks = 0
        self.recoveries = 0

    async def check(self) -> None:
        seen = (self.progress.feed_events, self.progress.entity_inputs, self.progress.in_flight)
        consumer = self.app.consumer
        committed: Any = consumer._committed_offset
        behind = []
        for tp in consumer.assignment():
            if tp.topic not in self.topics:
                continue
            highwater = consumer.highwater(tp)
            offset = committed.get(tp) or 0
            if highwater is not None and offset < highwater:
                behind.append((tp, offset))
        if not behind or seen != self._seen or self.progress.in_flight:
            self._seen = seen
            self._stalled_checks = 0
            return
        self._stalled_checks += 1
        if self._stalled_checks < self.patience:
            return
        self._stalled_checks = 0
        self.recoveries += 1
        acked: Any = consumer._acked  # offsets acked since the last commit, per partition
        detail = [
            f"{tp.topic}/{tp.partition}: committed {offset}, highwater {consumer.highwater(tp)}, "
            f"first acked {min(acked[tp]) if acked.get(tp) else None}"
            for tp, offset in behind
        ]
        for tp, offset in behind:
            await access.seek(consumer, tp, offset)
        # Offsets only (no record content): what a look into the cause needs.
        log.warning("stream.stall_recovered", partitions=len(behind), detail=detail)


def commit_acknowledged_offsets_only() -> None:
    """Commit only offsets that were acknowledged: never one faust guessed was missing.

    faust records a "gap" whenever a delivered offset is more than one above the partition's
    read offset, and at commit time counts the gap's offsets as done. A seek resets the read
    offset, and after a rebalance faust resumes the stream partitions before it seeks them to
    their committed offsets, so records already delivered (or dropped for an older generation,
    see :func:`guard_untracked_acks`) fell inside such gaps: offsets were counted twice (each
    commit then moved one offset and the stall guard re-read the feed: a full extract read up to
    four times), or counted done without ever being processed. Gaps are not recorded here. Our
    stream topics are neither compacted nor transactional, so their offsets have no holes (see
    README, "Crash safety"). faust also lets one missing offset at the head through (its check
    is off by one): here the head must be the committed offset itself; the stall guard re-reads
    a head that was dropped.

    Around the seek itself: nothing is committed for an assignment before its committed offsets
    are read (a commit raced that read, which came back older than the commit, so the head
    looked missing), and its stream partitions are resumed only after that seek. Records
    fetched between faust's resume and its seek were delivered and then, from the sought
    offset, delivered again, and the drain of the first delivery could overwrite the read
    offset the seek had set, so the stream skipped records and the stall guard re-read the
    whole partition seconds later. Changelog partitions are resumed as faust asks.
    """
    if getattr(Consumer, _PATCHED_FLAG + "_head", False):
        return
    original = _original(Consumer, "_new_offset")
    original_seek = _original(Consumer, "perform_seek")
    original_resume = _original(Consumer, "resume_partitions")
    _original(Consumer, "_add_gap")  # replaced whole below: it must still be what faust calls

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        return None

    async def perform_seek(self: Any) -> None:
        generation = self.app.consumer_generation_id
        await original_seek(self)
        await _head_of_partitions_never_committed(self)
        self._entsync_sought_generation = generation
        await _skip_what_agents_already_have(self)
        deferred = getattr(self, "_entsync_deferred_resume", ())
        if deferred and deferred[0] == generation:
            self._entsync_deferred_resume = ()
            original_resume(self, deferred[1])
        # A deferral of a newer generation (a rebalance during this seek) waits for its seek.

    def resume_partitions(self: Any, tps: Any) -> None:
        # Stream partitions stay paused until they are sought for this assignment (see the
        # docstring): what faust fetched before its seek raced the seek and could be lost.
        generation = self.app.consumer_generation_id
        tps = set(tps)
        if getattr(self, "_entsync_sought_generation", None) != generation:
            stream = {tp for tp in tps if self.app.topics.acks_enabled_for(tp.topic)}
            if stream:
                self._entsync_deferred_resume = (generation, stream)
                tps -= stream
        if tps:
            original_resume(self, tps)

    def _new_offset(self: Any, tp: Any) -> Any:
        if getattr(self, "_entsync_sought_generation", None) != self.app.consumer_generation_id:
            return None  # committed offsets not read yet for this assignment
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed:
            return None
        return original(self, tp)

    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    Consumer.resume_partitions = resume_partitions  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    setattr(Consumer, _PATCHED_FLAG + "_head", True)


async def _head_of_partitions_never_committed(consumer: Any) -> None:
    """A stream partition the group never committed starts at the log's first offset.

    faust knows no committed offset there (nor for a committed 0), so the head check had
    nothing to compare with and a first record dropped for an older generation could be
    committed past. The log start offset is what the group reads from first.
    """
    unknown = [
        tp
        for tp in consumer.assignment()
        if consumer.app.topics.acks_enabled_for(tp.topic)
        and consumer._committed_offset.get(tp) is None
    ]
    if not unknown:
        return
    try:
        starts = await consumer.earliest_offsets(*unknown)
    except Exception as exc:  # the head check stays off for them, as in faust
        log.warning("stream.log_start_unknown", partitions=len(unknown), error=type(exc).__name__)
        return
    for tp, start in starts.items():
        key = TP(tp.topic, tp.partition)
        if consumer._committed_offset.get(key) is None and start is not None:
            consumer._committed_offset[key] = start


async def _skip_what_agents_already_have(consumer: Any) -> None:
    """After the seek to the committed offsets, move on past records the agents already have.

    A rebalance in the middle of a run leaves records of the older generation with the agents
    (being processed, or acknowledged since the last commit); the seek would deliver them again.
    The run of consecutive offsets from the committed one that were all acknowledged or are
    being processed (handed to an agent in this process) is not read again: the partition goes
    on after it. A record no agent took (dropped for an older generation) ends the run, and is
    read again.
    """
    unacked: dict[Any, set[int]] = {}
    for message in consumer._unacked_messages:
        if getattr(message, "tracked", False):
            unacked.setdefault(message.tp, set()).add(message.offset)
    for tp in consumer.assignment():
        committed = consumer._committed_offset.get(tp)
        if committed is None:
            continue
        have = consumer._acked_index.get(tp, set()) | unacked.get(tp, set())
        after = committed
        while after in have:
            after += 1
        if after > committed:
            await access.seek(consumer, tp, after)


def leave_group_from_first_generation() -> None:
    """Send LeaveGroup on stop even when the group's generation is 0.

    aiokafka leaves the group on stop only for a generation above 0, as Apache Kafka numbers them
    from 1; the local broker (tansu) numbers the first one 0, so a worker stopped in it stayed a
    member and the next worker's join waited for its session to expire (18 s instead of 5 s).
    Leaving is a courtesy the broker may ignore; with a static member id it is never sent.
    """
    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from aiokafka.protocol.group import LeaveGroupRequest

    if getattr(GroupCoordinator, _PATCHED_FLAG + "_leave", False):
        return
    original = _original(GroupCoordinator, "_maybe_leave_group")

    async def _maybe_leave_group(self: Any) -> None:
        if self.generation != 0 or self._group_instance_id is not None or not self.member_id:
            await original(self)
            return
        try:
            await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
        except Exception as exc:  # best effort, as aiokafka's own attempt
            log.warning("stream.leave_group_failed", error=type(exc).__name__)
        self.reset_generation()

    GroupCoordinator._maybe_leave_group = _maybe_leave_group
    setattr(GroupCoordinator, _PATCHED_FLAG + "_leave", True)


def fetch_max_wait() -> None:
    """Make the worker's consumer wait at most ``_config.fetch_max_wait_ms`` for a fetch to fill.

    faust hard-codes 1,500 ms. Apache Kafka answers a waiting fetch as soon as data arrives, so
    there the value only sets how often an idle worker asks; the local broker (tansu) was seen
    to hold a fetch towards its deadline although records had arrived, so every hop through a
    topic (a snapshot's scan and tally rounds, a login request and its answer) waited up to a
    second. Set on the consumer before it starts, which is when aiokafka reads it.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, _PATCHED_FLAG + "_fetch", False):
        return
    original = _original(thread_class, "_create_worker_consumer")

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _config.fetch_max_wait_ms
        return consumer

    thread_class._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    setattr(thread_class, _PATCHED_FLAG + "_fetch", True)


def consumer_thread_never_holds_exit() -> None:
    """Make faust's consumer thread a daemon thread.

    faust runs its Kafka consumer in a thread of its own, which the interpreter waits for at
    exit. A worker stopping while a rebalance of its group is under way (another worker joined
    or left: with ``--until-idle`` every worker of a group stops at about the same moment) could
    leave that thread waiting for ever in the rebalance callback, which hands the assignment to
    the main loop, closed by then: the worker had printed its summary and never exited. A clean
    stop still stops the thread first (faust joins it); a stuck one no longer keeps the process,
    whose work is done, alive (the group then sees the member go after its session timeout).
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from mode.threads import WorkerThread

    if getattr(AIOKafkaConsumerThread, "_entsync_daemon", False):
        return

    class DaemonWorkerThread(WorkerThread):
        def __init__(self, service: Any, **kwargs: Any) -> None:
            super().__init__(service, **kwargs)
            self.daemon = True

    _original(AIOKafkaConsumerThread, "Worker")
    AIOKafkaConsumerThread.Worker = DaemonWorkerThread
    AIOKafkaConsumerThread._entsync_daemon = True  # type: ignore[attr-defined]

"""faust-streaming work-arounds: the fetch wait; commits cover acknowledged offsets only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as driver

from connectors.stream.faust_compat import patches


class ConsumerThread:
    """faust's consumer thread as ``faust_compat.access.seek`` uses it: aiokafka's seek may only
    run inside ``call_thread`` (from the worker's thread it could race a fetch)."""

    def __init__(self) -> None:
        self.seeks: list[tuple[Any, int]] = []
        self._inside = False
        self._aiokafka = SimpleNamespace(seek=self._seek)

    def _ensure_consumer(self) -> Any:
        return self._aiokafka

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        self._inside = True
        try:
            return fun(*args)
        finally:
            self._inside = False

    def _seek(self, tp: Any, offset: int) -> None:
        assert self._inside
        self.seeks.append((tp, offset))


def test_the_worker_consumer_waits_at_most_the_configured_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread_class = driver.AIOKafkaConsumerThread
    created: list[Any] = []

    def fake_create(self: Any, transport: Any) -> Any:
        consumer = SimpleNamespace(_fetch_max_wait_ms=1500)
        created.append(consumer)
        return consumer

    monkeypatch.setattr(thread_class, "_create_worker_consumer", fake_create)
    # Whatever the patch records on the class is undone after the test.
    monkeypatch.setattr(thread_class, "_entsync_untracked_ack_guard_fetch", False, raising=False)
    monkeypatch.setattr(patches._config, "fetch_max_wait_ms", 100)
    patches.fetch_max_wait()
    assert thread_class._create_worker_consumer(None, None)._fetch_max_wait_ms == 100
    patches._config.fetch_max_wait_ms = 250  # another app in the process: its own value
    patches.fetch_max_wait()  # patched once: the original is not wrapped twice
    consumer = thread_class._create_worker_consumer(None, None)
    assert consumer._fetch_max_wait_ms == 250 and len(created) == 2


def _offsets_consumer(acked: list[int], committed: int | None) -> Any:
    from collections import defaultdict

    from intervaltree import IntervalTree

    tp = ("entsync.feed.v1", 0)
    return SimpleNamespace(
        tp=tp,
        app=SimpleNamespace(consumer_generation_id=3),
        _entsync_sought_generation=3,
        _acked={tp: list(acked)},
        _acked_index={tp: set(acked)},
        _committed_offset={tp: committed},
        _gap=defaultdict(IntervalTree),
    )


@pytest.mark.parametrize(
    ("acked", "committed", "expected"),
    [
        (list(range(100, 160)), 100, 160),
        ([100, 101, 102, 104], 100, 103),  # up to the first offset not acknowledged
        ([101, 102], 100, None),  # the head (dropped for an old generation) is not skipped
        ([], 100, None),
    ],
)
def test_the_next_commit_covers_acknowledged_offsets_only(
    acked: list[int], committed: int | None, expected: int | None
) -> None:
    import asyncio

    from faust.transport.consumer import Consumer

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    consumer = _offsets_consumer(acked, committed)
    # A delivered offset above the read offset (e.g. a record fetched before a seek) is not
    # taken for a hole in the log whose offsets could be committed unprocessed.
    asyncio.run(Consumer._add_gap(consumer, consumer.tp, 101, 150))  # type: ignore[arg-type]
    assert not consumer._gap[consumer.tp]
    assert Consumer._new_offset(consumer, consumer.tp) == expected  # type: ignore[arg-type]


def test_nothing_is_committed_before_the_assignment_s_committed_offsets_are_read() -> None:
    import asyncio

    from faust.transport.consumer import Consumer

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    consumer = _offsets_consumer([100, 101], None)
    consumer._entsync_sought_generation = None
    consumer._read_offset = {}
    consumer._unacked_messages = set()
    consumer.assignment = lambda: set()
    consumer.app.topics = SimpleNamespace(acks_enabled_for=lambda topic: True)

    async def seek_to_committed() -> dict[Any, int]:
        return {}

    consumer.seek_to_committed = seek_to_committed
    assert Consumer._new_offset(consumer, consumer.tp) is None  # type: ignore[arg-type]
    asyncio.run(Consumer.perform_seek(consumer))  # type: ignore[arg-type]
    assert Consumer._new_offset(consumer, consumer.tp) == 102  # type: ignore[arg-type]
    consumer.app.consumer_generation_id = 4  # a rebalance: wait for its seek again
    assert Consumer._new_offset(consumer, consumer.tp) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("acked", "in_flight", "sought"),
    [
        (range(100, 104), {104, 105}, [106]),  # all with the agents: go on after them
        ([100, 101, 103], {104, 105}, [102]),  # 102 was dropped (older generation): read again
        ([101, 102], {103}, []),  # the committed record itself was dropped
        (range(100, 106), set(), [106]),
    ],
)
def test_after_the_start_up_seek_records_the_agents_have_are_not_delivered_again(
    acked: Any, in_flight: set[int], sought: list[int]
) -> None:
    import asyncio

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    tp = TP("entsync.feed.v1", 0)

    async def seek_to_committed() -> dict[Any, int]:
        return {tp: 100}

    consumer: Any = SimpleNamespace(
        app=SimpleNamespace(
            consumer_generation_id=1,
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
        ),
        assignment=lambda: {tp},
        _read_offset={tp: 105},
        _committed_offset={},
        _acked_index={tp: set(acked)},
        _unacked_messages=[SimpleNamespace(tp=tp, offset=o, tracked=True) for o in in_flight],
        seek_to_committed=seek_to_committed,
    )

    consumer._thread = thread = ConsumerThread()
    asyncio.run(Consumer.perform_seek(consumer))
    assert [offset for _, offset in thread.seeks] == sought
    assert consumer._committed_offset == {tp: 100}
    if sought:  # faust delivers again from where it was sought
        assert consumer._read_offset[tp] == sought[-1]


def test_a_partition_never_committed_has_the_log_start_for_head() -> None:
    import asyncio
    from collections import defaultdict

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    tp, changelog = TP("entsync.feed.v1", 0), TP("entsync-sources-changelog", 0)

    async def seek_to_committed() -> dict[Any, int]:
        return {}  # the group never committed

    async def earliest_offsets(*tps: Any) -> dict[Any, int]:
        assert set(tps) == {tp}  # acked (stream) partitions only
        return {t: 7 for t in tps}

    consumer: Any = SimpleNamespace(
        app=SimpleNamespace(
            consumer_generation_id=1,
            topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == tp.topic),
        ),
        assignment=lambda: {tp, changelog},
        _read_offset={},
        _committed_offset=defaultdict(lambda: None),
        _acked={tp: [8, 9]},
        _acked_index={tp: {8, 9}},
        _gap=defaultdict(list),
        _unacked_messages=[],
        seek_to_committed=seek_to_committed,
        earliest_offsets=earliest_offsets,
    )
    asyncio.run(Consumer.perform_seek(consumer))
    assert consumer._committed_offset[tp] == 7
    assert Consumer._new_offset(consumer, tp) is None  # 7 was never acknowledged
    consumer._acked[tp], consumer._acked_index[tp] = [7, 8, 9], {7, 8, 9}
    assert Consumer._new_offset(consumer, tp) == 10


def test_stream_partitions_are_resumed_only_after_the_seek_of_their_assignment() -> None:
    import asyncio

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    feed, changelog = TP("entsync.feed.v1", 0), TP("entsync-sources-changelog", 0)
    active: set[Any] = set()
    events: list[str] = []

    async def seek_to_committed() -> dict[Any, int]:
        events.append(f"seek with {sorted(t.topic for t in active)} fetching")
        return {feed: 5}

    consumer: Any = SimpleNamespace(
        app=SimpleNamespace(
            consumer_generation_id=2,
            topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == feed.topic),
        ),
        assignment=lambda: {feed, changelog},
        _get_active_partitions=lambda: active,
        _paused_partitions={feed, changelog},
        _read_offset={},
        _committed_offset={},
        _acked_index={},
        _unacked_messages=[],
        seek_to_committed=seek_to_committed,
    )
    # What faust's recovery does after a rebalance: resume, then seek to the committed offsets.
    Consumer.resume_partitions(consumer, {feed, changelog})
    assert active == {changelog}  # the feed would be fetched from a position about to move
    asyncio.run(Consumer.perform_seek(consumer))
    assert events == ["seek with ['entsync-sources-changelog'] fetching"]
    assert active == {feed, changelog} and not consumer._paused_partitions
    # Once sought in this generation, resuming is immediate (e.g. after a pause).
    Consumer.pause_partitions(consumer, {feed})
    Consumer.resume_partitions(consumer, {feed})
    assert feed in active
    # A rebalance before the seek: the older generation's deferred resume is not applied.
    consumer.app.consumer_generation_id = 3
    Consumer.pause_partitions(consumer, {feed})
    Consumer.resume_partitions(consumer, {feed})
    consumer.app.consumer_generation_id = 4
    asyncio.run(Consumer.perform_seek(consumer))
    assert feed not in active
    Consumer.resume_partitions(consumer, {feed})  # generation 4's own recovery, after its seek
    assert feed in active


def test_a_rebalance_during_the_seek_keeps_the_newer_generation_s_resume_for_its_seek() -> None:
    import asyncio

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from connectors.stream.faust_compat.patches import commit_acknowledged_offsets_only

    commit_acknowledged_offsets_only()
    feed = TP("entsync.feed.v1", 0)
    active: set[Any] = set()
    consumer: Any = SimpleNamespace(
        app=SimpleNamespace(
            consumer_generation_id=5, topics=SimpleNamespace(acks_enabled_for=lambda t: True)
        ),
        assignment=lambda: {feed},
        _get_active_partitions=lambda: active,
        _paused_partitions={feed},
        _read_offset={},
        _committed_offset={},
        _acked_index={},
        _unacked_messages=[],
    )

    async def seek_during_a_rebalance() -> dict[Any, int]:
        consumer.app.consumer_generation_id = 6  # generation 6's recovery resumes meanwhile
        Consumer.resume_partitions(consumer, {feed})
        return {feed: 5}

    async def seek_to_committed() -> dict[Any, int]:
        return {feed: 5}

    Consumer.resume_partitions(consumer, {feed})
    consumer.seek_to_committed = seek_during_a_rebalance
    asyncio.run(Consumer.perform_seek(consumer))  # generation 5's seek ends in generation 6
    assert feed not in active
    consumer.seek_to_committed = seek_to_committed
    asyncio.run(Consumer.perform_seek(consumer))  # generation 6's seek
    assert feed in active


def test_the_stall_guard_reads_a_stalled_partition_again_from_the_consumer_thread() -> None:
    """No progress at all for ``patience`` checks while a partition is behind its high
    watermark: it is sought back to its committed offset, in the consumer thread."""
    import asyncio

    from faust.types import TP

    from connectors.stream.faust_compat.patches import StallGuard

    stalled, done = TP("entsync.feed.v1", 0), TP("entsync.feed.v1", 1)
    thread = ConsumerThread()
    consumer = SimpleNamespace(
        assignment=lambda: {stalled, done, TP("other", 0)},
        highwater=lambda tp: {stalled: 50, done: 20}.get(tp, 99),
        _committed_offset={stalled: 40, done: 20},
        _acked={},
        _read_offset={},
        _thread=thread,
    )
    progress = SimpleNamespace(feed_events=7, entity_inputs=3, in_flight=0)
    guard = StallGuard(
        SimpleNamespace(consumer=consumer), progress, {"entsync.feed.v1"}, patience=3
    )
    for _ in range(3):  # the first check only notes the counters
        asyncio.run(guard.check())
    assert thread.seeks == [] and guard.recoveries == 0
    asyncio.run(guard.check())
    assert thread.seeks == [(stalled, 40)] and guard.recoveries == 1
    assert consumer._read_offset == {stalled: 40}

"""faust-streaming work-arounds: fetch wait, commit offsets over gaps, no delivery while seeking."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as driver

from connectors.stream.faust_fixes import fetch_max_wait


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
    # Whatever fetch_max_wait records on the class is undone after the test.
    monkeypatch.setattr(thread_class, "_entsync_create_worker_consumer", None, raising=False)
    fetch_max_wait(100)
    assert thread_class._create_worker_consumer(None, None)._fetch_max_wait_ms == 100
    fetch_max_wait(250)  # called again (another app in the process): wraps the original once
    consumer = thread_class._create_worker_consumer(None, None)
    assert consumer._fetch_max_wait_ms == 250 and len(created) == 2


def _offsets_consumer(acked: list[int], committed: int, gaps: list[tuple[int, int]]) -> Any:
    from collections import defaultdict

    from intervaltree import IntervalTree

    tp = ("entsync.feed.v1", 0)
    gap: Any = defaultdict(IntervalTree)
    for begin, end in gaps:
        gap[tp].addi(begin, end)
    return SimpleNamespace(
        tp=tp,
        _acked={tp: list(acked)},
        _acked_index={tp: set(acked)},
        _committed_offset={tp: committed},
        _gap=gap,
    )


@pytest.mark.parametrize(
    ("acked", "committed", "gaps", "expected"),
    [
        # a seek reset the read offset under delivered records: the gap repeats acked offsets
        (list(range(100, 160)), 100, [(101, 150)], 160),
        # a real hole in the log (offsets 103-105 never existed) is stepped over
        ([100, 101, 102, 106, 107], 100, [(103, 106)], 108),
        # no gap: the first run of consecutive offsets
        ([100, 101, 102, 104], 100, [], 103),
        # the head was never acknowledged and nothing says it is missing: no commit
        ([101, 102], 100, [], None),
    ],
)
def test_the_next_commit_covers_every_acked_offset_once(
    acked: list[int], committed: int, gaps: list[tuple[int, int]], expected: int | None
) -> None:
    from faust.transport.consumer import Consumer

    from connectors.stream.faust_fixes import never_commit_past_unacked_head

    never_commit_past_unacked_head()
    consumer = _offsets_consumer(acked, committed, gaps)
    assert Consumer._new_offset(consumer, consumer.tp) == expected  # type: ignore[arg-type]


def test_no_stream_record_is_delivered_while_seeking_to_committed_offsets() -> None:
    import asyncio

    from faust.transport.consumer import Consumer
    from faust.types import TP

    from connectors.stream.faust_fixes import pause_streams_while_seeking

    pause_streams_while_seeking()
    feed, changelog = TP("entsync.feed.v1", 0), TP("entsync-table-changelog", 0)
    active = {feed, changelog}
    seen_while_seeking: list[set[Any]] = []

    async def seek_to_committed() -> dict[Any, int]:
        seen_while_seeking.append(set(active))
        return {feed: 42}

    consumer = SimpleNamespace(
        app=SimpleNamespace(consumer_generation_id=3),
        _get_active_partitions=lambda: active,
        _is_changelog_tp=lambda tp: tp is changelog,
        pause_partitions=lambda tps: active.difference_update(tps),
        resume_partitions=lambda tps: active.update(tps),
        seek_to_committed=seek_to_committed,
        _read_offset={},
        _committed_offset={},
    )
    asyncio.run(Consumer.perform_seek(consumer))  # type: ignore[arg-type]
    assert seen_while_seeking == [{changelog}]
    assert active == {feed, changelog} and consumer._committed_offset == {feed: 42}

    # a rebalance started during the seek: its own recovery resumes the partitions
    async def seek_during_rebalance() -> dict[Any, int]:
        consumer.app.consumer_generation_id = 4
        return {feed: 42}

    consumer.seek_to_committed = seek_during_rebalance
    asyncio.run(Consumer.perform_seek(consumer))  # type: ignore[arg-type]
    assert active == {changelog}

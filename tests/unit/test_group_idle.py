"""Idle for a worker of a group: the whole group's input done, whatever this worker holds."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from connectors.stream import faust_worker as worker_module
from connectors.stream.faust_worker import IdleDetector
from connectors.stream.group import GroupPosition, stream_partitions
from connectors.stream.progress import Progress

TOPICS = ("feed", "entities")
TPS = stream_partitions(TOPICS, 2)


class FakeConsumer:
    def __init__(self, assignment: set[TopicPartition], committed: dict[Any, int]) -> None:
        self._assignment = assignment
        self._committed_offset = committed  # faust's own record of its commits
        self.commits: list[dict[Any, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self._assignment

    async def commit(self) -> bool:
        return True

    async def _commit(self, offsets: dict[Any, int]) -> bool:
        self.commits.append(dict(offsets))
        return True


class FakeProducer:
    flushed = 0

    async def flush(self) -> None:
        self.flushed += 1


def position(committed: int | dict[TopicPartition, int], end: int = 10) -> GroupPosition:
    at = committed if isinstance(committed, dict) else dict.fromkeys(TPS, committed)
    return GroupPosition(
        committed={tp: at.get(tp, end) for tp in TPS}, ends=dict.fromkeys(TPS, end)
    )


class Broker:
    """The group positions the detector reads, one per check (the last one repeats)."""

    def __init__(self, *positions: GroupPosition) -> None:
        self.positions = list(positions)
        self.reads = 0

    async def __call__(self, kafka: Any, group: str, tps: list[TopicPartition]) -> GroupPosition:
        assert group == "entsync-group" and tps == TPS
        self.reads += 1
        return self.positions.pop(0) if len(self.positions) > 1 else self.positions[0]


def detector(
    monkeypatch: pytest.MonkeyPatch,
    broker: Broker,
    assignment: set[TopicPartition] | None = None,
    committed: dict[Any, int] | None = None,
) -> tuple[IdleDetector, FakeConsumer, Progress]:
    monkeypatch.setattr(worker_module, "group_position", broker)
    consumer = FakeConsumer(assignment or set(), committed or {})
    app: Any = SimpleNamespace(
        conf=SimpleNamespace(id="entsync-group"),
        consumer=consumer,
        producer=FakeProducer(),
        rebalancing=False,
        rebalancing_count=1,
    )
    progress = Progress()
    found = IdleDetector(app, progress, 2, 3, kafka=None, topics=TOPICS)  # type: ignore[arg-type]
    return found, consumer, progress


def checks(found: IdleDetector, n: int) -> list[bool]:
    async def run() -> list[bool]:
        return [await found.observe() for _ in range(n)]

    return asyncio.run(run())


def test_idle_once_the_group_is_done_for_three_checks_even_holding_no_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, _consumer, _progress = detector(monkeypatch, Broker(position(10)))
    # The first check only records the counters.
    assert checks(found, 5) == [False, False, False, True, True]


def test_not_idle_while_another_worker_has_records_to_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    behind = position({TPS[3]: 7})
    assert behind.behind == {TPS[3]: 3} and not behind.done
    found, _consumer, _progress = detector(monkeypatch, Broker(behind, behind, position(10)))
    assert checks(found, 6) == [False, False, False, False, False, True]


def test_new_records_in_between_restart_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    moved = GroupPosition(dict.fromkeys(TPS, 12), dict.fromkeys(TPS, 12))
    found, _consumer, _progress = detector(
        monkeypatch, Broker(position(10), position(10), moved, moved, moved)
    )
    assert checks(found, 6) == [False, False, False, False, False, True]


def test_a_batch_in_flight_or_progress_here_restarts_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = Broker(position(10))
    found, _consumer, progress = detector(monkeypatch, broker)
    assert checks(found, 2) == [False, False]
    progress.in_flight = 1
    assert checks(found, 3) == [False, False, False]
    progress.in_flight = 0
    progress.entity_inputs += 5
    assert checks(found, 4) == [False, False, False, True]
    assert broker.reads == 1 + 3  # not asked while a batch was in flight or moving


def test_a_commit_the_broker_refused_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    mine = TPS[1]
    found, consumer, _progress = detector(
        monkeypatch,
        Broker(position({mine: 6}), position(10)),
        assignment={mine},
        committed={mine: 10, TPS[0]: 10},  # faust believes both committed; only one is ours now
    )
    assert checks(found, 2) == [False, False]
    assert consumer.commits == [{mine: 10}]
    assert checks(found, 3) == [False, False, True]
    assert consumer.commits == [{mine: 10}]


def test_not_idle_before_the_first_join_nor_during_a_rebalance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = Broker(position(10))
    found, _consumer, _progress = detector(monkeypatch, broker)
    found.app.rebalancing_count = 0  # not joined yet
    assert checks(found, 5) == [False] * 5
    found.app.rebalancing_count = 1
    found.app.rebalancing = True  # joining again: the consumer thread waits on the broker
    assert checks(found, 5) == [False] * 5
    assert broker.reads == 0
    found.app.rebalancing = False
    assert checks(found, 3) == [False, False, True]


def test_a_broker_that_does_not_answer_is_not_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    async def flaky(kafka: Any, group: str, tps: list[TopicPartition]) -> GroupPosition:
        reads.append(1)
        if len(reads) == 2:
            raise TimeoutError("no answer")
        return position(10)

    found, _consumer, _progress = detector(monkeypatch, Broker(position(10)))
    monkeypatch.setattr(worker_module, "group_position", flaky)
    # read, no answer (the count starts again), then three reads in a row
    assert checks(found, 6) == [False, False, False, False, False, True]

"""A worker that waits long for its partitions says so (connectors.stream.settling)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from connectors.stream.group import Membership
from connectors.stream.settling import SettleWatch, warning_due


def test_warned_after_the_delay_then_every_delay() -> None:
    assert not warning_due(since=0.0, warned_at=None, now=29.9, every_s=30.0)
    assert warning_due(since=0.0, warned_at=None, now=30.0, every_s=30.0)
    assert not warning_due(since=0.0, warned_at=30.0, now=59.0, every_s=30.0)
    assert warning_due(since=0.0, warned_at=30.0, now=60.0, every_s=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _stuck() -> Membership:
    return Membership("Unknown", ("faust-a", "faust-b"))


async def test_a_join_that_never_completes_is_reported_with_the_group_side(clock: Clock) -> None:
    app = SimpleNamespace(rebalancing=True, rebalancing_count=0)  # never assigned
    watch = SettleWatch(app, _stuck, every_s=30.0, clock=clock.time)
    with capture_logs() as logs:
        for second in range(0, 95):
            clock.now = float(second)
            await watch.tick()
    warnings = [e for e in logs if e["event"] == "worker.group_not_settled"]
    assert [w["waited_s"] for w in warnings] == [30, 60, 90]
    assert warnings[0]["group_state"] == "Unknown" and warnings[0]["group_members"] == 2


async def test_a_settled_worker_says_nothing_and_counts_again(clock: Clock) -> None:
    app = SimpleNamespace(rebalancing=True, rebalancing_count=0)
    watch = SettleWatch(app, _stuck, every_s=30.0, clock=clock.time)
    with capture_logs() as logs:
        for second in range(0, 25):  # a join that takes 25 s
            clock.now = float(second)
            await watch.tick()
        app.rebalancing, app.rebalancing_count = False, 1
        for second in range(25, 200):
            clock.now = float(second)
            await watch.tick()
        app.rebalancing = True  # a later rebalance: counted from its start
        for second in range(200, 229):
            clock.now = float(second)
            await watch.tick()
    assert not [e for e in logs if e["event"] == "worker.group_not_settled"]


async def test_a_broker_away_still_gives_the_warning(clock: Clock) -> None:
    async def away() -> Membership:
        raise ConnectionError("no broker")

    app = SimpleNamespace(rebalancing=False, rebalancing_count=0)
    watch = SettleWatch(app, away, 10.0, clock=clock.time)
    with capture_logs() as logs:
        for second in range(0, 11):
            clock.now = float(second)
            await watch.tick()
    (warning,) = [e for e in logs if e["event"] == "worker.group_not_settled"]
    assert warning["error"] == "ConnectionError" and warning["waited_s"] == 10

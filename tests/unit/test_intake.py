"""Feed intake flow control (connectors/stream/intake.py): when the feed is paused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.stream.intake import EntityEnds, IntakeLimits, pause_feed

LIMITS = IntakeLimits(high=100, low=50, max_pause_s=5.0)


def test_paused_over_high_and_resumed_under_low() -> None:
    assert not pause_feed(None, 100, LIMITS)
    assert pause_feed(None, 101, LIMITS)
    assert pause_feed(1.0, 50, LIMITS)  # between low and high: stays as it is
    assert not pause_feed(None, 50, LIMITS)
    assert not pause_feed(1.0, 49, LIMITS)


def test_a_pause_never_outlasts_max_pause() -> None:
    assert pause_feed(4.99, 10_000, LIMITS)
    assert not pause_feed(5.0, 10_000, LIMITS)


@given(
    st.lists(st.tuples(st.integers(0, 400), st.floats(0.0, 2.0)), max_size=60),
    st.integers(1, 200),
)
def test_whatever_the_backlog_the_feed_flows_again(
    checks: list[tuple[int, float]], low: int
) -> None:
    """A pause starts only over ``high``, ends under ``low`` or at ``max_pause_s``; and a
    pause is never longer than ``max_pause_s`` (no stall, rule 3)."""
    limits = IntakeLimits(high=low + 100, low=low, max_pause_s=3.0)
    now, paused_at = 0.0, None
    for waiting, step in checks:
        now += step
        paused_for = None if paused_at is None else now - paused_at
        pause = pause_feed(paused_for, waiting, limits)
        if paused_at is None and pause:
            assert waiting > limits.high
            paused_at = now
        elif paused_at is not None and not pause:
            assert waiting < limits.low or now - paused_at >= limits.max_pause_s
            paused_at = None
        if paused_at is not None:
            assert now - paused_at < limits.max_pause_s


def test_entity_ends_are_the_furthest_delivery() -> None:
    ends = EntityEnds()
    assert ends.end(0) == 0
    for partition, end in [(0, 5), (1, 10), (0, 3)]:
        ends.delivered(partition, end)
    assert (ends.end(0), ends.end(1), ends.end(2)) == (5, 10, 0)

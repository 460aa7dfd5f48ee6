"""Workers that stop together leave their consumer group one at a time (connectors.stream.group).

The broker side (a member leaving during the rebalance another's leave started, on the local
broker) is in tests/integration/test_broker_group.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from connectors.stream.group import Membership, leave_in_turn, may_leave

ids = st.lists(st.text("abcdef0123", min_size=1, max_size=6), min_size=1, max_size=5, unique=True)


def test_only_the_smallest_member_of_a_stable_group_goes() -> None:
    group = Membership("Stable", ("b-2", "a-1", "c-3"))
    assert may_leave(group, "a-1")
    assert not may_leave(group, "b-2")
    assert not may_leave(group, "c-3")


def test_nobody_goes_while_a_rebalance_is_under_way() -> None:
    for state in ("PreparingRebalance", "CompletingRebalance", "Unknown"):
        assert not may_leave(Membership(state, ("a-1", "b-2")), "a-1")
        assert not may_leave(Membership(state, ("a-1",)), "a-1")  # alone, not joined again


def test_a_member_the_broker_no_longer_lists_goes() -> None:
    assert may_leave(Membership("PreparingRebalance", ("b-2",)), "a-1")
    assert may_leave(Membership("Empty", ()), "a-1")


@given(ids, st.sampled_from(["Stable", "PreparingRebalance", "Unknown"]))
def test_at_most_one_member_may_leave_at_any_moment(members: list[str], state: str) -> None:
    group = Membership(state, tuple(members))
    assert sum(may_leave(group, m) for m in members) <= 1
    if state == "Stable":  # and one always may: the turns never stall a stable group
        assert sum(may_leave(group, m) for m in members) == 1


def _broker(states: list[Membership]) -> Iterator[Membership]:
    yield from states
    while True:
        yield states[-1]


async def test_a_member_waits_for_the_rebalance_after_the_first_leave() -> None:
    seen = _broker(
        [
            Membership("Stable", ("a", "b")),  # a's turn, not b's
            Membership("Unknown", ("b",)),  # a left: the group rebalances
            Membership("Unknown", ("b",)),
            Membership("Stable", ("b",)),  # b joined again: its turn
        ]
    )
    asked = 0

    async def describe() -> Membership:
        nonlocal asked
        asked += 1
        return next(seen)

    assert await leave_in_turn(describe, "b", patience_s=5.0, check_s=0.0)
    assert asked == 4


async def test_a_group_that_does_not_move_lets_the_member_go_after_its_patience() -> None:
    async def describe() -> Membership:  # a member that crashed holds the turn
        return Membership("Stable", ("a", "b"))

    assert not await leave_in_turn(describe, "b", patience_s=0.05, check_s=0.01)


async def test_a_broker_that_does_not_answer_costs_the_patience_only() -> None:
    async def describe() -> Membership:
        raise ConnectionError("broker away")

    assert not await leave_in_turn(describe, "b", patience_s=0.05, check_s=0.01)

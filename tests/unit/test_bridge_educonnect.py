"""J+1 sync: snapshot diffs and the nightly schedule across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.bridge import GuardianFacts
from sync.educonnect import PARIS, changes, lost_links, next_run

RUN = datetime(2024, 9, 10, 0, tzinfo=UTC)


def g(
    gid: str,
    children: tuple[str, ...] = (),
    mobile: str | None = None,
    last_name: str = "M",
    manual: bool = False,
) -> GuardianFacts:
    return GuardianFacts(
        guardian_id=gid,
        dn=gid,
        jointure=f"J{gid}",
        last_name=last_name,
        first_name="C",
        child_ids=children,
        mobile=mobile,
        manual=manual,
    )


def test_links_phones_identity_and_removals() -> None:
    before = {"a": g("a", ("c1", "c2"), "+331"), "b": g("b"), "d": g("d")}
    after = {
        "a": g("a", ("c2", "c3"), "+332"),
        "b": g("b", last_name="N"),
        "c": g("c", ("c9",)),
        "d": g("d"),
    }
    events = {e.guardian_id: e for e in changes(before, after, RUN)}
    assert set(events) == {"a", "b", "c"}
    assert events["a"].children_gained == ("c3",) and events["a"].children_lost == ("c1",)
    assert events["a"].mobile_changed and events["a"].mobile == "+332"
    assert events["b"].identity_changed and events["b"].last_name == "N"
    assert events["c"].change == "added"
    assert lost_links(events.values()) == {("a", "c1")}
    gone = changes(after, {}, RUN)
    assert {e.change for e in gone} == {"removed"} and lost_links(gone) >= {("a", "c2")}


def test_manual_accounts_are_left_out() -> None:
    assert changes({}, {"m": g("m", ("c",), manual=True)}, RUN) == ()


facts = st.builds(
    lambda kids, mobile: (tuple(sorted(set(kids))), mobile),
    st.lists(st.sampled_from(["c1", "c2", "c3"]), max_size=3),
    st.sampled_from([None, "+331", "+332"]),
)
snapshots = st.dictionaries(st.sampled_from(["a", "b", "c"]), facts, max_size=3).map(
    lambda d: {k: g(k, kids, mobile) for k, (kids, mobile) in d.items()}
)


@given(snapshots, snapshots)
def test_applying_the_changes_rebuilds_the_new_links(
    old: dict[str, GuardianFacts], new: dict[str, GuardianFacts]
) -> None:
    links = {(k, c) for k, v in old.items() for c in v.child_ids}
    events = changes(old, new, RUN)
    for e in events:
        links -= {(e.guardian_id, c) for c in e.children_lost}
        links |= {(e.guardian_id, c) for c in e.children_gained}
    assert links == {(k, c) for k, v in new.items() for c in v.child_ids}
    assert changes(new, new, RUN) == ()
    assert len({e.event_id for e in events}) == len(events)


@pytest.mark.parametrize(
    ("now", "hour", "expected"),
    [
        ("2024-09-10T12:00:00+00:00", 2, "2024-09-11T00:00:00+00:00"),  # CEST: 02:00 = 00:00Z
        ("2024-12-10T12:00:00+00:00", 2, "2024-12-11T01:00:00+00:00"),  # CET
        ("2025-03-29T23:30:00+00:00", 2, "2025-03-30T01:00:00+00:00"),  # gap: runs at 03:00 CEST
        ("2025-10-25T23:30:00+00:00", 2, "2025-10-26T00:00:00+00:00"),  # first 02:00 CEST
        ("2025-10-26T00:30:00+00:00", 2, "2025-10-27T01:00:00+00:00"),  # not the repeated 02:00
        ("2024-09-10T00:00:00+00:00", 2, "2024-09-11T00:00:00+00:00"),  # strictly after now
    ],
)
def test_next_run_in_paris(now: str, hour: int, expected: str) -> None:
    assert next_run(datetime.fromisoformat(now), hour) == datetime.fromisoformat(expected)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 23),
)
def test_next_run_is_soon_after_and_at_the_hour(now: datetime, hour: int) -> None:
    due = next_run(now, hour)
    assert now < due <= now + timedelta(hours=26)
    local = due.astimezone(PARIS)
    assert local.minute == 0 and local.hour in (hour, hour + 1)


def test_next_run_refuses_naive_or_bad_hour() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run(datetime(2024, 1, 1), 2)
    with pytest.raises(ValueError, match=r"0\.\.23"):
        next_run(RUN, 24)

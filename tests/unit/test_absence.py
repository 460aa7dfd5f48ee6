"""Properties of the absence rules and of the snapshot coordinator."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.feed import Category, SnapshotCompleted, SnapshotStarted
from schemas.lifecycle import (
    PendingSnapshot,
    SchoolYearState,
    ScopeState,
    SnapshotRef,
    SnapshotTally,
)
from schemas.state import SourceState
from sync import absence
from tests.unit.core_factories import T0, source

SNAP = SnapshotRef(snapshot_id="now", category=Category.PUPILS, scope="A", started_at=T0)

states = st.builds(
    lambda i, present, scope, category, snap, minutes: SourceState(
        key=f"pupil:P{i}",
        kind="pupil",
        entity_id=f"el-{i}",
        version="v" if present else None,
        scope=scope,
        category=category,
        snapshot_id=snap,
        at=T0 + timedelta(minutes=minutes),
    ),
    st.integers(0, 10_000),
    st.booleans(),
    st.sampled_from(["A", "B", None]),
    st.sampled_from([Category.PUPILS, Category.GUARDIANS]),
    st.sampled_from(["now", "before", None]),
    st.integers(-60, 60),
)


@given(st.lists(states, max_size=60), st.integers(1, 6), st.randoms(use_true_random=False))
def test_tallies_do_not_depend_on_how_keys_are_spread(
    keys: list[SourceState], partitions: int, rnd: object
) -> None:
    spread: list[list[SourceState]] = [[] for _ in range(partitions)]
    for state in keys:
        spread[rnd.randrange(partitions)].append(state)  # type: ignore[attr-defined]
    parts = [absence.tally(p, SNAP) for p in spread]
    assert (sum(a for a, _ in parts), sum(b for _, b in parts)) == absence.tally(keys, SNAP)


@given(states)
def test_only_evidence_makes_a_key_absent(state: SourceState) -> None:
    if absence.is_absent(state, SNAP):
        assert state.version is not None and state.scope == "A"
        assert state.category == Category.PUPILS and state.snapshot_id != "now"
        assert state.at is not None and state.at < SNAP.started_at


def _run(active: int, absent: int, records: int, partitions: int) -> absence.Coordinated:
    key = "snapshot:Eleve:A"
    year = SchoolYearState()
    guard = absence.Guard()
    marker = {
        "key": key,
        "version": "v",
        "source": source("pupil", scope="A", snapshot_id="now"),
        "snapshot_id": "now",
        "scope": "A",
        "category": Category.PUPILS,
        "extract_date": None,
    }
    common = {"key": key, "at": T0, "partitions": partitions, "year": year, "guard": guard}
    step = absence.coordinate(None, SnapshotStarted(**marker), **common)  # type: ignore[arg-type]
    completed = SnapshotCompleted(**marker, record_count=records, record_keys_digest="0" * 64)
    step = absence.coordinate(step.state, completed, **common)  # type: ignore[arg-type]
    assert [s.partition for s in step.scans] == list(range(partitions))
    assert {s.phase for s in step.scans} == {"tally"}
    for p in range(partitions):
        share = (active if p == 0 else 0, absent if p == 0 else 0)
        tally = SnapshotTally(
            key=key,
            snapshot_id="now",
            partition=p,
            partitions=partitions,
            active=share[0],
            absent=share[1],
        )
        step = absence.coordinate(step.state, tally, **common)  # type: ignore[arg-type]
    return step


@given(st.integers(0, 500), st.data(), st.integers(1, 4))
def test_the_guard_never_lets_a_mass_deletion_through(
    active: int, data: st.DataObject, partitions: int
) -> None:
    absent = data.draw(st.integers(0, active))
    records = data.draw(st.integers(0, 600))
    step = _run(active, absent, records, partitions)
    (decision,) = step.decisions
    applied = decision.outcome == "applied"
    if applied:
        assert absent > 0 and records > 0
        assert absent < 5 or absent <= 0.10 * active
        assert {s.phase for s in step.scans} == {"apply"} and len(step.scans) == partitions
    else:
        assert step.scans == ()
    if absent >= 5 and absent > 0.10 * active:
        assert decision.outcome == "held"
    if records == 0 and absent > 0:
        assert decision.outcome == "held"


def test_the_coordinator_waits_for_every_partition() -> None:
    step = _run(10, 1, 10, 3)  # partition 0 holds every key; 1 and 2 report zeros
    assert step.decisions[0].outcome == "applied"
    common = {
        "key": "snapshot:Eleve:A",
        "at": T0,
        "partitions": 3,
        "year": SchoolYearState(),
        "guard": absence.Guard(),
    }
    state = step.state
    assert state.pending == {}
    # Tallies of a snapshot already decided (a redelivery) decide nothing again.
    late = SnapshotTally(
        key="snapshot:Eleve:A", snapshot_id="now", partition=1, partitions=3, active=0, absent=0
    )
    again = absence.coordinate(state, late, **common)  # type: ignore[arg-type]
    assert again.decisions == () and again.scans == ()


def test_a_partial_tally_decides_nothing() -> None:
    key = "snapshot:Eleve:A"
    ref = SnapshotRef(snapshot_id="now", category=Category.PUPILS, scope="A", started_at=T0)
    state = ScopeState(
        key=key, pending={"now": PendingSnapshot(snapshot=ref, record_count=5, partitions=2)}
    )
    tally = SnapshotTally(key=key, snapshot_id="now", partition=0, partitions=2, active=9, absent=9)
    common = {"key": key, "at": T0, "partitions": 2, "year": SchoolYearState()}
    step = absence.coordinate(state, tally, guard=absence.Guard(), **common)  # type: ignore[arg-type]
    assert step.decisions == () and step.scans == ()
    again = absence.coordinate(step.state, tally, guard=absence.Guard(), **common)  # type: ignore[arg-type]
    assert again.decisions == ()  # the same partition twice is still one partition

"""A load published school by school (connectors/aaf/load_order.py): same events, each
school's records together, snapshots still around all their records, deltas untouched."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.aaf import events_many, scan_many
from connectors.aaf.generator import GeneratorConfig, generate
from connectors.aaf.load_order import family_order, load_events
from schemas.feed import (
    FeedEvent,
    GuardianUpserted,
    PupilUpserted,
    SnapshotCompleted,
    SnapshotStarted,
)
from tests.unit.core_factories import deleted, guardian, pupil, school, source, staff


def _school_of(events: list[FeedEvent]) -> dict[str, str | None]:
    """Each record key's school, as rule 3 reads it (for the checks below)."""
    placed: dict[str, str | None] = {}
    for event in events:
        if event.key in placed or isinstance(event, SnapshotStarted | SnapshotCompleted):
            continue
        match event:
            case PupilUpserted():
                placed[event.key] = event.pupil.school_jointure
            case GuardianUpserted():
                schools = (placed.get(f"pupil:{p}") for p in event.guardian.pupil_jointures)
                placed[event.key] = next((s for s in schools if s), None)
            case _:
                school_ = getattr(getattr(event, "school", None), "jointure", None)
                staff_ = getattr(event, "staff", None)
                placed[event.key] = school_ or (
                    staff_.attachment_school_jointure if staff_ is not None else None
                )
    return placed


def _check(before: list[FeedEvent], after: list[FeedEvent]) -> None:
    assert Counter(e.model_dump_json() for e in after) == Counter(
        e.model_dump_json() for e in before
    )
    kinds = [
        "start"
        if isinstance(e, SnapshotStarted)
        else "end"
        if isinstance(e, SnapshotCompleted)
        else "record"
        for e in after
    ]
    assert kinds == sorted(kinds, key=["start", "record", "end"].index)
    places = _school_of(before)
    seen: list[str | None] = []
    for event in after:
        if isinstance(event, SnapshotStarted | SnapshotCompleted):
            continue
        school_ = places[event.key]
        if school_ is None:
            seen.append(None)
            continue
        # each school's records together, the schools before the records of no school
        assert None not in seen
        if seen and seen[-1] != school_:
            assert school_ not in seen
        seen.append(school_)
    records_before = [e for e in before if e.key in places]
    records_after = [e for e in after if e.key in places]
    for school_ in set(places.values()):  # within a place, the file order
        mine = [e for e in records_before if places[e.key] == school_]
        assert [e for e in records_after if places[e.key] == school_] == mine


def test_a_generated_load_comes_school_by_school(tmp_path: Path) -> None:
    generated = generate(tmp_path, GeneratorConfig(schools=6, pupils_per_school=8, seed=3))
    scans = scan_many(sorted(generated.full_files)).scans
    before = list(events_many(scans))
    after = list(load_events(scans))
    _check(before, after)
    # a family is together: a guardian comes after its first pupil, before the next school
    order = {e.key: i for i, e in enumerate(after)}
    pupils_of = [e for e in after if isinstance(e, GuardianUpserted)]
    assert pupils_of
    for event in pupils_of:
        first = f"pupil:{event.guardian.pupil_jointures[0]}"
        assert order[first] < order[event.key]
    assert after != before  # the generator writes every pupil, then every guardian


def test_deltas_keep_file_order(tmp_path: Path) -> None:
    generated = generate(tmp_path, GeneratorConfig(schools=3, pupils_per_school=5, seed=4))
    scans = scan_many(sorted(generated.files.values())).scans  # the complete files and a delta
    assert scans and not all(s.complete for s in scans)
    assert list(load_events(scans)) == list(events_many(scans))


def test_a_delta_event_is_refused() -> None:
    removal = deleted("pupil", "P1")
    delta = removal.model_copy(update={"source": source("pupil", snapshot_id="")})
    list(family_order([removal]))
    with pytest.raises(ValueError, match="delta event"):
        list(family_order([removal, delta]))


def test_a_key_keeps_its_first_place() -> None:
    events: list[FeedEvent] = [
        pupil("P1", first="Ana", school_jointure="S1"),
        pupil("P2", first="Bea", school_jointure="S2"),
        pupil("P1", first="Ana", last="Moved", school_jointure="S2"),
    ]
    after = list(family_order(events))
    assert after == [events[0], events[2], events[1]]


@st.composite
def loads(draw: st.DrawFn) -> list[FeedEvent]:
    schools = [f"S{i}" for i in range(draw(st.integers(1, 4)))]
    events: list[FeedEvent] = []
    pupils: list[str] = []
    for n in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["school", "pupil", "guardian", "staff"]))
        where = draw(st.sampled_from([*schools, None]))
        if kind == "school" and where:
            events.append(school(where, uai=f"{n:07d}A"))
        elif kind == "pupil":
            pupils.append(f"P{n}")
            events.append(pupil(f"P{n}", first="Ana", school_jointure=where))
        elif kind == "guardian":
            named = draw(st.lists(st.sampled_from([*pupils, "P99"]), max_size=2, unique=True))
            events.append(guardian(f"G{n}", first="Bea", pupils=named))
        elif kind == "staff":
            events.append(staff(f"T{n}", first="Cal", attachment=where))
    return events


@settings(max_examples=200, deadline=None)
@given(loads(), st.integers(1, 5))
def test_family_order_properties(records: list[FeedEvent], buckets: int) -> None:
    start = SnapshotStarted(
        key="snapshot:0000000X",
        version="1",
        source=records[0].source if records else pupil("P0", first="Ana").source,
        snapshot_id="s" * 64,
        scope="0000000X",
        category="Eleve",
        extract_date=None,
    )
    before: list[FeedEvent] = [start, *records]
    after = list(family_order(before, buckets=buckets))
    _check(before, after)
    assert after == list(family_order(before, buckets=buckets))  # deterministic

"""A whole school year on generated AAF files, through the real parser and the pure core.

September load and daily files; a pupil moving school; an empty extract stopped by the guard;
the summer freeze with weeks of no files; the new-year staff feed; the ONDE switchover; a first
new-year file without the "premières classes"; late arrivals; the end of the grace period (the
CM2 pupils who left for collège disappear, through a hold the operator approves); a dry-run sweep
that changes nothing; pre-deletion; deletion. The rest of the school is untouched throughout.

The CLI and the worker run the same rules on real services in
``tests/integration/test_lifecycle_e2e.py``; this walk covers the calendar at speed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from connectors.aaf import collect_records, events_many, scan_many
from connectors.aaf.generator import GeneratorConfig, generate
from schemas.entities import Cause
from schemas.feed import (
    Category,
    FeedEvent,
    Pupil,
    PupilUpserted,
    RecordDeleted,
    SourceRef,
    Staff,
    StaffUpserted,
    payload_version,
    record_key,
)
from sync import dit, ids, lifecycle
from sync.commands import teacher_class_request
from sync.simulator import run_to_quiescence, sweep_world, switch_year_world
from tests.unit.core_factories import BASE, NS, source
from tests.unit.lifecycle_helpers import CTX, Clock, hold_decision, snapshot, year

SCOPE = "AC-TOULOUSE"
NEW_YEAR = "2026-2027"
FIRST_CLASSES = {"TPS", "PS", "CP"}


def pupil_event(record: Pupil) -> PupilUpserted:
    return PupilUpserted(
        key=record_key("pupil", record.jointure),
        version=payload_version(record),
        source=snapshot_source(),
        pupil=record,
    )


def snapshot_source() -> SourceRef:
    return source("pupil", scope=SCOPE)


def pupils_file(records: list[Pupil], sid: str, day: date) -> list[FeedEvent]:
    return snapshot(Category.PUPILS, SCOPE, sid, [pupil_event(r) for r in records], day)


def new_year(record: Pupil) -> Pupil:
    """The same child in the new year: a new class, the new school year."""
    classes = tuple(c.model_copy(update={"code": f"{c.code}-27"}) for c in record.classes)
    return record.model_copy(update={"classes": classes, "school_year": NEW_YEAR})


def states(clock: Clock, records: list[Pupil]) -> dict[str, str | None]:
    out = {}
    for r in records:
        entry = clock.world.directory.get(dit.people_dn(ids.pupil_id(NS, r), BASE))
        out[r.jointure] = None if entry is None else entry["entsyncAccountState"][0]
    return out


def class_groups(clock: Clock) -> list[str]:
    return [
        dn for dn, e in clock.world.directory.items() if "ENTClasse" in e.get("objectClass", ())
    ]


def sweep(clock: Clock, at: datetime) -> None:
    sweep_world(clock.world, at, cause=Cause(topic="t", rule="sweep", at=at), ctx=CTX)


def test_a_whole_school_year(tmp_path: Path) -> None:
    config = GeneratorConfig(schools=3, pupils_per_school=30, seed=21, faults=False, year=2025)
    generated = generate(tmp_path, config)
    full = [generated.files[c.value] for c in Category]
    scans = scan_many(full).scans
    clock = Clock(start=datetime(2025, 9, 22, 5, tzinfo=UTC))

    # September: the full load, then the daily delta (newcomers, a departure...).
    clock.feed(list(events_many(scans)))
    delta_scans = scan_many([generated.files["delta"]], base=collect_records(scans)).scans
    clock.advance(days=1)
    delta_events = list(events_many(delta_scans))
    clock.feed(delta_events)
    records = {**collect_records(scans), **collect_records(delta_scans)}
    departed = set()  # the delta's departures: already disappeared in September
    for event in delta_events:
        if isinstance(event, RecordDeleted):
            records.pop(event.key, None)
            if event.kind == "pupil" and event.key in clock.world.sources:
                departed.add(clock.world.sources[event.key].entity_id)
    everyone = [r for r in records.values() if isinstance(r, Pupil)]  # held pupils too
    pupils = [r for r in everyone if not r.held_reasons]
    people = len([dn for dn in clock.world.directory if dn.startswith("uid=")])
    assert len(pupils) > 60

    # Daily complete files through the autumn: nothing changes, nobody is absent.
    for day in range(3):
        clock.advance(days=1)
        result = clock.feed(pupils_file(everyone, f"oct{day}", date(2025, 10, 1 + day)))
        assert result.ops == () and clock.world.decisions[-1].outcome == "nothing-absent"

    # A pupil moves to another school of the academy: same entry, same login, no duplicate.
    mover = next(p for p in pupils if p.ine)
    other = next(p for p in pupils if p.school_jointure != mover.school_jointure)
    moved = mover.model_copy(
        update={"school_jointure": other.school_jointure, "classes": other.classes}
    )
    pupils = [moved if p.jointure == mover.jointure else p for p in pupils]
    everyone = [moved if p.jointure == mover.jointure else p for p in everyone]
    clock.advance(days=1)
    clock.feed(pupils_file(everyone, "nov1", date(2025, 11, 3)))
    mover_entry = clock.world.directory[dit.people_dn(ids.pupil_id(NS, moved), BASE)]
    assert mover_entry["ENTPersonStructRattach"] == (dit.school_dn(other.school_jointure, BASE),)
    assert len([dn for dn in clock.world.directory if dn.startswith("uid=")]) == people

    # An empty extract is stopped by the guard; the operator rejects it.
    clock.advance(days=1)
    clock.feed(pupils_file([], "empty", date(2025, 11, 4)))
    assert clock.world.decisions[-1].outcome == "held"
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "empty", approve=False)])
    assert set(states(clock, pupils).values()) == {"active"}

    # Summer: frozen; weeks without files, then a stray partial file: nobody disappears.
    clock.now = datetime(2026, 7, 4, 18, tzinfo=UTC)
    clock.feed([year("freeze", clock.now)])
    clock.advance(days=20)
    clock.feed(pupils_file(pupils[:10], "july", date(2026, 7, 24)))
    assert clock.world.decisions[-1].outcome == "frozen"
    sweep(clock, clock.now)
    assert set(states(clock, pupils).values()) == {"active"}

    # Late August: the new-year staff file; a teacher changes school and has no class.
    staff = [r for r in records.values() if isinstance(r, Staff)]
    teacher = next(s for s in staff if s.is_teacher and s.attachment_school_jointure)
    new_school = next(
        p.school_jointure for p in pupils if p.school_jointure != teacher.attachment_school_jointure
    )
    assert new_school is not None
    # In the spring the school attached the teacher to a class of the old school.
    old_class = next(
        p.classes[0]
        for p in pupils
        if p.school_jointure == teacher.attachment_school_jointure and p.classes
    )
    teacher_id = ids.staff_id(NS, teacher.jointure)
    attach = teacher_class_request(
        NS,
        teacher_id=teacher_id,
        school_jointure=old_class.school_jointure,
        class_code=old_class.code,
        attach=True,
        at=clock.now,
    )
    run_to_quiescence((), ctx=CTX, world=clock.world, inputs=[attach])
    attached = clock.world.directory[dit.people_dn(teacher_id, BASE)]
    assert attached.get("ENTAuxEnsClasses")
    transferred = teacher.model_copy(
        update={"attachment_school_jointure": new_school, "school_jointures": ()}
    )
    new_staff = [transferred if s.jointure == teacher.jointure else s for s in staff]
    clock.now = datetime(2026, 8, 25, 6, tzinfo=UTC)
    staff_events = [
        StaffUpserted(
            key=record_key("staff", s.jointure),
            version=payload_version(s),
            source=snapshot_source(),
            staff=s,
        )
        for s in new_staff
    ]
    clock.feed(snapshot(Category.STAFF, SCOPE, "staff27", staff_events, date(2026, 8, 25)))
    teacher_entry = clock.world.directory[dit.people_dn(ids.staff_id(NS, teacher.jointure), BASE)]
    assert teacher_entry["ENTPersonStructRattach"] == (dit.school_dn(new_school, BASE),)
    assert "ENTAuxEnsClasses" not in teacher_entry

    # The ONDE switchover: last year's classes go; everyone keeps their school.
    switch_at = datetime(2026, 9, 1, 6, tzinfo=UTC)
    clock.now = switch_at
    clock.feed([year("switchover", switch_at, NEW_YEAR)])
    switch_year_world(
        clock.world, switch_at, cause=Cause(topic="t", rule="s", at=switch_at), ctx=CTX
    )
    assert class_groups(clock) == []
    assert all(  # SDET's mandatory classes value: the school, no class
        clock.world.directory[dit.people_dn(ids.pupil_id(NS, p), BASE)]["ENTEleveClasses"][
            0
        ].endswith("$")
        for p in pupils
    )

    # First new-year file: CM2 pupils left for collège, "premières classes" not there yet.
    leavers = [p for p in pupils if p.level == "CM2"]
    firsts = [p for p in pupils if p.level in FIRST_CLASSES]
    held = [p for p in everyone if p.held_reasons]
    staying = [new_year(p) for p in pupils if p not in leavers and p not in firsts]
    staying += [new_year(p) for p in held]
    assert leavers and firsts and staying
    clock.now = datetime(2026, 9, 3, 6, tzinfo=UTC)
    clock.feed(pupils_file(staying, "sep3", date(2026, 9, 3)))
    assert clock.world.decisions[-1].outcome == "grace"
    assert set(states(clock, pupils).values()) == {"active"}
    assert class_groups(clock) and all(
        dn.split(",")[0].endswith("-27") or "-27$" in dn for dn in class_groups(clock)
    )

    # Late arrivals, still within the grace period.
    arrived = staying + [new_year(p) for p in firsts]
    clock.now = datetime(2026, 9, 15, 6, tzinfo=UTC)
    clock.feed(pupils_file(arrived, "sep15", date(2026, 9, 15)))
    assert clock.world.decisions[-1].outcome == "grace"

    # After the grace period the leavers are absent: many at once, so a hold; approved.
    clock.now = datetime(2026, 10, 5, 6, tzinfo=UTC)
    clock.feed(pupils_file(arrived, "oct5", date(2026, 10, 5)))
    decision = clock.world.decisions[-1]
    assert decision.absent == len(leavers)
    if decision.outcome == "held":
        clock.feed([hold_decision(Category.PUPILS, SCOPE, "oct5", approve=True)])
    seen = states(clock, pupils)
    assert {seen[p.jointure] for p in leavers} == {"disappeared"}
    assert {seen[p.jointure] for p in pupils if p not in leavers} == {"active"}

    # A dry-run sweep lists the leavers and changes nothing.
    later = clock.now + timedelta(days=91)
    before = {dn: dict(entry) for dn, entry in clock.world.directory.items()}
    planned = lifecycle.planned(clock.world.entities.values(), later, lifecycle.Policy())
    leaver_ids = {ids.pupil_id(NS, p) for p in leavers}
    assert {s.entity_id for s, _ in planned} - departed == leaver_ids
    assert clock.world.directory == before

    # Pre-deletion, then deletion; the mover and the rest of the school are untouched.
    sweep(clock, later)
    seen = states(clock, pupils)
    assert {seen[p.jointure] for p in leavers} == {"predeleted"}
    sweep(clock, later + timedelta(days=91))
    seen = states(clock, pupils)
    assert {seen[p.jointure] for p in leavers} == {None}
    assert {seen[p.jointure] for p in pupils if p not in leavers} == {"active"}
    assert seen[mover.jointure] == "active"

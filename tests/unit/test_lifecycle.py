"""Account lifecycle in the pure core: absence from evidence, guards, sweeper, restoration."""

from __future__ import annotations

from datetime import date, timedelta

from schemas.entities import Cause, GroupSpec, RecordSet
from schemas.feed import Category, PupilUpserted, RecordRejected, payload_version
from schemas.lifecycle import SchoolYearState
from sync import absence, dit, ids
from sync.commands import teacher_class_request
from sync.simulator import run_to_quiescence, sweep_world, switch_year_world
from tests.unit.core_factories import BASE, NS, T0, guardian, pupil, school, staff
from tests.unit.lifecycle_helpers import (
    CTX,
    Clock,
    delta,
    hold_decision,
    person,
    pupil_key_id,
    snapshot,
    state_of,
    year,
)

SCOPE = "0750001A"
FIRSTS = ["Lea", "Zoe", "Max", "Noe", "Ana", "Eli", "Ines", "Jade", "Leo", "Tom", "Ugo", "Yan"]


def pupils(n: int, school_jointure: str = "S1") -> list[PupilUpserted]:
    return [
        pupil(
            f"P{i}",
            first=FIRSTS[i],
            ine=f"{i:010d}A",
            school_jointure=school_jointure,
            guardians=[f"G{i}"],
        )
        for i in range(n)
    ]


def loaded(n: int = 12) -> tuple[Clock, list[PupilUpserted]]:
    clock = Clock()
    everyone = pupils(n)
    clock.feed([school("S1")])
    clock.feed(
        snapshot(
            Category.GUARDIANS, SCOPE, "g1", [guardian(f"G{i}", first="Ann") for i in range(n)]
        )
    )
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p1", everyone))
    return clock, everyone


def sweep_cause(clock: Clock) -> Cause:
    return Cause(topic="entsync.entities.v1", partition=0, offset=0, rule="sweep", at=clock.now)


def group_members(clock: Clock, profile: str) -> tuple[str, ...]:
    spec = GroupSpec(school_jointure="S1", profile=profile)  # type: ignore[arg-type]
    entry = clock.world.directory.get(dit.group_dn(spec, BASE), {})
    return entry.get("member", ())


def test_absent_from_a_complete_snapshot_disappears() -> None:
    clock, everyone = loaded()
    clock.advance(days=1)
    result = clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    gone = pupil_key_id(everyone[0])
    assert state_of(clock.world.directory, gone) == "disappeared"
    assert person(clock.world.directory, gone)["entsyncDisappearedAt"]  # type: ignore[index]
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone[1:])
    (decision,) = clock.world.decisions[-1:]
    assert (decision.outcome, decision.active, decision.absent) == ("applied", 12, 1)
    assert {a.cause.rule for a in result.audits} >= {"lifecycle.absent-from-snapshot"}


def test_a_record_rejected_in_a_complete_snapshot_is_not_absent() -> None:
    """A full extract naming a person in a record that fails validation is evidence that the
    person is there: bad data never makes an account disappear, and the last valid record stays."""
    clock, everyone = loaded()
    before = person(clock.world.directory, pupil_key_id(everyone[0]))
    records = snapshot(Category.PUPILS, SCOPE, "p2", everyone)
    first = records[1]
    assert isinstance(first, PupilUpserted)
    records[1] = RecordRejected(
        key=first.key,
        version="rejected-1",
        source=first.source,
        kind="pupil",
        jointure=first.pupil.jointure,
        rules=("ine_invalid",),
    )
    result = clock.feed(records)
    assert person(clock.world.directory, pupil_key_id(everyone[0])) == before
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)
    assert clock.world.decisions[-1].outcome == "nothing-absent"
    assert result.ops == ()
    # Without the rejected record's presence the same pupil would have disappeared.
    clock.advance(days=1)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p3", everyone[1:]))
    assert state_of(clock.world.directory, pupil_key_id(everyone[0])) == "disappeared"


def test_a_rejected_record_of_an_unknown_person_creates_nothing() -> None:
    clock, everyone = loaded()
    stranger = RecordRejected(
        key="pupil:P99", version="r", source=everyone[0].source, kind="pupil", jointure="P99"
    )
    result = clock.feed([stranger])
    assert result.ops == () and "pupil:P99" not in clock.world.sources


def test_incomplete_snapshot_or_delta_never_causes_absence() -> None:
    clock, everyone = loaded()
    started_only = snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:])[:-1]
    clock.feed(started_only)
    clock.feed(delta("pupil", SCOPE, everyone[2:4]))
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_a_key_fed_by_a_delta_after_the_snapshot_began_is_not_absent() -> None:
    clock, everyone = loaded()
    records = snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:])
    # The delta lands between the snapshot's records and its completion.
    clock.feed([*records[:-1], *delta("pupil", SCOPE, everyone[:1]), records[-1]])
    assert state_of(clock.world.directory, pupil_key_id(everyone[0])) == "active"


def test_a_pupil_moving_school_is_not_absent_from_the_old_one() -> None:
    clock, everyone = loaded()
    mover = pupil("P0", first="Lea", ine=f"{0:010d}A", school_jointure="S2", guardians=["G0"])
    clock.feed([school("S2", uai="0750002B")])
    clock.feed(snapshot(Category.PUPILS, "0750002B", "b1", [mover]))
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    entity = pupil_key_id(everyone[0])
    assert state_of(clock.world.directory, entity) == "active"
    assert person(clock.world.directory, entity)["ENTPersonStructRattach"] == (  # type: ignore[index]
        dit.school_dn("S2", BASE),
    )
    assert clock.world.decisions[-1].outcome == "nothing-absent"


def test_mass_deletion_is_held_until_an_operator_decides() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[:5]))
    assert clock.world.decisions[-1].outcome == "held"
    assert (clock.world.decisions[-1].active, clock.world.decisions[-1].absent) == (12, 7)
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "p2", approve=True)])
    assert clock.world.decisions[-1].outcome == "approved"
    states = [state_of(clock.world.directory, pupil_key_id(p)) for p in everyone]
    assert states == ["active"] * 5 + ["disappeared"] * 7


def test_a_rejected_hold_marks_nothing_and_cannot_be_approved_later() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[:5]))
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "p2", approve=False)])
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "p2", approve=True)])
    assert [d.outcome for d in clock.world.decisions[-2:]] == ["held", "rejected"]
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_an_empty_snapshot_is_held() -> None:
    clock, everyone = loaded(3)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", []))
    decision = clock.world.decisions[-1]
    assert (decision.outcome, decision.record_count, decision.absent) == ("held", 0, 3)
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_the_same_held_snapshot_again_stays_held_quietly() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", []))
    decisions = len(clock.world.decisions)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", []))
    assert len(clock.world.decisions) == decisions  # no new decision: still the same hold
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "p2", approve=False)])
    assert clock.world.decisions[-1].outcome == "rejected"
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_a_newer_snapshot_supersedes_a_held_one() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", []))
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p3", everyone))
    assert [d.outcome for d in clock.world.decisions[-2:]] == ["superseded", "nothing-absent"]
    clock.feed([hold_decision(Category.PUPILS, SCOPE, "p2", approve=True)])
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_sweeper_predeletes_then_deletes_on_schedule() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    entity = pupil_key_id(everyone[0])
    dn = dit.people_dn(entity, BASE)
    login = person(clock.world.directory, entity)["ENTPersonLogin"]  # type: ignore[index]
    assert dn in group_members(clock, "pupils")

    early = sweep_world(clock.world, clock.advance(days=89), cause=sweep_cause(clock), ctx=CTX)
    assert early.ops == () and state_of(clock.world.directory, entity) == "disappeared"

    clock.advance(days=2)
    swept = sweep_world(clock.world, clock.now, cause=sweep_cause(clock), ctx=CTX)
    entry = person(clock.world.directory, entity)
    assert entry is not None and entry["entsyncAccountState"] == ("predeleted",)
    assert entry["ENTPersonLogin"] == login and "entsyncPredeletedAt" in entry
    assert "ENTPersonStructRattach" not in entry
    assert entry["ENTEleveClasses"] == ("$",)  # mandatory in SDET: names no school, no class
    assert dn not in group_members(clock, "pupils")
    assert "lifecycle.predelete" in {a.cause.rule for a in swept.audits}
    # Its guardian loses the child and leaves the guardians group, keeps its entry.
    guardian_entry = person(clock.world.directory, ids.guardian_id(NS, "G0"))
    assert guardian_entry is not None and "ENTAuxPersRelEleveEleve" not in guardian_entry

    clock.advance(days=91)
    sweep_world(clock.world, clock.now, cause=sweep_cause(clock), ctx=CTX)
    assert person(clock.world.directory, entity) is None
    assert clock.world.entities[entity].deleted_at is not None


def test_a_replayed_old_event_cannot_resurrect_a_deleted_account() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    entity = pupil_key_id(everyone[0])
    old_record = clock.world.entities[entity].records["pupil:P0"]
    for days in (91, 91):
        sweep_world(clock.world, clock.advance(days=days), cause=sweep_cause(clock), ctx=CTX)
    assert person(clock.world.directory, entity) is None
    replayed = RecordSet(
        entity_id=entity,
        cause=Cause(topic="entsync.entities.v1", rule="feed.pupil.upserted", at=T0),
        entity_kind="pupil",
        source_key="pupil:P0-other",
        version="v-old",
        pupil=old_record.pupil,
    )
    run_to_quiescence((), ctx=CTX, world=clock.world, inputs=[replayed])
    assert person(clock.world.directory, entity) is None


def test_a_person_coming_back_is_restored_with_the_same_dn_and_login() -> None:
    clock, everyone = loaded()
    entity = pupil_key_id(everyone[0])
    login = person(clock.world.directory, entity)["ENTPersonLogin"]  # type: ignore[index]
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    sweep_world(clock.world, clock.advance(days=91), cause=sweep_cause(clock), ctx=CTX)
    assert state_of(clock.world.directory, entity) == "predeleted"
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p3", everyone))
    entry = person(clock.world.directory, entity)
    assert entry is not None and entry["entsyncAccountState"] == ("active",)
    assert entry["ENTPersonLogin"] == login and "entsyncPredeletedAt" not in entry
    assert dit.people_dn(entity, BASE) in group_members(clock, "pupils")
    guardian_entry = person(clock.world.directory, ids.guardian_id(NS, "G0"))
    assert guardian_entry is not None
    assert guardian_entry["ENTAuxPersRelEleveEleve"] == (dit.people_dn(entity, BASE),)


def test_staff_absent_from_the_staff_snapshot_disappear_but_schools_never() -> None:
    clock = Clock()
    clock.feed([school("S1")])
    teachers = [staff(f"T{i}", first=FIRSTS[i]) for i in range(12)]
    clock.feed(snapshot(Category.STAFF, SCOPE, "t1", teachers))
    clock.feed(snapshot(Category.STAFF, SCOPE, "t2", teachers[1:]))
    assert state_of(clock.world.directory, ids.staff_id(NS, "T0")) == "disappeared"
    assert dit.school_dn("S1", BASE) in clock.world.directory


def test_a_predeleted_staff_member_keeps_no_school_function() -> None:
    clock = Clock()
    clock.feed([school("S1")])
    teachers = [staff(f"T{i}", first=FIRSTS[i], schools=["S1"]) for i in range(12)]
    director = teachers[0].staff.model_copy(update={"functions": ("S1$DIR",)})
    teachers[0] = teachers[0].model_copy(
        update={"staff": director, "version": payload_version(director)}
    )
    clock.feed(snapshot(Category.STAFF, SCOPE, "t1", teachers))
    entity = ids.staff_id(NS, "T0")
    assert person(clock.world.directory, entity)["ENTPersonFonctions"] == ("S1$DIR",)  # type: ignore[index]
    clock.feed(snapshot(Category.STAFF, SCOPE, "t2", teachers[1:]))
    sweep_world(clock.world, clock.advance(days=91), cause=sweep_cause(clock), ctx=CTX)
    entry = person(clock.world.directory, entity)
    assert entry is not None and entry["entsyncAccountState"] == ("predeleted",)
    assert not {"ENTPersonFonctions", "entsyncSchool", "ENTPersonStructRattach"} & set(entry)


def test_sweep_is_idempotent() -> None:
    clock, everyone = loaded()
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:]))
    now = clock.advance(days=100)
    sweep_world(clock.world, now, cause=sweep_cause(clock), ctx=CTX)
    again = sweep_world(clock.world, now, cause=sweep_cause(clock), ctx=CTX)
    assert again.ops == () and again.audits == ()


# ----------------------------------------------------------------------------- the school year


def class_dn(code: str, profile: str = "pupils") -> str:
    spec = GroupSpec(school_jointure="S1", profile=profile, class_code=code)  # type: ignore[arg-type]
    return dit.group_dn(spec, BASE)


def with_teacher(clock: Clock) -> str:
    clock.feed(snapshot(Category.STAFF, SCOPE, "t1", [staff("T1", first="Tom")]))
    teacher = ids.staff_id(NS, "T1")
    command = teacher_class_request(
        NS, teacher_id=teacher, school_jointure="S1", class_code="CP-A", attach=True, at=clock.now
    )
    run_to_quiescence((), ctx=CTX, world=clock.world, inputs=[command])
    entry = person(clock.world.directory, teacher)
    assert entry is not None and entry["ENTAuxEnsClasses"]
    return teacher


def test_nothing_disappears_while_the_year_is_frozen() -> None:
    clock, everyone = loaded()
    clock.feed([year("freeze", clock.now)])
    clock.advance(days=40)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[:1]))
    assert clock.world.decisions[-1].outcome == "frozen"
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)


def test_switchover_retires_classes_and_keeps_pupils_in_their_school() -> None:
    clock, everyone = loaded()
    teacher = with_teacher(clock)
    assert class_dn("CP-A") in clock.world.directory
    assert class_dn("CP-A", "guardians") in clock.world.directory
    clock.feed([year("freeze", clock.advance(days=1))])
    at = clock.advance(days=60)
    clock.feed([year("switchover", at, "2027-2028")])
    result = switch_year_world(clock.world, at, cause=sweep_cause(clock), ctx=CTX)
    assert {a.cause.rule for a in result.audits} == {"lifecycle.switchover"}
    directory = clock.world.directory
    assert class_dn("CP-A") not in directory and class_dn("CP-A", "guardians") not in directory
    assert class_dn("CP-A", "teachers") not in directory
    teacher_entry = person(directory, teacher)
    assert teacher_entry is not None and "ENTAuxEnsClasses" not in teacher_entry
    for p in everyone:
        entry = person(directory, pupil_key_id(p))
        assert entry is not None and entry["entsyncAccountState"] == ("active",)
        assert entry["ENTPersonStructRattach"] == (dit.school_dn("S1", BASE),)
        assert entry["ENTEleveClasses"] == (f"{dit.school_dn('S1', BASE)}$",)  # no class
    assert len(group_members(clock, "pupils")) == len(everyone)
    # The switchover applied twice changes nothing.
    again = switch_year_world(clock.world, at, cause=sweep_cause(clock), ctx=CTX)
    assert again.ops == ()


def test_a_repeated_or_older_switchover_leaves_the_calendar_as_it_is() -> None:
    first = absence.apply_year(SchoolYearState(), "switchover", "2027-2028", T0)
    assert (first.school_year, first.switchover_at) == ("2027-2028", T0)
    later = T0 + timedelta(days=20)
    for school_year in ("2027-2028", "2026-2027", None):
        assert absence.apply_year(first, "switchover", school_year, later) is first
    nxt = absence.apply_year(first, "switchover", "2028-2029", later)
    assert (nxt.school_year, nxt.switchover_at) == ("2028-2029", later)


def test_new_year_files_during_the_grace_period_then_after_it() -> None:
    clock, everyone = loaded()
    at = clock.advance(days=70)
    clock.feed([year("switchover", at, "2027-2028")])
    switch_year_world(clock.world, at, cause=sweep_cause(clock), ctx=CTX)
    # First new-year file: the "premières classes" (P0..P3) are not in it yet.
    new_class = [
        p.model_copy(
            update={
                "pupil": p.pupil.model_copy(
                    update={
                        "classes": (
                            p.pupil.classes[0].model_copy(
                                update={"code": "CE1-B", "label": "CE1 B"}
                            ),
                        )
                    }
                ),
                "version": f"{p.version}-2027",
            }
        )
        for p in everyone
    ]
    clock.advance(days=1)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "n1", new_class[4:]))
    assert clock.world.decisions[-1].outcome == "grace"
    assert all(state_of(clock.world.directory, pupil_key_id(p)) == "active" for p in everyone)
    assert class_dn("CE1-B") in clock.world.directory
    # Late arrivals: two of them come in a later file, still within the grace period.
    clock.advance(days=10)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "n2", new_class[2:]))
    # After the grace period, those never seen in a new-year file disappear.
    clock.advance(days=25)
    clock.feed(snapshot(Category.PUPILS, SCOPE, "n3", new_class[2:]))
    decision = clock.world.decisions[-1]
    assert (decision.outcome, decision.absent) == ("applied", 2)
    states = [state_of(clock.world.directory, pupil_key_id(p)) for p in everyone]
    assert states == ["disappeared"] * 2 + ["active"] * 10


def test_a_backfilled_old_extract_undoes_nothing() -> None:
    clock = Clock()
    everyone = pupils(12)
    clock.feed([school("S1")])
    guardians = [guardian(f"G{i}", first="Ann") for i in range(12)]
    clock.feed(snapshot(Category.GUARDIANS, SCOPE, "g1", guardians, date(2026, 9, 1)))
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p1", everyone, date(2026, 9, 1)))
    clock.feed(snapshot(Category.PUPILS, SCOPE, "p2", everyone[1:], date(2026, 9, 2)))
    gone = pupil_key_id(everyone[0])
    assert state_of(clock.world.directory, gone) == "disappeared"
    for days in (91, 91):
        sweep_world(clock.world, clock.advance(days=days), cause=sweep_cause(clock), ctx=CTX)
    assert person(clock.world.directory, gone) is None
    # The operator re-ingests the first extract (a backfill): the deleted pupil stays deleted,
    # and nobody fed by the newer extract is found absent from the older one.
    directory = dict(clock.world.directory)
    result = clock.feed(snapshot(Category.PUPILS, SCOPE, "p1", everyone, date(2026, 9, 1)))
    assert result.ops == () and clock.world.directory == directory
    assert clock.world.decisions[-1].outcome == "nothing-absent"

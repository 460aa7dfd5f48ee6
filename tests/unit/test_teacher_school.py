"""The teacher detach guard: ``entsync admin detach-teacher`` through the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.entities import GroupSpec
from sync import commands, dit, ids
from sync.reconcile import Context
from sync.simulator import RunResult, World, run_to_quiescence
from tests.unit.core_factories import BASE, NS, pupil, school, staff, with_causes

CTX = Context(base_dn=BASE, namespace=NS)
AT = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)
TEACHER = ids.staff_id(NS, "T1")


def world() -> World:
    events = [
        school("S1"),
        school("S2", uai="0750002B"),
        pupil("P1", first="Lea", ine="0000000001A", school_jointure="S2"),
        staff("T1", first="Tom", attachment="S1", schools=["S2"]),
    ]
    result = run_to_quiescence(with_causes(events), ctx=CTX)
    attach = commands.teacher_class_request(
        NS, teacher_id=TEACHER, school_jointure="S2", class_code="CP-A", attach=True, at=AT
    )
    return run_to_quiescence((), ctx=CTX, world=result.world, inputs=[attach]).world


def detach(w: World, school_: str, *, undo: bool = False, n: int = 1) -> RunResult:
    command = commands.teacher_school_request(
        teacher_id=TEACHER, school_jointure=school_, detach=not undo, at=AT + timedelta(minutes=n)
    )
    return run_to_quiescence((), ctx=CTX, world=w, inputs=[command])


def teachers_of(w: World, school_: str) -> tuple[str, ...]:
    spec = GroupSpec(school_jointure=school_, profile="teachers")
    return w.directory.get(dit.group_dn(spec, BASE), {}).get("member", ())


def teacher_entry(w: World) -> dict[str, tuple[str, ...]]:
    return w.directory[dit.people_dn(TEACHER, BASE)]


def test_detaching_from_the_attachment_school_is_refused() -> None:
    w = world()
    before = dict(w.directory)
    result = detach(w, "S1")
    (decided,) = result.outcomes
    assert (decided.outcome, decided.reason) == ("refused", "attachment-school")
    assert result.ops == () and w.directory == before


def test_detaching_from_a_school_of_exercise_removes_it_and_its_classes() -> None:
    w = world()
    me = dit.people_dn(TEACHER, BASE)
    assert me in teachers_of(w, "S2") and teacher_entry(w)["ENTAuxEnsClasses"]
    result = detach(w, "S2")
    assert [d.outcome for d in result.outcomes] == ["accepted"]
    assert me not in teachers_of(w, "S2") and me in teachers_of(w, "S1")
    entry = teacher_entry(w)
    assert entry["entsyncSchool"] == (dit.school_dn("S1", BASE),)
    assert "ENTAuxEnsClasses" not in entry
    assert entry["ENTPersonStructRattach"] == (dit.school_dn("S1", BASE),)
    assert {a.cause.rule for a in result.audits} == {"admin.detach-from-school"}
    again = detach(w, "S2", n=2)
    assert [d.outcome for d in again.outcomes] == ["unchanged"] and again.ops == ()
    undone = detach(w, "S2", undo=True, n=3)
    assert [d.outcome for d in undone.outcomes] == ["accepted"]
    assert me in teachers_of(w, "S2") and teacher_entry(w)["ENTAuxEnsClasses"]


def test_a_school_the_teacher_does_not_work_in_is_refused() -> None:
    w = world()
    result = detach(w, "S9")
    assert [(d.outcome, d.reason) for d in result.outcomes] == [
        ("refused", "teacher-not-in-school")
    ]

"""Academic logins and case through the pure core: decided by rule, never by a refused write.

The in-memory directory of :mod:`sync.simulator` refuses what slapd refuses (a DN or a login it
already has, compared ignoring case), so every run below would raise on a refused write.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from schemas.entities import GroupSpec
from schemas.feed import FeedEvent, HoldReason
from sync import dit, ids
from sync.links import refused_write
from sync.reconcile import Context
from sync.simulator import Directory, RunResult, World, run_to_quiescence
from tests.unit.core_factories import (
    BASE,
    NS,
    cause,
    deleted,
    guardian,
    pupil,
    school,
    staff,
    with_causes,
)

CTX = Context(base_dn=BASE, namespace=NS)
PUPIL = ids.pupil_id(NS, pupil("P1", first="Jean", last="Dupont", ine="1234567890A").pupil)
T1, T2 = ids.staff_id(NS, "T1"), ids.staff_id(NS, "T2")


def family(jointure: str, first: str, last: str, ine: str, code: str = "CP-A") -> list[FeedEvent]:
    g = f"G{jointure}"
    return [
        pupil(jointure, first=first, last=last, ine=ine, guardians=[g], classes=[(code, code)]),
        guardian(g, first="Anne", last="Zed", pupils=[jointure]),
    ]


def run(
    events: Sequence[FeedEvent], world: World | None = None, seed: int | None = None
) -> RunResult:
    choose = random.Random(seed) if seed is not None else None
    return run_to_quiescence(
        with_causes(events, start=len(world.sources) * 10 if world else 0),
        ctx=CTX,
        world=world,
        choose=choose,
        redeliver=True,
    )


def login_of(directory: Directory, entity_id: str) -> str | None:
    entry = directory.get(dit.people_dn(entity_id, BASE))
    return None if entry is None else entry["ENTPersonLogin"][0]


def test_staff_first_then_pupil_namesake_gets_a_suffixed_login() -> None:
    world = World()
    run([school("S1"), staff("T1", first="Jo", academic_login="Jean.Dupont")], world)
    result = run(family("P1", "Jean", "Dupont", "1234567890A"), world)
    assert login_of(result.directory, T1) == "Jean.Dupont"
    assert login_of(result.directory, PUPIL) == "jean.dupont2"


def test_pupil_first_then_staff_with_that_login_is_held_taken() -> None:
    world = World()
    run([school("S1"), *family("P1", "Jean", "Dupont", "1234567890A")], world)
    result = run([staff("T1", first="Jo", academic_login="JEAN.DUPONT")], world)
    assert login_of(result.directory, PUPIL) == "jean.dupont"
    assert login_of(result.directory, T1) is None
    assert world.entities[T1].held_reason is HoldReason.ACADEMIC_LOGIN_TAKEN


@given(st.integers(0, 10_000))
def test_in_any_order_no_write_is_refused_and_everyone_else_is_written(seed: int) -> None:
    events = [
        school("S1"),
        *family("P1", "Jean", "Dupont", "1234567890A"),
        staff("T1", first="Jo", academic_login="jean.dupont"),
        staff("T2", first="Al", academic_login="ALBERT.X"),
        staff("T3", first="Bo", academic_login="albert.x"),
    ]
    result = run(events, seed=seed)  # raises on a write slapd would refuse
    staff_login = login_of(result.directory, T1)
    pupil_login = login_of(result.directory, PUPIL)
    assert pupil_login in ("jean.dupont", "jean.dupont2")
    assert (staff_login is None) == (pupil_login == "jean.dupont")
    # Both held; one of them may have been written before the other's claim came: that entry
    # stays as written (its login is its own), the other is never written.
    sharing = (T2, ids.staff_id(NS, "T3"))
    assert sum(login_of(result.directory, t) is not None for t in sharing) <= 1
    for t in sharing:
        assert result.world.entities[t].held_reason is HoldReason.ACADEMIC_LOGIN_SHARED


def test_two_staff_sharing_a_login_are_both_held_until_one_goes() -> None:
    # T1's claim is answered before T2's exists here: T1 is written, then held (kept as is).
    world = World()
    events = [
        school("S1"),
        staff("T1", first="Jo", academic_login="jdupont"),
        staff("T2", first="Al", academic_login="JDupont"),
    ]
    result = run(events, world)
    assert login_of(result.directory, T2) is None
    holds = [h for h in result.world.entities.values() if h.held_reason is not None]
    assert {h.entity_id for h in holds} == {T1, T2}
    result = run([deleted("staff", "T2")], world)
    assert login_of(result.directory, T1) == "jdupont"
    assert world.entities[T1].held_reason is None


def test_a_written_staff_entry_is_kept_as_is_when_another_claims_its_login() -> None:
    world = World()
    run([school("S1"), staff("T1", first="Jo", academic_login="jdupont")], world)
    before = dict(world.directory[dit.people_dn(T1, BASE)])
    result = run([staff("T2", first="Al", academic_login="JDUPONT")], world)
    assert result.directory[dit.people_dn(T1, BASE)] == before
    assert login_of(result.directory, T2) is None
    assert world.entities[T1].held_reason is HoldReason.ACADEMIC_LOGIN_SHARED


@given(st.integers(0, 10_000))
def test_class_codes_the_directory_confuses_make_one_class_named_the_same_in_any_order(
    seed: int,
) -> None:
    events = [
        school("S1"),
        *family("P1", "Lea", "Martin", "1234567890A", code="C02"),
        *family("P2", "Tom", "Petit", "1234567890B", code="c02"),
    ]
    result = run(events, seed=seed)
    spec = GroupSpec(school_jointure="S1", profile="pupils", class_code="C02")
    assert ids.group_id(NS, spec) == ids.group_id(NS, spec.model_copy(update={"class_code": "c02"}))
    classes = [dn for dn in result.directory if "$pupils" in dn and "C02" in dn.upper()]
    assert len(classes) == 1  # a DN is stored as first written; slapd ignores its case
    assert result.directory[classes[0]]["cn"] == ("S1$C02$pupils",)  # the smallest spelling
    members = result.directory[classes[0]]["member"]
    assert len(members) == 2
    guardians = [dn for dn in result.directory if "$guardians" in dn and "C02" in dn.upper()]
    assert len(guardians) == 1 and len(result.directory[guardians[0]]["member"]) == 2


def test_a_refused_add_withdraws_the_groups_but_keeps_the_claim() -> None:
    """A claim names no DN: withdrawn with the groups, it would bring a new grant, a new add
    refused, and so on for ever (the directory took the login behind the core's back)."""
    world = World()
    run([school("S1"), staff("T1", first="Jo", academic_login="jo.bernard")], world)
    decided = world.entities[T1]
    assert any(k.startswith("claim|") for k in decided.outgoing)
    state, withdrawn = refused_write(None, decided, cause(99))
    assert {w.relation for w in withdrawn} == {"member"} and not any(w.present for w in withdrawn)
    assert [k for k in state.outgoing] == [k for k in decided.outgoing if k.startswith("claim|")]
    assert state.applied is None

"""Whole-core properties, through the in-memory pipeline.

Order independence is checked with distinct names, so that no two persons compete for a login
base: with a collision, who gets ``jean.dupont`` and who gets ``jean.dupont2`` depends on arrival
order by design (first come, first served). Collisions have their own test, which compares the
directories modulo logins and checks the logins form the expected set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.entities import Cause, GroupSpec
from schemas.feed import FeedEvent, HoldReason
from sync import dit, ids
from sync.reconcile import Context
from sync.simulator import Directory, World, run_to_quiescence
from tests.unit.core_factories import (
    BASE,
    NS,
    deleted,
    guardian,
    letters,
    pupil,
    school,
    staff,
    with_causes,
)

CTX = Context(base_dn=BASE, namespace=NS)
INE = {name: f"12345678{i:02d}A" for i, name in enumerate(("p1", "p2", "p3", "p4", "p6", "p7"))}


def scenario() -> list[FeedEvent]:
    """Two schools; siblings sharing a guardian; a guardian with children in both schools; a held
    pupil (whose guardian must get no account); a pupil known from two jointures whose first one
    is then deleted (school change); a deleted pupil; a teacher in two schools; other staff."""
    return [
        school("S1", "0750001A", "Ecole A", "Paris"),
        school("S2", "0750002B", "Ecole B"),
        guardian("G1", first="Anne"),
        guardian("G2", first="Bruno"),
        guardian("G3", first="Carla"),
        guardian("G4", first="Denis"),
        pupil("P1", first="Alice", ine=INE["p1"], guardians=["G1"]),
        pupil("P2", first="Boris", ine=INE["p2"], guardians=["G1"], classes=[("CE1", "CE1")]),
        pupil("P3", first="Chloe", ine=INE["p3"], guardians=["G2"]),
        pupil(
            "P4",
            first="David",
            ine=INE["p4"],
            guardians=["G2"],
            school_jointure="S2",
            classes=[("CM1", "CM1")],
        ),
        pupil("P5", first="Emma", guardians=["G3"], held=[HoldReason.INE_MISSING]),
        pupil("P6a", first="Felix", ine=INE["p6"], guardians=["G4"], classes=[("CM2-A", "CM2 A")]),
        pupil(
            "P6b",
            first="Felix",
            ine=INE["p6"],
            guardians=["G4"],
            school_jointure="S2",
            classes=[("CM2-B", "CM2 B")],
        ),
        pupil("P7", first="Gina", ine=INE["p7"], guardians=["G1"], classes=[("CE1", "CE1")]),
        staff("T1", first="Gaston", schools=["S2"]),
        staff("T2", first="Helene", teacher=False, academic_login="hbernard"),
        deleted("pupil", "P6a"),
        deleted("pupil", "P7"),
    ]


def fifo(events: Sequence[tuple[FeedEvent, Cause]]) -> Directory:
    return run_to_quiescence(events, ctx=CTX).directory


def person(directory: Directory, entity_id: str) -> dict[str, tuple[str, ...]]:
    return directory[dit.people_dn(entity_id, BASE)]


def members(directory: Directory, spec: GroupSpec) -> set[str]:
    return set(directory[dit.group_dn(spec, BASE)]["member"])


def pupil_id(key: str) -> str:
    return ids.entity_id(NS, "pupil", f"ine:{INE[key]}")


def dn(entity_id: str) -> str:
    return dit.people_dn(entity_id, BASE)


# ---------------------------------------------------------------- the scenario's outcome


def test_scenario_outcome() -> None:
    directory = fifo(with_causes(scenario()))
    g1, g2, g3 = (ids.guardian_id(NS, g) for g in ("G1", "G2", "G3"))
    # Siblings share one guardian entry, which names both (and the disappeared pupil P7).
    assert set(person(directory, g1)["ENTAuxPersRelEleveEleve"]) == {
        dn(pupil_id("p1")),
        dn(pupil_id("p2")),
        dn(pupil_id("p7")),
    }
    for key in ("p1", "p2"):
        assert person(directory, pupil_id(key))["ENTEleveParents"] == (dn(g1),)
    # A guardian with children in two schools is in both schools' guardians groups.
    for school_jointure in ("S1", "S2"):
        spec = GroupSpec(school_jointure=school_jointure, profile="guardians")
        assert dn(g2) in members(directory, spec)
    # The held pupil and its only guardian have no entry.
    held = ids.entity_id(NS, "pupil", "jointure:P5")
    assert dn(held) not in directory and dn(g3) not in directory
    # The pupil known from two jointures is one entry, in its current school only.
    felix = person(directory, pupil_id("p6"))
    assert felix["ENTPersonJointure"] == ("ONDE$P6b",)
    assert felix["ENTPersonStructRattach"] == (dit.school_dn("S2", BASE),)
    old_class = GroupSpec(school_jointure="S1", profile="pupils", class_code="CM2-A")
    assert dit.group_dn(old_class, BASE) not in directory
    # A deleted pupil is kept, disappeared, and still in its groups.
    gina = person(directory, pupil_id("p7"))
    assert gina["entsyncAccountState"] == ("disappeared",)
    ce1 = GroupSpec(school_jointure="S1", profile="pupils", class_code="CE1")
    assert dn(pupil_id("p7")) in members(directory, ce1)
    # Staff: the teacher is in both schools' teachers groups; other staff keep their login.
    t1, t2 = ids.staff_id(NS, "T1"), ids.staff_id(NS, "T2")
    for school_jointure in ("S1", "S2"):
        spec = GroupSpec(school_jointure=school_jointure, profile="teachers")
        assert members(directory, spec) == {dn(t1)}
    assert person(directory, t2)["ENTPersonLogin"] == ("hbernard",)
    assert members(directory, GroupSpec(school_jointure="S1", profile="staff")) == {dn(t2)}
    # Every person entry has a login, and logins are unique.
    logins = [e["ENTPersonLogin"][0] for e in directory.values() if "ENTPersonLogin" in e]
    assert len(logins) == len(set(logins)) == 11  # 6 pupils, 3 guardians, 2 staff


def test_resending_everything_changes_nothing() -> None:
    events = with_causes(scenario())
    first = run_to_quiescence(events, ctx=CTX)
    snapshot = {dn_: dict(e) for dn_, e in first.directory.items()}
    again = run_to_quiescence(events, ctx=CTX, world=first.world)
    assert again.ops == () and again.audits == ()
    # Only the deleted keys route again (a tombstone cannot tell a replay from a return); the
    # entities see those records as older than their removal and ignore them.
    assert again.deliveries == len(events) + 4
    # The current records published again in new files (new offsets and times): nothing to do.
    # (Deleted keys are left out: an upsert after a deletion is a record coming back.)
    gone = {e.key for e in scenario() if e.type == "record.deleted"}
    current = [e for e in scenario() if e.key not in gone]
    later = run_to_quiescence(with_causes(current, start=1000), ctx=CTX, world=first.world)
    assert later.ops == ()
    assert first.world.directory == snapshot


def test_audits_match_ops_and_have_unique_ids() -> None:
    result = run_to_quiescence(with_causes(scenario()), ctx=CTX)
    assert len(result.audits) == len(result.ops)
    assert [a.dn for a in result.audits] == [op.dn for op in result.ops]
    assert len({a.event_id for a in result.audits}) == len(result.audits)


# ---------------------------------------------------------------- order independence


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_scenario_converges_under_any_interleaving(data: st.DataObject) -> None:
    events = with_causes(scenario())

    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    result = run_to_quiescence(events, ctx=CTX, choose=choose, redeliver=True)
    assert result.directory == fifo(events)


def test_scenario_converges_under_random_orders() -> None:
    events = with_causes(scenario())
    reference = fifo(events)
    for seed in range(40):
        result = run_to_quiescence(events, ctx=CTX, choose=random.Random(seed))
        assert result.directory == reference, seed


@dataclass(frozen=True)
class PupilPlan:
    school: int
    klass: str
    guardians: tuple[int, ...]
    held: bool
    has_ine: bool
    second_school: int | None
    delete: str | None  # None, "first" or "second"
    later: str | None  # a second version of the first key: "held", "guardians" or "class"


pupil_plans = st.builds(
    PupilPlan,
    school=st.integers(1, 3),
    klass=st.sampled_from(["CP", "CE1"]),
    guardians=st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True).map(tuple),
    held=st.booleans(),
    has_ine=st.booleans(),
    second_school=st.none() | st.integers(1, 3),
    delete=st.sampled_from([None, None, "first", "second"]),
    later=st.sampled_from([None, None, "held", "guardians", "class"]),
)


@st.composite
def worlds(draw: st.DrawFn) -> list[FeedEvent]:
    """A small random event set, keys in a random order, with distinct names."""
    plans = draw(st.lists(pupil_plans, min_size=1, max_size=6))
    known_guardians = draw(st.sets(st.integers(1, 4)))
    events: list[list[FeedEvent]] = []
    for i, plan in enumerate(plans):
        ine = f"{i:010d}X" if plan.has_ine and not plan.held else None
        held = [HoldReason.INE_MISSING] if ine is None else []
        common = {
            "first": letters(i),
            "last": "Eleve",
            "ine": ine,
            "guardians": [f"G{g}" for g in plan.guardians],
            "classes": [(plan.klass, plan.klass)],
            "held": held,
        }
        keyed: list[list[FeedEvent]] = [
            [pupil(f"P{i}", school_jointure=f"S{plan.school}", **common)]
        ]
        # Not generated: a guardian change on a pupil known from two jointures. Which records
        # are ever effective then depends on arrival order, and a guardian linked only
        # transiently keeps an account (see test_transient_guardian_is_history_dependent).
        two_keys = plan.second_school is not None and ine is not None
        if plan.later is not None and not (plan.later == "guardians" and two_keys):
            changed = dict(common)
            if plan.later == "held":
                changed["held"] = [HoldReason.NO_CLASS]
            elif plan.later == "guardians":
                changed["guardians"] = [f"G{g % 4 + 1}" for g in plan.guardians]
            else:
                changed["classes"] = [("CM1", "CM1")]
            keyed[0].append(pupil(f"P{i}", school_jointure=f"S{plan.school}", **changed))
        if two_keys:
            keyed.append([pupil(f"P{i}b", school_jointure=f"S{plan.second_school}", **common)])
        if plan.delete == "first":
            keyed[0].append(deleted("pupil", f"P{i}"))
        elif plan.delete == "second":
            keyed[-1].append(deleted("pupil", keyed[-1][0].key.partition(":")[2]))
        events.extend(keyed)
    events.extend(
        [guardian(f"G{g}", first=letters(100 + g), last="Parent")] for g in known_guardians
    )
    events.extend([school(f"S{s}")] for s in (1, 2, 3))
    teachers = draw(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3)), max_size=2))
    for j, (attachment, other) in enumerate(teachers):
        events.append(
            [
                staff(
                    f"T{j}",
                    first=letters(200 + j),
                    attachment=f"S{attachment}",
                    schools=[f"S{other}"],
                )
            ]
        )
    order = draw(st.permutations(range(len(events))))
    return [e for k in order for e in events[k]]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_random_worlds_converge_under_any_interleaving(
    events: list[FeedEvent], data: st.DataObject
) -> None:
    numbered = with_causes(events)

    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    result = run_to_quiescence(numbered, ctx=CTX, choose=choose, redeliver=True)
    assert result.directory == fifo(numbered)
    # Replaying the same events on the settled world changes nothing.
    assert run_to_quiescence(numbered, ctx=CTX, world=result.world).ops == ()
    # Every class group in the directory has a member, and every member DN is a person the core
    # decided about.
    for entry in result.directory.values():
        if "groupOfNames" in entry.get("objectClass", ()):
            assert entry["member"]


# ---------------------------------------------------------------- scenarios over time


def test_school_change_keeps_dn_and_login_and_empties_the_old_class() -> None:
    world = World()
    first: list[FeedEvent] = [
        school("S1"),
        school("S2", "0750002B"),
        guardian("G1", first="Anne"),
        pupil("P1", first="Alice", ine=INE["p1"], guardians=["G1"], classes=[("CM2", "CM2")]),
    ]
    run_to_quiescence(with_causes(first), ctx=CTX, world=world)
    alice = dn(pupil_id("p1"))
    login = world.directory[alice]["ENTPersonLogin"]
    old_class = GroupSpec(school_jointure="S1", profile="pupils", class_code="CM2")
    old_guardians = GroupSpec(school_jointure="S1", profile="guardians", class_code="CM2")
    assert dit.group_dn(old_class, BASE) in world.directory
    # New year: the new school's record arrives, then the old school deletes its record.
    second: list[FeedEvent] = [
        pupil(
            "P1-new",
            first="Alice",
            ine=INE["p1"],
            guardians=["G1"],
            school_jointure="S2",
            classes=[("6A", "6e A")],
        ),
        deleted("pupil", "P1"),
    ]
    result = run_to_quiescence(with_causes(second, start=100), ctx=CTX, world=world)
    entry = world.directory[alice]
    assert entry["ENTPersonLogin"] == login
    assert entry["entsyncAccountState"] == ("active",)
    assert entry["ENTPersonStructRattach"] == (dit.school_dn("S2", BASE),)
    assert dit.group_dn(old_class, BASE) not in world.directory
    assert dit.group_dn(old_guardians, BASE) not in world.directory
    g1 = person(world.directory, ids.guardian_id(NS, "G1"))
    assert g1["ENTAuxPersRelEleveEleve"] == (alice,)
    deletes = [a for a in result.audits if a.action == "delete"]
    assert {a.dn for a in deletes} >= {dit.group_dn(old_class, BASE)}


def test_pupil_getting_an_ine_is_written_once_admitted() -> None:
    world = World()
    waiting = pupil("P1", first="Alice", guardians=["G1"], held=[HoldReason.INE_MISSING])
    run_to_quiescence(
        with_causes([school("S1"), guardian("G1", first="Anne"), waiting]), ctx=CTX, world=world
    )
    assert not any(e.get("entsyncKind") == ("pupil",) for e in world.directory.values())
    admitted = pupil("P1", first="Alice", ine=INE["p1"], guardians=["G1"])
    run_to_quiescence(with_causes([admitted], start=10), ctx=CTX, world=world)
    assert person(world.directory, pupil_id("p1"))["ENTPersonJointure"] == ("ONDE$P1",)
    assert dn(ids.guardian_id(NS, "G1")) in world.directory


def _without_logins(directory: Directory) -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        dn_: {k: v for k, v in entry.items() if k != "ENTPersonLogin"}
        for dn_, entry in directory.items()
    }


def test_login_collisions_depend_on_order_only_through_the_suffix() -> None:
    homonyms = [
        pupil(f"P{i}", first="Jean", last="Dupont", ine=f"{i:010d}X", guardians=[f"G{i}"])
        for i in range(3)
    ]
    events = with_causes(
        [school("S1"), *homonyms, *(guardian(f"G{i}", first=letters(i)) for i in range(3))]
    )
    reference = fifo(events)
    for seed in range(15):
        result = run_to_quiescence(events, ctx=CTX, choose=random.Random(seed))
        assert _without_logins(result.directory) == _without_logins(reference)
        logins = {
            e["ENTPersonLogin"][0]
            for e in result.directory.values()
            if e.get("entsyncKind") == ("pupil",)
        }
        assert logins == {"jean.dupont", "jean.dupont2", "jean.dupont3"}
        # Each person keeps their login when everything is sent again.
        before = {d: e.get("ENTPersonLogin") for d, e in result.directory.items()}
        run_to_quiescence(
            with_causes([*(e for e, _ in events)], start=500), ctx=CTX, world=result.world
        )
        assert {d: e.get("ENTPersonLogin") for d, e in result.directory.items()} == before


def test_transient_guardian_is_history_dependent() -> None:
    """Documents the one known order dependence (besides login suffixes).

    A pupil known from two jointures whose older record names guardian G3 and whose newer one
    does not: G3 gets an account (kept without children, as the rule says) only if the older record
    was effective while the pupil had an entry (its login had come).
    """
    events = with_causes(
        [
            school("S1"),
            guardian("G3", first="Ez", last="Parent"),
            pupil("P3", first="Bd", ine=INE["p3"], guardians=["G3"]),
            pupil("P3b", first="Bd", ine=INE["p3"], guardians=["G2"]),
        ]
    )
    g3 = dn(ids.guardian_id(NS, "G3"))
    first = run_to_quiescence(events[:3], ctx=CTX).world
    older_first = run_to_quiescence(events[3:], ctx=CTX, world=first).directory
    assert g3 in older_first
    assert "ENTAuxPersRelEleveEleve" not in older_first[g3]
    newer_first = run_to_quiescence([events[0], events[1], events[3], events[2]], ctx=CTX)
    assert g3 not in newer_first.directory


def test_every_audit_event_names_the_schools_of_its_entry() -> None:
    """What ``audit search --school`` finds: a school's people too, not only its entries."""
    result = run_to_quiescence(with_causes(scenario()), ctx=CTX)
    by_entity: dict[str, set[str]] = {}
    for audit in result.audits:
        assert audit.schools, audit.dn
        by_entity.setdefault(audit.entity_id, set()).update(audit.schools)
    assert by_entity[ids.school_id(NS, "S1")] == {"S1"}
    assert by_entity[pupil_id("p1")] == {"S1"}
    assert by_entity[pupil_id("p4")] == {"S2"}
    # A guardian's entry names no school: its children's schools are its schools.
    assert by_entity[ids.guardian_id(NS, "G2")] == {"S1", "S2"}
    assert by_entity[ids.staff_id(NS, "T1")] >= {"S1", "S2"}


def test_a_pupil_moving_school_is_audited_in_both_schools() -> None:
    world = run_to_quiescence(with_causes(scenario()), ctx=CTX).world
    moved = pupil("P1", first="Alice", ine=INE["p1"], guardians=["G1"], school_jointure="S2")
    result = run_to_quiescence(with_causes([moved], start=100), ctx=CTX, world=world)
    (change,) = [a for a in result.audits if a.entity_id == pupil_id("p1")]
    assert change.schools == ("S1", "S2")

"""Lost stream state rebuilt from the directory (sync.rebuild): the world that lost its tables and
the world that did not decide the same from then on.

The reference is the in-memory pipeline run twice on one world; the other world is rebuilt from
the first run's directory alone. The same extract again must write nothing, and a later extract
(leavers, changes, newcomers) must end in the same directory in both worlds.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.entities import EntityInput, ManualAccount
from schemas.feed import Category, FeedEvent
from sync import commands, dit, ids, readback
from sync.rebuild import RESTORED_VERSION, rebuild
from sync.reconcile import Context
from sync.simulator import Directory, World, run_to_quiescence, sweep_world
from tests.unit.core_factories import (
    BASE,
    NS,
    T0,
    cause,
    guardian,
    pupil,
    school,
    staff,
    with_causes,
)
from tests.unit.lifecycle_helpers import snapshot

CTX = Context(base_dn=BASE, namespace=NS)
SCOPE = "AC-TEST"  # academy-wide files


def ine(i: int) -> str:
    return f"{1234567000 + i:010d}A"


def extract(
    pupils: Sequence[tuple[str, str, str, Sequence[str]]],
    guardians: Sequence[tuple[str, str, str]],
    tag: str,
) -> list[FeedEvent]:
    """Schools, then complete pupil, guardian and staff snapshots of the academy.

    pupils: (jointure, first name, class code, guardian jointures); guardians: (jointure, first
    name, mobile)."""
    events: list[FeedEvent] = [school("S1", "0750001A"), school("S2", "0750002B", "Ecole B")]
    pupil_events = [
        pupil(
            j,
            first=first,
            ine=ine(int(j[1:])),
            guardians=list(gs),
            school_jointure="S2" if code.startswith("B") else "S1",
            classes=[(code, f"Classe {code}")],
        )
        for j, first, code, gs in pupils
    ]
    guardian_events = [guardian(j, first=first, mobile=mobile) for j, first, mobile in guardians]
    staff_events = [
        staff("T1", first="Gaston", schools=["S2"]),
        staff("T2", first="Helene", teacher=False, academic_login="hbernard"),
    ]
    events += snapshot(Category.PUPILS, SCOPE, f"pupils-{tag}", pupil_events)
    events += snapshot(Category.GUARDIANS, SCOPE, f"guardians-{tag}", guardian_events)
    events += snapshot(Category.STAFF, SCOPE, f"staff-{tag}", staff_events)
    return events


FAMILIES = [
    ("P1", "Alice", "CP", ["G1"]),
    ("P2", "Boris", "CP", ["G1"]),
    ("P3", "Chloe", "CE1", ["G2"]),
    ("P4", "David", "B-CM1", ["G2", "G3"]),
    ("P5", "Alice", "CE1", ["G3"]),  # a namesake of P1: the second alice.martin
    ("P6", "Emma", "CP", ["G4"]),
]
PARENTS = [
    ("G1", "Anne", "+33612345678"),
    ("G2", "Bruno", "+33612345679"),
    ("G3", "Carla", "+33612345680"),
    ("G4", "Denis", "+33612345681"),
]


def lose_state(world: World) -> World:
    """What a worker finds after its broker lost every topic: the directory only."""
    rebuilt = rebuild(copy.deepcopy(world.directory), CTX)
    assert not rebuilt.skipped
    return World(
        sources=dict(rebuilt.sources),
        entities=dict(rebuilt.entities),
        directory=copy.deepcopy(world.directory),
    )


def run(world: World, events: Sequence[FeedEvent], start: int) -> tuple[Directory, int]:
    result = run_to_quiescence(with_causes(events, start), ctx=CTX, world=world)
    return result.directory, len(result.ops)


def reference() -> World:
    world = World()
    run(world, extract(FAMILIES, PARENTS, "1"), 0)
    return world


def test_the_same_extract_after_a_loss_writes_nothing() -> None:
    rebuilt = lose_state(reference())
    _, ops = run(rebuilt, extract(FAMILIES, PARENTS, "2"), 10_000)
    assert ops == 0


def test_a_later_extract_after_a_loss_is_applied_as_without_it() -> None:
    kept = reference()
    lost = lose_state(kept)
    for world in (kept, lost):
        run(world, extract(FAMILIES, PARENTS, "2"), 10_000)
    # P3 and P6 leave, G1 changes phone, a new pupil (a third alice.martin) and guardian come.
    later_families = [f for f in FAMILIES if f[0] not in ("P3", "P6")] + [
        ("P7", "Alice", "CP", ["G5"])
    ]
    later_parents = [("G1", "Anne", "+33700000000"), *PARENTS[1:3], ("G5", "Eve", "+33612340000")]
    later = extract(later_families, later_parents, "3")
    expected, expected_ops = run(kept, later, 20_000)
    actual, actual_ops = run(lost, later, 20_000)
    assert actual == expected
    assert actual_ops == expected_ops
    gone = ids.entity_id(NS, "pupil", f"ine:{ine(3)}")
    assert actual[dit.people_dn(gone, BASE)]["entsyncAccountState"] == ("disappeared",)


def test_logins_of_the_directory_are_never_handed_out_again() -> None:
    world = reference()
    foreign = f"uid=someone,ou=manual-groups,{BASE}"
    directory = copy.deepcopy(world.directory)
    directory[foreign] = {"objectClass": ("inetOrgPerson",), "ENTPersonLogin": ("denis.martin",)}
    rebuilt = rebuild(directory, CTX)
    allocator = rebuilt.entities[ids.login_allocator_id(NS, "denis.martin")]
    assert set(allocator.allocations.values()) == {"denis.martin"}
    assert readback.foreign_holder(foreign) in allocator.allocations


def test_routing_state_comes_back_for_every_person_and_school() -> None:
    world = reference()
    rebuilt = rebuild(world.directory, CTX)
    assert set(rebuilt.sources) == {k for k, s in world.sources.items() if s.version}
    for key, state in rebuilt.sources.items():
        assert state.entity_id == world.sources[key].entity_id
        assert state.version == RESTORED_VERSION
        assert state.restored_uais


def test_applied_is_what_the_directory_holds() -> None:
    world = reference()
    rebuilt = rebuild(world.directory, CTX)
    for dn, entry in world.directory.items():
        entity_id = entry["entsyncId"][0]
        assert rebuilt.entities[entity_id].applied == entry, dn


def test_what_other_tools_write_on_an_entry_is_not_ours() -> None:
    world = reference()
    directory = copy.deepcopy(world.directory)
    dn = next(d for d, e in directory.items() if e.get("entsyncKind") == ("guardian",))
    directory[dn] = {**directory[dn], "userPassword": ("{SSHA}x",), "description": ("x",)}
    entity_id = directory[dn]["entsyncId"][0]
    assert rebuild(directory, CTX).entities[entity_id].applied == world.directory[dn]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leavers=st.sets(st.sampled_from([f[0] for f in FAMILIES])),
    phones=st.lists(st.integers(0, 3), max_size=3),
    moved=st.sampled_from([None, *[f[0] for f in FAMILIES]]),
)
def test_property_lost_state_converges(
    leavers: set[str], phones: list[int], moved: str | None
) -> None:
    """Whatever the later extract (leavers, phone changes, a pupil changing class), the rebuilt
    world ends in the same directory with the same number of writes."""
    kept = reference()
    lost = lose_state(kept)
    families = [
        (j, first, "CE2" if j == moved else code, gs)
        for j, first, code, gs in FAMILIES
        if j not in leavers
    ]
    parents = [
        (j, first, f"+3361111111{n}" if n in phones else mobile)
        for n, (j, first, mobile) in enumerate(PARENTS)
    ]
    later = extract(families, parents, "2")
    expected, expected_ops = run(kept, later, 10_000)
    actual, actual_ops = run(lost, later, 10_000)
    assert actual == expected
    assert actual_ops == expected_ops


PARIS = ZoneInfo("Europe/Paris")


def block(*, cancel: bool) -> EntityInput:
    """A bulk block of school S1's guardians, its window given in Paris time as the CLI does."""
    start = (T0 + timedelta(days=1)).astimezone(PARIS)
    return commands.block_request(
        NS,
        school_jointure="S1",
        profile="guardians",
        start=start,
        end=start + timedelta(days=300),
        message="Maintenance",
        cancel=cancel,
        at=T0 + timedelta(days=2),
    )


def rich_reference() -> World:
    """Before the loss: leavers pre-deleted by the sweeper, one just disappeared, a teacher
    attached to a class, a GAR manager, a foster family, a bulk block."""
    world = reference()
    teacher = ids.staff_id(NS, "T1")
    inputs = [
        commands.teacher_class_request(
            NS, teacher_id=teacher, school_jointure="S1", class_code="CP", attach=True, at=T0
        ),
        commands.gar_manager_request(NS, teacher_id=teacher, school_jointure="S1", add=True, at=T0),
        commands.manual_account_request(
            NS,
            token="foster",
            account=ManualAccount(
                profile="guardian", first_name="Anne", last_name="Martin", school_jointure="S1"
            ),
            at=T0,
        ),
    ]
    inputs.append(block(cancel=False))
    result = run_to_quiescence((), ctx=CTX, world=world, inputs=inputs)
    assert all(o.outcome == "accepted" for o in result.outcomes)
    two = [f for f in FAMILIES if f[0] not in ("P3", "P6")]
    run(world, extract(two, PARENTS, "2"), 10_000)
    sweep_world(world, T0 + timedelta(days=100), cause=cause(15_000, "lifecycle.sweep"), ctx=CTX)
    three = [f for f in two if f[0] != "P2"]
    run(world, extract(three, PARENTS, "3"), 20_000)
    states = {
        e["entsyncAccountState"][0] for e in world.directory.values() if "entsyncAccountState" in e
    }
    assert states == {"active", "disappeared", "predeleted"}
    assert any("entsyncBlockedFrom" in e for e in world.directory.values())
    return world


def test_lifecycle_and_admin_facts_survive_a_loss() -> None:
    kept = rich_reference()
    lost = lose_state(kept)
    three = [f for f in FAMILIES if f[0] not in ("P2", "P3", "P6")]
    _, ops = run(lost, extract(three, PARENTS, "4"), 30_000)
    assert ops == 0
    run(kept, extract(three, PARENTS, "4"), 30_000)
    # P3 comes back, P4 leaves, the block is cancelled, then the sweeper's next passes.
    later = [f for f in FAMILIES if f[0] not in ("P2", "P4", "P6")]
    for world in (kept, lost):
        run(world, extract(later, PARENTS, "5"), 40_000)
        outcome = run_to_quiescence((), ctx=CTX, world=world, inputs=[block(cancel=True)])
        assert [o.outcome for o in outcome.outcomes] == ["accepted"]
        for days in (200, 400):
            now = T0 + timedelta(days=days)
            sweep_world(world, now, cause=cause(50_000 + days, "lifecycle.sweep"), ctx=CTX)
    assert lost.directory == kept.directory

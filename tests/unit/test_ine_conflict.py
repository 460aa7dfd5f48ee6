"""INE conflicts through the pure core (sync.ineconflict): records of two people never merge."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.feed import FeedEvent, Pupil
from sync import dit, ids, ineconflict
from sync.commands import CommandError
from sync.reconcile import Context, ContractError, decide
from sync.simulator import Directory, RunResult, World, run_to_quiescence
from tests.unit.core_factories import BASE, NS, guardian, pupil, school, with_causes

CTX = Context(base_dn=BASE, namespace=NS)
INE, OTHER_INE = "1234567890A", "2234567890B"
PUPIL = ids.entity_id(NS, "pupil", f"ine:{INE}")
G1, G2 = ids.guardian_id(NS, "G1"), ids.guardian_id(NS, "G2")
AT = datetime(2026, 9, 20, 8, 0, tzinfo=UTC)


def alice(**kw: object) -> FeedEvent:
    args: dict[str, object] = {
        "first": "Alice",
        "ine": INE,
        "birth": date(2019, 3, 14),
        "guardians": ("G1",),
    }
    return pupil("P1", **(args | kw))


def bob(jointure: str = "P2", **kw: object) -> FeedEvent:
    args: dict[str, object] = {
        "first": "Bob",
        "last": "Durand",
        "ine": INE,
        "birth": date(2018, 7, 2),
        "school_jointure": "S2",
        "guardians": ("G2",),
    }
    return pupil(jointure, **(args | kw))


def families() -> list[FeedEvent]:
    return [
        school("S1"),
        school("S2", uai="0750002B"),
        guardian("G1", first="Anne", pupils=("P1",)),
        guardian("G2", first="Paul", last="Durand", pupils=("P2",)),
    ]


def run(world: World, *events: FeedEvent, start: int, inputs: tuple = ()) -> RunResult:  # type: ignore[type-arg]
    return run_to_quiescence(
        with_causes(events, start=start), ctx=CTX, world=world, inputs=inputs, redeliver=True
    )


def person(directory: Directory, entity_id: str) -> dict[str, tuple[str, ...]] | None:
    return directory.get(dit.people_dn(entity_id, BASE))


def resolve(holder: str | None = None, same: bool = False, n: int = 0) -> object:
    return ineconflict.resolution_request(
        pupil_id=PUPIL, holder_jointure=holder, same_person=same, at=AT + timedelta(minutes=n)
    )


def alice_written() -> World:
    world = World()
    run(world, *families(), alice(), start=0)
    assert person(world.directory, PUPIL) is not None
    return world


def test_same_ine_in_two_schools_at_once_holds_both() -> None:
    world = World()
    result = run(world, *families(), alice(), bob(), start=0)
    assert person(world.directory, PUPIL) is None  # neither gets the INE's account
    assert person(world.directory, G2) is None  # nor Bob's only guardian through it
    state = world.entities[PUPIL]
    assert state.ine_conflict_at is not None and set(state.ine_held) == {"pupil:P2"}
    assert [(n.held, n.unresolved, n.reason) for n in result.notices] == [
        (("pupil:P2",), True, "ine_conflict")
    ]


def test_in_any_order_the_two_children_never_merge() -> None:
    """Whoever came first may have been written before the other arrived: that entry stays as
    it was; the held one is never written and makes no link (its only guardian: no account)."""
    guardians = {"pupil:P1": G1, "pupil:P2": G2}
    for seed in range(16):
        world = World()
        run_to_quiescence(
            with_causes([*families(), alice(), bob()]),
            ctx=CTX,
            world=world,
            choose=random.Random(seed),
        )
        state = world.entities[PUPIL]
        (held,) = state.ine_held
        (kept,) = (k for k in state.records if k != held)
        assert person(world.directory, guardians[held]) is None, seed
        entry = person(world.directory, PUPIL)
        record = state.records[kept].pupil
        assert entry is None or (record and entry["givenName"] == (record.first_name,)), seed


def test_an_ine_moving_to_another_child_keeps_the_entry_as_it_was() -> None:
    world = alice_written()
    before = person(world.directory, PUPIL)
    g1 = person(world.directory, G1)
    result = run(world, bob(), start=100)
    assert person(world.directory, PUPIL) == before  # not rewritten as Bob, login kept
    assert person(world.directory, G1) == g1  # her guardian keeps her
    assert person(world.directory, G2) is None
    assert [n.held for n in result.notices] == [("pupil:P2",)]
    assert result.notices[0].unresolved and "Bob" not in result.notices[0].model_dump_json()


def test_the_same_key_changing_person_is_held_too() -> None:
    world = alice_written()
    before = person(world.directory, PUPIL)
    result = run(world, bob("P1", guardians=("G2",)), start=100)
    assert person(world.directory, PUPIL) == before
    assert not [op for op in result.ops if op.dn == dit.people_dn(PUPIL, BASE)]
    assert set(world.entities[PUPIL].ine_held) == {"pupil:P1"}
    # the source puts Alice back on her key: the hold ends, nothing to write
    again = run(world, alice(), start=200)
    state = world.entities[PUPIL]
    assert not state.ine_held and state.ine_conflict_at is None
    assert person(world.directory, PUPIL) == before and not again.ops


def test_resolved_for_the_first_holder_the_other_stays_held() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    result = run(world, start=200, inputs=(resolve("P1"),))
    (decided,) = result.outcomes
    assert (decided.command, decided.outcome, decided.holder) == (
        "resolve-ine",
        "accepted",
        "pupil:P1",
    )
    state = world.entities[PUPIL]
    assert state.ine_conflict_at is None and set(state.ine_held) == {"pupil:P2"}
    assert result.notices[-1].held == ("pupil:P2",) and not result.notices[-1].unresolved
    # Alice's changes apply again; Bob's stay held
    moved = run(world, alice(classes=(("CE1", "CE1"),)), bob(classes=(("CE2", "CE2"),)), start=300)
    entry = person(world.directory, PUPIL)
    assert entry is not None and entry["givenName"] == ("Alice",)
    assert any(v.endswith("$CE1") for v in entry["ENTEleveClasses"])
    assert person(world.directory, G2) is None
    assert all(a.cause.rule != "admin.resolve-ine" for a in moved.audits)


def test_resolved_for_the_newcomer_rewrites_the_entry_as_the_operator_said() -> None:
    world = alice_written()
    login = person(world.directory, PUPIL)["ENTPersonLogin"]  # type: ignore[index]
    run(world, bob(), start=100)
    result = run(world, start=200, inputs=(resolve("P2"),))
    entry = person(world.directory, PUPIL)
    assert entry is not None and entry["givenName"] == ("Bob",)
    assert entry["ENTPersonLogin"] == login  # a login never changes
    assert set(world.entities[PUPIL].ine_held) == {"pupil:P1"}
    assert person(world.directory, G2) is not None  # Bob's guardian now has a child
    pupil_changes = [a for a in result.audits if a.entity_id == PUPIL]
    assert pupil_changes and all(a.cause.rule == "admin.resolve-ine" for a in pupil_changes)


def test_same_person_takes_every_record() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    result = run(world, start=200, inputs=(resolve(same=True),))
    assert result.outcomes[0].outcome == "accepted"
    state = world.entities[PUPIL]
    assert not state.ine_held and state.ine_conflict_at is None and len(state.ine_persons) == 2
    assert set(state.records) == {"pupil:P1", "pupil:P2"}
    # a later change of either record is taken, not held again
    run(world, alice(classes=(("CE1", "CE1"),)), start=300)
    assert not world.entities[PUPIL].ine_held


def test_resolving_twice_or_naming_an_unknown_record() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    run(world, start=200, inputs=(resolve("P1"),))
    again = run(world, start=300, inputs=(resolve("P1", n=1),))
    assert again.outcomes[0].outcome == "unchanged" and not again.ops
    unknown = run(world, start=400, inputs=(resolve("P9", n=2),))
    assert (unknown.outcomes[0].outcome, unknown.outcomes[0].reason) == (
        "refused",
        "holder-unknown",
    )
    with pytest.raises(CommandError):
        ineconflict.resolution_request(
            pupil_id=PUPIL, holder_jointure="P1", same_person=True, at=AT
        )
    with pytest.raises(ContractError):
        decide(None, resolve("P1").model_copy(update={"entity_id": G1}), CTX)  # type: ignore[attr-defined]


def test_the_held_record_leaves_when_its_ine_changes_in_the_source() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    result = run(world, bob(ine=OTHER_INE), start=200)
    state = world.entities[PUPIL]
    assert not state.ine_held and state.ine_conflict_at is None
    assert result.notices[-1].held == () and not result.notices[-1].unresolved
    bob_id = ids.entity_id(NS, "pupil", f"ine:{OTHER_INE}")
    entry = person(world.directory, bob_id)
    assert entry is not None and entry["givenName"] == ("Bob",)
    assert person(world.directory, G2) is not None


def test_a_persons_own_corrections_stay_the_same_person() -> None:
    world = alice_written()
    # a first-name correction (same birth date), then a birth-date correction (same names)
    renamed = run(world, alice(first="Alicia"), start=100)
    assert person(world.directory, PUPIL)["givenName"] == ("Alicia",)  # type: ignore[index]
    run(world, alice(first="Alicia", birth=date(2019, 3, 15)), start=200)
    assert not world.entities[PUPIL].ine_held and not renamed.notices
    # her own INE correction (same key, new INE): she moves to the new INE's entity
    moved = run(world, alice(first="Alicia", birth=date(2019, 3, 15), ine=OTHER_INE), start=300)
    new_id = ids.entity_id(NS, "pupil", f"ine:{OTHER_INE}")
    assert person(world.directory, new_id) is not None and not moved.notices


def test_a_record_sent_again_unchanged_is_a_no_op() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    states = dict(world.entities)
    again = run(world, alice(), bob(), start=200)
    assert not again.ops and not again.notices and world.entities == states


def test_a_held_pupil_record_is_never_in_the_records() -> None:
    world = alice_written()
    run(world, bob(), start=100)
    state = world.entities[PUPIL]
    records: list[Pupil] = [r.pupil for r in state.records.values() if r.pupil is not None]
    assert [p.first_name for p in records] == ["Alice"]
    assert state.admitted is not None and state.admitted.pupil.first_name == "Alice"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(range(6)), st.data())
def test_resolving_never_gives_the_other_persons_guardian_an_account(
    order: list[int], data: st.DataObject
) -> None:
    """Whichever of Alice and Bob came first, in any delivery order: once the INE is resolved
    for Alice, Bob's guardian has an account only if it had one before (Bob's entry written
    before Alice came). A record found to be another person leaves no guardian behind."""
    events = [*families(), alice(), bob()]
    world = World()
    run_to_quiescence(
        with_causes([events[i] for i in order]),
        ctx=CTX,
        world=world,
        choose=lambda n: data.draw(st.integers(0, n - 1)),
        redeliver=True,
    )
    had_account = person(world.directory, G2) is not None
    run(world, start=200, inputs=(resolve("P1"),))
    assert (person(world.directory, G2) is not None) == had_account
    assert set(world.entities[PUPIL].ine_held) == {"pupil:P2"}
    if not had_account:
        assert G2 not in world.entities[PUPIL].named_guardians


def test_bob_first_then_resolved_for_alice_leaves_paul_without_account() -> None:
    """The case found on the real services with school-by-school loading: Bob's record drives
    the INE for a moment (no login yet), Alice's is held, the operator gives the INE to Alice."""
    world = World()
    run_to_quiescence(with_causes([*families(), bob(), alice()]), ctx=CTX, world=world)
    assert person(world.directory, PUPIL) is None and person(world.directory, G2) is None
    run(world, start=200, inputs=(resolve("P1"),))
    entry = person(world.directory, PUPIL)
    assert entry is not None and entry["givenName"] == ("Alice",)
    assert person(world.directory, G1) is not None
    assert person(world.directory, G2) is None

"""decide(): one entity, one input, one decision."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.entities import (
    ChildInfo,
    EntityInput,
    GroupSpec,
    LinkSet,
    LoginAssigned,
    LoginRequested,
    RecordSet,
)
from schemas.feed import FeedEvent, HoldReason
from schemas.state import EntityState
from sync import dit, ids
from sync.ops import AddEntry, DeleteEntry, ModifyEntry
from sync.reconcile import Context, ContractError, Decision, decide
from sync.routing import route
from tests.unit.core_factories import (
    BASE,
    NS,
    T0,
    cause,
    guardian,
    member_link,
    pupil,
    school,
    staff,
)

CTX = Context(base_dn=BASE, namespace=NS)
ALICE = dict(first="Alice", ine="1234567890A", guardians=["G1"])


def record_set(event: FeedEvent, offset: int) -> RecordSet:
    return route(None, event, cause(offset), NS).inputs[-1]


def removal(event: FeedEvent, offset: int) -> RecordSet:
    return record_set(event, 0).model_copy(
        update={
            "version": None,
            "pupil": None,
            "guardian": None,
            "staff": None,
            "school": None,
            "cause": cause(offset),
        }
    )


def assigned(entity_id: str, login: str, offset: int = 99) -> LoginAssigned:
    return LoginAssigned(entity_id=entity_id, cause=cause(offset), login=login)


def step(state: EntityState | None, inp: EntityInput) -> Decision:
    """decide, checking that the same input delivered again changes nothing.

    A repeated input may only send again what the first one sent (a login request of a person
    still without login, an allocator's answer), never anything new.
    """
    decision = decide(state, inp, CTX)
    again = decide(decision.state, inp, CTX)
    assert again.ops == () and again.audits == ()
    assert all(e in decision.emits for e in again.emits)
    assert again.state == decision.state
    assert len(decision.audits) == len(decision.ops)
    return decision


def written_pupil() -> tuple[EntityState, RecordSet]:
    inp = record_set(pupil("P1", **ALICE), 1)
    first = step(None, inp)
    return step(first.state, assigned(inp.entity_id, "alice.martin")).state, inp


# ---------------------------------------------------------------- pupils and logins


def test_admitted_pupil_asks_for_a_login_and_links_nobody_before_its_entry() -> None:
    inp = record_set(pupil("P1", **ALICE), 1)
    decision = step(None, inp)
    assert decision.ops == ()
    (request,) = decision.emits  # no link: its DN would name no entry
    assert isinstance(request, LoginRequested)
    assert request.entity_id == ids.login_allocator_id(NS, "alice.martin")
    assert (request.person_id, request.base) == (inp.entity_id, "alice.martin")
    assert request.cause.offset == 1 and request.cause.rule == "login.request"
    assert decision.state.login_requested and decision.state.login is None
    assert decision.state.outgoing == {}


def test_a_guardian_named_before_the_entry_hears_of_it_as_former() -> None:
    """Links wait for the entry; a guardian an earlier record named still gets its child link
    (``former``: it keeps the account it gets, with no child and no group), so that whether it
    has an account does not depend on when the pupil's login came."""
    first = step(None, record_set(pupil("P1", **ALICE), 1))
    second = step(first.state, record_set(pupil("P1", **{**ALICE, "guardians": ["G2"]}), 2))
    pid = first.state.entity_id
    g1, g2 = ids.guardian_id(NS, "G1"), ids.guardian_id(NS, "G2")
    assert second.state.named_guardians == tuple(sorted((g1, g2)))
    decision = step(second.state, assigned(pid, "alice.martin"))
    children = {
        e.entity_id: e.child
        for e in decision.emits
        if isinstance(e, LinkSet) and e.relation == "child"
    }
    assert children[g1] == ChildInfo(former=True)
    assert children[g2] is not None and not children[g2].former


def test_login_assignment_writes_the_entry_once() -> None:
    inp = record_set(pupil("P1", **ALICE), 1)
    first = step(None, inp)
    decision = step(first.state, assigned(inp.entity_id, "alice.martin"))
    (op,) = decision.ops
    assert isinstance(op, AddEntry) and op.dn == dit.people_dn(inp.entity_id, BASE)
    assert op.attributes["ENTPersonLogin"] == ("alice.martin",)
    # Its guardians are named once they answer (they have an entry): none yet.
    assert "ENTEleveParents" not in op.attributes
    (event,) = decision.audits
    assert event.action == "add" and event.entity_kind == "pupil"
    assert decision.state.applied == dict(op.attributes)
    # The entry is decided: the links go out with it, and only now.
    links = decision.emits
    assert all(isinstance(link, LinkSet) and link.present for link in links)
    targets = {link.entity_id for link in links}
    assert targets == {
        ids.guardian_id(NS, "G1"),
        ids.group_id(NS, GroupSpec(school_jointure="S1", profile="pupils")),
        ids.group_id(NS, GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A")),
    }
    child_link = next(
        link for link in links if isinstance(link, LinkSet) and link.relation == "child"
    )
    assert child_link.child == ChildInfo(school_jointure="S1", classes=(("S1", "CP-A", "CP A"),))
    again = step(decision.state, assigned(inp.entity_id, "alice.martin"))
    assert again.ops == () and again.emits == ()


def test_login_never_changes() -> None:
    state, inp = written_pupil()
    assert step(state, assigned(inp.entity_id, "other.login")).ops == ()
    renamed = record_set(pupil("P1", **{**ALICE, "first": "Alicia"}), 5)
    decision = step(state, renamed)
    (op,) = decision.ops
    assert isinstance(op, ModifyEntry)
    assert set(op.changes) == {"cn", "givenName"}
    assert op.desired["ENTPersonLogin"] == ("alice.martin",)
    assert not any(isinstance(e, LoginRequested) for e in decision.emits)


def test_unchanged_record_from_a_new_message_changes_nothing() -> None:
    state, inp = written_pupil()
    same = inp.model_copy(update={"cause": cause(50)})
    decision = decide(state, same, CTX)
    assert decision.ops == () and decision.emits == ()


def test_held_pupil_never_admitted_gets_nothing() -> None:
    held = pupil("P1", **ALICE, held=[HoldReason.NO_CLASS])
    decision = step(None, record_set(held, 1))
    assert decision.ops == () and decision.emits == ()
    assert decision.state.applied is None and decision.state.outgoing == {}


def test_written_pupil_becoming_held_keeps_entry_and_links() -> None:
    state, _ = written_pupil()
    held = pupil("P1", **{**ALICE, "first": "Changed"}, held=[HoldReason.NO_CLASS], classes=[])
    decision = step(state, record_set(held, 5))
    assert decision.ops == () and decision.emits == ()
    assert decision.state.applied == state.applied
    assert decision.state.outgoing == state.outgoing


def test_admitted_then_held_before_login_is_written_from_the_admitted_record() -> None:
    # Whether the login came before or after the held record must not matter.
    inp = record_set(pupil("P1", **ALICE), 1)
    first = step(None, inp)
    held = step(first.state, record_set(pupil("P1", **ALICE, held=[HoldReason.NO_CLASS]), 2))
    decision = step(held.state, assigned(inp.entity_id, "alice.martin"))
    written, _ = written_pupil()
    assert decision.state.applied == written.applied


def test_pupil_disappears_and_comes_back() -> None:
    state, inp = written_pupil()
    gone = step(state, removal(pupil("P1", **ALICE), 10))
    (op,) = gone.ops
    assert isinstance(op, ModifyEntry)
    assert op.changes == {
        "entsyncAccountState": ("disappeared",),
        "entsyncDisappearedAt": ((T0 + timedelta(seconds=10)).strftime("%Y%m%d%H%M%SZ"),),
    }
    assert gone.emits == ()  # links are kept
    assert gone.state.account_state == "disappeared"
    assert gone.state.disappeared_at == T0 + timedelta(seconds=10)
    back = step(gone.state, record_set(pupil("P1", **ALICE), 11))
    (op,) = back.ops
    assert isinstance(op, ModifyEntry) and op.dn == dit.people_dn(inp.entity_id, BASE)
    assert op.changes == {"entsyncAccountState": ("active",), "entsyncDisappearedAt": ()}
    assert back.state.applied == state.applied
    assert back.state.disappeared_at is None


def test_pupil_known_from_two_jointures_is_driven_by_the_latest() -> None:
    state, inp = written_pupil()
    moved = record_set(pupil("P2", **ALICE, school_jointure="S2", classes=[("CE1", "CE1")]), 5)
    assert moved.entity_id == inp.entity_id
    decision = step(state, moved)
    (op,) = decision.ops
    assert isinstance(op, ModifyEntry)
    assert op.desired["ENTPersonJointure"] == ("ONDE$P2",)
    assert op.desired["ENTPersonStructRattach"] == (dit.school_dn("S2", BASE),)
    assert op.desired["ENTPersonLogin"] == ("alice.martin",)
    old_class = ids.group_id(
        NS, GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A")
    )
    retracted = [e for e in decision.emits if isinstance(e, LinkSet) and not e.present]
    assert old_class in {e.entity_id for e in retracted}
    # An older record from the first school arriving late does not take over.
    late = record_set(pupil("P1", **{**ALICE, "first": "Late"}), 3)
    assert step(decision.state, late).ops == ()
    # The newer school's record removed: the first school's record drives again.
    back = step(decision.state, removal(pupil("P2", **ALICE), 6))
    (op,) = back.ops
    assert isinstance(op, ModifyEntry)
    assert op.desired["ENTPersonJointure"] == ("ONDE$P1",)


def test_stale_record_is_ignored() -> None:
    state, _ = written_pupil()
    newer = step(state, record_set(pupil("P1", **{**ALICE, "first": "New"}), 20)).state
    older = record_set(pupil("P1", **{**ALICE, "first": "Old"}), 10)
    assert decide(newer, older, CTX).state == newer


# ---------------------------------------------------------------- guardians


def guardian_state(*, with_child: bool = True) -> tuple[EntityState, str]:
    inp = record_set(guardian("G1", first="Anne"), 1)
    state = step(None, inp).state
    if with_child:
        state = step(state, child_link(inp.entity_id, "el-aaaaaaaaaaaaaaaa", 2)).state
        state = step(state, assigned(inp.entity_id, "anne.martin")).state
    return state, inp.entity_id


def child_link(guardian_id: str, pupil_id: str, offset: int, present: bool = True) -> LinkSet:
    return LinkSet(
        entity_id=guardian_id,
        cause=cause(offset),
        relation="child",
        member_id=pupil_id,
        present=present,
        child=ChildInfo(school_jointure="S1", classes=(("S1", "CP-A", "CP A"),))
        if present
        else None,
    )


def test_guardian_without_child_gets_nothing() -> None:
    state, _ = guardian_state(with_child=False)
    assert state.applied is None and not state.login_requested and state.outgoing == {}


def test_guardian_with_child_before_record_waits_for_the_record() -> None:
    gid = ids.guardian_id(NS, "G1")
    decision = step(None, child_link(gid, "el-aaaaaaaaaaaaaaaa", 1))
    assert decision.ops == () and decision.emits == ()
    decision = step(decision.state, record_set(guardian("G1", first="Anne"), 2))
    # A login first; no link before the entry.
    assert [type(e) for e in decision.emits] == [LoginRequested]
    decision = step(decision.state, assigned(gid, "anne.x"))
    assert [type(o) for o in decision.ops] == [AddEntry]
    kinds = [type(e) for e in decision.emits]
    assert kinds.count(LinkSet) == 3  # two groups, and 'parent' back to the child


def test_guardian_is_written_with_children_and_groups() -> None:
    state, _ = guardian_state()
    assert state.applied is not None
    assert "ENTAuxPersRelEleve" in state.applied["objectClass"]
    assert state.applied["ENTAuxPersRelEleveEleve"] == (dit.people_dn("el-aaaaaaaaaaaaaaaa", BASE),)
    assert set(state.outgoing) == {
        "parent|el-aaaaaaaaaaaaaaaa",
        f"member|{ids.group_id(NS, GroupSpec(school_jointure='S1', profile='guardians'))}",
        "member|"
        + ids.group_id(NS, GroupSpec(school_jointure="S1", profile="guardians", class_code="CP-A")),
    }


def test_second_child_adds_a_dn() -> None:
    state, gid = guardian_state()
    decision = step(state, child_link(gid, "el-bbbbbbbbbbbbbbbb", 5))
    (op,) = decision.ops
    assert isinstance(op, ModifyEntry) and set(op.changes) == {"ENTAuxPersRelEleveEleve"}
    (back,) = decision.emits  # same groups; the new child learns its guardian has an entry
    assert isinstance(back, LinkSet) and back.relation == "parent" and back.present
    assert (back.entity_id, back.member_id) == ("el-bbbbbbbbbbbbbbbb", gid)


def test_guardian_losing_every_child_keeps_the_entry_without_the_class() -> None:
    state, gid = guardian_state()
    decision = step(state, child_link(gid, "el-aaaaaaaaaaaaaaaa", 5, present=False))
    (op,) = decision.ops
    assert isinstance(op, ModifyEntry)
    assert op.changes["ENTAuxPersRelEleveEleve"] == ()
    assert "ENTAuxPersRelEleve" not in op.changes["objectClass"]
    assert {type(e) for e in decision.emits} == {LinkSet}
    assert all(isinstance(e, LinkSet) and not e.present for e in decision.emits)
    assert decision.state.outgoing == {}


def test_guardian_losing_its_only_child_before_login_still_gets_an_entry() -> None:
    gid = ids.guardian_id(NS, "G1")
    state = step(None, record_set(guardian("G1", first="Anne"), 1)).state
    state = step(state, child_link(gid, "el-aaaaaaaaaaaaaaaa", 2)).state
    state = step(state, child_link(gid, "el-aaaaaaaaaaaaaaaa", 3, present=False)).state
    decision = step(state, assigned(gid, "anne.martin"))
    (op,) = decision.ops
    assert isinstance(op, AddEntry)
    assert "ENTAuxPersRelEleve" not in op.attributes["objectClass"]


# ---------------------------------------------------------------- staff, schools, groups


def test_staff_with_academic_login_claims_it_and_is_written_once_granted() -> None:
    inp = record_set(staff("T1", first="Paul", academic_login="ppetit", schools=["S2"]), 1)
    decision = step(None, inp)
    assert decision.ops == ()  # the login allocation answers first (sync.claims)
    assert not any(isinstance(e, LoginRequested) for e in decision.emits)
    (claim,) = [e for e in decision.emits if isinstance(e, LinkSet) and e.relation == "claim"]
    assert claim.entity_id == ids.login_allocator_id(NS, "ppetit") and claim.login == "ppetit"
    assert [e for e in decision.emits if e is not claim] == []  # no group before an entry
    allocator = step(None, claim)
    (grant,) = allocator.emits
    assert isinstance(grant, LinkSet) and grant.login_status == "granted"
    written = step(decision.state, grant)
    (op,) = written.ops
    assert isinstance(op, AddEntry) and op.attributes["ENTPersonLogin"] == ("ppetit",)
    groups = {e.entity_id for e in written.emits}
    assert groups == {
        ids.group_id(NS, GroupSpec(school_jointure=s, profile="teachers")) for s in ("S1", "S2")
    }


def test_staff_without_academic_login_gets_one_allocated() -> None:
    inp = record_set(staff("T1", first="Paul", teacher=False), 1)
    decision = step(None, inp)
    assert decision.ops == ()
    (request,) = decision.emits
    assert isinstance(request, LoginRequested) and request.base == "paul.bernard"
    decision = step(decision.state, assigned(inp.entity_id, "paul.bernard"))
    (link,) = decision.emits  # its group, once it has an entry
    assert isinstance(link, LinkSet) and link.group is not None
    assert link.group.profile == "staff"


def test_school_is_written_from_its_record() -> None:
    inp = record_set(school("S1", name="Ecole A"), 1)
    decision = step(None, inp)
    (op,) = decision.ops
    assert isinstance(op, AddEntry) and op.dn == dit.school_dn("S1", BASE)
    renamed = step(decision.state, record_set(school("S1", name="Ecole B"), 2))
    (op,) = renamed.ops
    assert isinstance(op, ModifyEntry) and op.changes == {"ENTStructureNomCourant": ("Ecole B",)}
    gone = step(renamed.state, removal(school("S1"), 3))
    assert gone.ops == ()  # schools are not removed by the synchronizer


def test_group_lives_while_it_has_members() -> None:
    spec = GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A", class_label="CP A")
    first = step(None, member_link(spec, "el-aaaaaaaaaaaaaaaa", 1))
    (op,) = first.ops
    assert isinstance(op, AddEntry) and op.dn == dit.group_dn(spec, BASE)
    second = step(first.state, member_link(spec, "el-bbbbbbbbbbbbbbbb", 2))
    (op,) = second.ops
    assert isinstance(op, ModifyEntry) and set(op.changes) == {"member"}
    third = step(second.state, member_link(spec, "el-aaaaaaaaaaaaaaaa", 3, present=False))
    last = step(third.state, member_link(spec, "el-bbbbbbbbbbbbbbbb", 4, present=False))
    assert last.ops == (DeleteEntry(dn=dit.group_dn(spec, BASE)),)
    assert last.audits[0].action == "delete"
    assert last.state.applied is None


def test_group_label_follows_the_latest_link() -> None:
    spec = GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A", class_label="CP A")
    state = step(None, member_link(spec, "el-aaaaaaaaaaaaaaaa", 1)).state
    relabelled = spec.model_copy(update={"class_label": "CP Azur"})
    decision = step(state, member_link(relabelled, "el-bbbbbbbbbbbbbbbb", 2))
    (op,) = decision.ops
    assert isinstance(op, ModifyEntry)
    assert op.changes["description"] == ("pupils of class CP Azur, school S1",)


# ---------------------------------------------------------------- allocator


def login_request(person: str, base: str = "jean.dupont", offset: int = 1) -> LoginRequested:
    return LoginRequested(
        entity_id=ids.login_allocator_id(NS, base), cause=cause(offset), person_id=person, base=base
    )


def test_allocator_answers_each_person_once() -> None:
    first = step(None, login_request("el-a"))
    (answer,) = first.emits
    assert isinstance(answer, LoginAssigned)
    assert (answer.entity_id, answer.login) == ("el-a", "jean.dupont")
    assert answer.cause.rule == "login.assign"
    second = step(first.state, login_request("re-b", offset=2))
    (answer,) = second.emits
    assert isinstance(answer, LoginAssigned) and answer.login == "jean.dupont2"
    assert second.state.allocations == {"el-a": "jean.dupont", "re-b": "jean.dupont2"}
    assert first.ops == second.ops == ()


def test_allocator_answers_a_repeated_request_with_the_same_login() -> None:
    """A lost answer (or request) is healed by asking again: same login, nothing allocated."""
    state = step(step(None, login_request("el-a")).state, login_request("re-b", offset=2)).state
    for person, login in (("el-a", "jean.dupont"), ("re-b", "jean.dupont2")):
        again = decide(state, login_request(person, offset=50), CTX)
        assert again.state == state and again.ops == ()
        (answer,) = again.emits
        assert isinstance(answer, LoginAssigned)
        assert (answer.entity_id, answer.login) == (person, login)
        assert answer.cause.offset == 50 and answer.cause.rule == "login.assign"


def test_person_without_login_asks_again_at_each_input() -> None:
    inp = record_set(pupil("P1", **ALICE), 1)
    first = step(None, inp)
    renamed = step(first.state, record_set(pupil("P1", **ALICE, birth=None), 2))
    requests = [e for e in renamed.emits if isinstance(e, LoginRequested)]
    assert [(r.person_id, r.base, r.cause.offset) for r in requests] == [
        (inp.entity_id, "alice.martin", 2)
    ]
    # The answer to either request gives the entry; a second answer changes nothing.
    written = step(renamed.state, assigned(inp.entity_id, "alice.martin"))
    assert len(written.ops) == 1
    late = decide(written.state, assigned(inp.entity_id, "alice.martin", offset=120), CTX)
    assert late.ops == () and late.emits == () and late.state == written.state


# ---------------------------------------------------------------- contracts and state


def test_contract_violations_are_rejected_without_values() -> None:
    pupil_input = record_set(pupil("P1", **ALICE), 1)
    with pytest.raises(ContractError):
        decide(None, pupil_input.model_copy(update={"entity_kind": "guardian"}), CTX)
    with pytest.raises(ContractError):
        decide(None, pupil_input.model_copy(update={"pupil": None}), CTX)
    school_state = step(None, record_set(school("S1"), 1)).state
    with pytest.raises(ContractError):
        decide(school_state, pupil_input, CTX)
    with pytest.raises(ContractError):
        decide(None, child_link(ids.school_id(NS, "S1"), "el-a", 1), CTX)
    spec = GroupSpec(school_jointure="S1", profile="pupils")
    wrong_group = member_link(spec, "el-a", 1).model_copy(
        update={"entity_id": ids.group_id(NS, spec.model_copy(update={"profile": "staff"}))}
    )
    with pytest.raises(ContractError):
        decide(None, wrong_group, CTX)
    with pytest.raises(ContractError) as error:
        decide(None, login_request("el-a").model_copy(update={"base": "other.base"}), CTX)
    assert "other.base" not in str(error.value)
    with pytest.raises(ContractError):
        decide(None, assigned(ids.school_id(NS, "S1"), "x"), CTX)


def test_state_round_trips_through_json() -> None:
    state, _ = written_pupil()
    guardian_, _ = guardian_state()
    spec = GroupSpec(school_jointure="S1", profile="pupils")
    group = step(None, member_link(spec, "el-a", 1)).state
    allocator = step(None, login_request("el-a")).state
    for value in (state, guardian_, group, allocator):
        assert EntityState.model_validate_json(value.model_dump_json()) == value

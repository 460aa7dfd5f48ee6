"""No dangling reference: every DN entsync writes names an entry (issue 19, item 4)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.entities import GroupSpec
from schemas.feed import FeedEvent, HoldReason
from schemas.ldap_schema import shipped_schema
from sync import dit, ids, written
from sync.lifecycle import Policy
from sync.links import refused_write
from sync.ops import AddEntry, DirectoryOp, ModifyEntry
from sync.reconcile import Context
from sync.references import (
    CLASS_ATTRIBUTES,
    DN_ATTRIBUTES,
    PERSON_ATTRIBUTES,
    Reference,
    dangling,
    normalized,
    references,
)
from sync.simulator import Directory, World, apply_op, run_to_quiescence, sweep_world
from tests.unit.core_factories import (
    BASE,
    NS,
    T0,
    cause,
    deleted,
    guardian,
    pupil,
    school,
    with_causes,
)
from tests.unit.test_pipeline_properties import worlds

CTX = Context(base_dn=BASE, namespace=NS)
DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
INE = "1234567890A"


def _dn(entity_id: str) -> str:
    return dit.people_dn(entity_id, BASE)


def _pupil_dn() -> str:
    return _dn(ids.entity_id(NS, "pupil", f"ine:{INE}"))


def _guardian_dn(jointure: str) -> str:
    return _dn(ids.guardian_id(NS, jointure))


# ---------------------------------------------------------------- which attributes are references


def test_the_dn_attributes_are_every_dn_valued_attribute_entsync_writes() -> None:
    schema = shipped_schema()
    _, names = written.written_names(written.written_shapes())
    by_syntax = {n for n in names if schema.syntax(n) == DN_SYNTAX}
    # member is core schema (groupOfNames): DN syntax too, not in our files.
    assert by_syntax | {"member"} == DN_ATTRIBUTES
    assert names >= CLASS_ATTRIBUTES | DN_ATTRIBUTES
    assert PERSON_ATTRIBUTES <= DN_ATTRIBUTES


def test_references_read_dns_and_class_values() -> None:
    school_dn = dit.school_dn("S1", BASE)
    entry = {
        "Member": ("uid=a,ou=people,dc=x",),
        "ENTEleveClasses": (f"{school_dn}$CP", "$"),
        "cn": ("uid=not-a-reference",),
    }
    found = set(references("cn=g", entry))
    assert found == {
        Reference("cn=g", "member", "uid=a,ou=people,dc=x"),
        Reference("cn=g", "ENTEleveClasses", school_dn),
    }
    assert normalized("UID=A, ou=People,DC=x") == normalized("uid=a,ou=people,dc=x")
    directory = {"uid=a, ou=people, dc=x": {}, "cn=g": entry}
    assert dangling(directory) == [Reference("cn=g", "ENTEleveClasses", school_dn)]
    assert dangling(directory, PERSON_ATTRIBUTES) == []


# ---------------------------------------------------------------- the rules, through the pipeline


def _introduced(directory: Directory, ops: Iterable[DirectoryOp]) -> list[Reference]:
    """References to people each op writes (not those it leaves as they were) that name no entry
    at the time it is applied; ``directory`` (copied) is the state before the first op.

    People only: a school's DN may be written before the school's entry (its file may come
    later, or its record be held for its SIREN): see the README on references."""
    current = {dn: dict(entry) for dn, entry in directory.items()}
    found: list[Reference] = []
    for op in ops:
        before = current.get(op.dn, {})
        apply_op(current, op)
        if not isinstance(op, AddEntry | ModifyEntry):
            continue
        written_now = op.attributes if isinstance(op, AddEntry) else op.changes
        had = {(r.attribute, normalized(r.target)) for r in references(op.dn, before)}
        present = {normalized(dn) for dn in current}
        found.extend(
            ref
            for ref in references(op.dn, written_now)
            if ref.attribute in PERSON_ATTRIBUTES
            and (ref.attribute, normalized(ref.target)) not in had
            and normalized(ref.target) not in present
        )
    return found


def _run(events: list[FeedEvent], world: World | None = None, start: int = 0) -> Directory:
    before = dict(world.directory) if world is not None else {}
    result = run_to_quiescence(with_causes(events, start=start), ctx=CTX, world=world)
    assert _introduced(before, result.ops) == []
    return result.directory


def test_a_guardian_in_no_file_is_not_named_until_it_arrives() -> None:
    first = World()
    directory = _run(
        [
            school("S1"),
            guardian("G1", first="Anne"),
            pupil("P1", first="Lea", ine=INE, guardians=["G1", "G9"]),
        ],
        first,
    )
    assert directory[_pupil_dn()]["ENTEleveParents"] == (_guardian_dn("G1"),)
    assert _guardian_dn("G9") not in directory
    assert dangling(directory) == []
    # G9 arrives in a later file: its entry, and the pupil names it.
    directory = _run([guardian("G9", first="Zoe")], first, start=10)
    assert set(directory[_pupil_dn()]["ENTEleveParents"]) == {
        _guardian_dn("G1"),
        _guardian_dn("G9"),
    }
    assert directory[_guardian_dn("G9")]["ENTAuxPersRelEleveEleve"] == (_pupil_dn(),)
    assert dangling(directory) == []


def test_a_guardian_whose_only_child_has_no_entry_gets_none_and_is_in_no_group() -> None:
    directory = _run(
        [
            school("S1"),
            guardian("G1", first="Anne"),
            pupil("P1", first="Lea", guardians=["G1"], held=[HoldReason.INE_MISSING]),
        ]
    )
    assert _guardian_dn("G1") not in directory
    assert dangling(directory) == []


def test_references_go_when_the_guardian_is_predeleted_then_deleted() -> None:
    world = World()
    _run(
        [
            school("S1"),
            guardian("G1", first="Anne"),
            pupil("P1", first="Lea", ine=INE, guardians=["G1"]),
        ],
        world,
    )
    _run([deleted("guardian", "G1")], world, start=10)
    guardians_group = dit.group_dn(GroupSpec(school_jointure="S1", profile="guardians"), BASE)
    assert world.directory[_guardian_dn("G1")]["entsyncAccountState"] == ("disappeared",)
    assert world.directory[_pupil_dn()]["ENTEleveParents"] == (_guardian_dn("G1"),)
    policy = Policy(default_predelete=timedelta(days=1), default_delete=timedelta(days=1))
    for days in (2, 4):  # pre-deleted: out of every perimeter; then deleted
        before = dict(world.directory)
        when = T0 + timedelta(days=days)
        result = sweep_world(world, when, policy=policy, cause=cause(50 + days, at=when), ctx=CTX)
        assert _introduced(before, result.ops) == []
        assert "ENTEleveParents" not in world.directory[_pupil_dn()]
        assert guardians_group not in world.directory  # its only member left
        assert dangling(world.directory) == []
    assert _guardian_dn("G1") not in world.directory


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_no_reference_ever_names_a_missing_entry(
    events: list[FeedEvent], data: st.DataObject
) -> None:
    """Whatever the order of inputs (guardians in no file, held pupils, deletions...), no op
    writes a DN of an entry that does not exist then, and none is left at the end, nor after the
    sweeper pre-deletes and deletes the people who left."""

    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    world = World()
    result = run_to_quiescence(with_causes(events), ctx=CTX, world=world, choose=choose)
    assert _introduced({}, result.ops) == []
    assert dangling(world.directory) == []  # every school is in the worlds' files
    policy = Policy(default_predelete=timedelta(days=1), default_delete=timedelta(days=1))
    for days in (2, 4):
        before = dict(world.directory)
        when = T0 + timedelta(days=days)
        swept = sweep_world(world, when, policy=policy, cause=cause(900 + days, at=when), ctx=CTX)
        assert _introduced(before, swept.ops) == []
        assert dangling(world.directory) == []


def test_a_refused_add_withdraws_the_links_sent_with_it() -> None:
    """The directory refused a person's entry (the shell's news): the links that went out with
    the add are withdrawn, and sent again with the next try."""
    world = World()
    _run([school("S1"), pupil("P1", first="Lea", ine=INE, guardians=["G1"])], world)
    pid = ids.entity_id(NS, "pupil", f"ine:{INE}")
    decided = world.entities[pid]
    assert decided.applied is not None and decided.outgoing
    state, withdrawn = refused_write(None, decided, cause(70))
    assert state.applied is None and state.outgoing == {}
    assert {(w.entity_id, w.present) for w in withdrawn} == {
        (ids.entity_id(NS, "guardian", "G1"), False),
        *((g, False) for g in (k.partition("|")[2] for k in decided.outgoing if "member" in k)),
    }
    # A refused modify leaves the entry, and its links, as they were.
    same, none = refused_write(decided, decided, cause(71))
    assert same == decided and none == ()

"""LinkBatch: the links to one entity packed into one message, decided as if one by one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.audit import DirectoryChanged
from schemas.entities import (
    ChildInfo,
    EntityInput,
    EntityMessage,
    GroupSpec,
    LinkBatch,
    LinkSet,
    LoginAssigned,
)
from schemas.state import EntityState
from sync import ids
from sync.coalesce import coalesce
from sync.links import pack_links
from sync.ops import DeleteEntry, DirectoryOp
from sync.reconcile import Context, ContractError, Decision, decide
from sync.routing import route
from sync.simulator import Directory, apply_op
from tests.unit.core_factories import BASE, NS, cause, guardian, member_link

CTX = Context(base_dn=BASE, namespace=NS)
CLASS = GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A", class_label="CP A")
CLASS_ID = ids.group_id(NS, CLASS)
MEMBERS = [f"el-{c * 16}" for c in "abcdef"]


def link(member: str, offset: int, present: bool = True, spec: GroupSpec = CLASS) -> LinkSet:
    return member_link(spec, member, offset, present)


def one_by_one(state: EntityState | None, inputs: list[LinkSet]) -> tuple[EntityState, Decision]:
    """Each link decided on its own; the ops and audits merged as the shell does per batch."""
    ops: list[DirectoryOp] = []
    audits: list[DirectoryChanged] = []
    current = state
    for inp in inputs:
        decision = decide(current, inp, CTX)
        current = decision.state
        ops.extend(decision.ops)
        audits.extend(decision.audits)
    merged = coalesce(list(zip(ops, audits, strict=True)))
    assert current is not None
    return current, Decision(
        current, tuple(op for op, _ in merged), (), tuple(a for _, a in merged)
    )


def written(directory: Directory, decision: Decision) -> Directory:
    result = {dn: dict(entry) for dn, entry in directory.items()}
    for op in decision.ops:
        if isinstance(op, DeleteEntry) and op.dn not in result:
            continue  # merged ops: an add then a delete is a delete (see sync.coalesce)
        apply_op(result, op)
    return result


links = st.lists(
    st.tuples(st.sampled_from(MEMBERS), st.booleans(), st.sampled_from(["CP A", "CP Azur"])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(before=links, batch=links)
def test_a_batch_ends_where_its_links_one_by_one_end(
    before: list[tuple[str, bool, str]], batch: list[tuple[str, bool, str]]
) -> None:
    def made(items: list[tuple[str, bool, str]], start: int) -> list[LinkSet]:
        return [
            link(m, start + i, present, CLASS.model_copy(update={"class_label": label}))
            for i, (m, present, label) in enumerate(items)
        ]

    state, first = one_by_one(None, made(before, 0))
    directory = written({}, first)
    inputs = made(batch, 100)
    expected_state, expected = one_by_one(state, inputs)
    packed = LinkBatch(entity_id=CLASS_ID, cause=inputs[-1].cause, links=tuple(inputs))
    decision = decide(state, packed, CTX)
    assert decision.state == expected_state
    assert written(directory, decision) == written(directory, expected)
    assert len(decision.ops) == len(decision.audits) <= 1
    # Delivered again (a re-read after a crash): nothing more.
    again = decide(decision.state, packed, CTX)
    assert again.ops == () and again.audits == () and again.state == decision.state


def test_a_batch_audits_one_change_with_the_earlier_causes_merged() -> None:
    inputs = [link(m, i) for i, m in enumerate(MEMBERS[:3], start=1)]
    packed = LinkBatch(entity_id=CLASS_ID, cause=inputs[-1].cause, links=tuple(inputs))
    decision = decide(None, packed, CTX)
    (audit,) = decision.audits
    assert audit.action == "add" and audit.cause == inputs[-1].cause
    assert [c.offset for c in audit.merged_causes] == [1, 2]
    # A link that changes nothing is no cause of the change.
    repeated = (inputs[0], link(MEMBERS[3], 4), inputs[0])
    decision = decide(
        decision.state, LinkBatch(entity_id=CLASS_ID, cause=cause(1), links=repeated), CTX
    )
    (audit,) = decision.audits
    assert audit.action == "modify" and audit.cause.offset == 4 and audit.merged_causes == ()


def test_a_guardian_settles_its_children_once() -> None:
    record = route(None, guardian("G1", first="Anne"), cause(1), NS).inputs[-1]
    gid = record.entity_id
    state = decide(None, record, CTX).state
    state = decide(state, LoginAssigned(entity_id=gid, cause=cause(2), login="anne.m"), CTX).state
    children = [
        LinkSet(
            entity_id=gid,
            cause=cause(10 + i),
            relation="child",
            member_id=member,
            present=True,
            child=ChildInfo(school_jointure="S1", classes=(("S1", f"C{i}", f"C {i}"),)),
        )
        for i, member in enumerate(MEMBERS[:3])
    ]
    expected_state, expected = one_by_one(state, children)
    decision = decide(state, LinkBatch(entity_id=gid, cause=cause(12), links=tuple(children)), CTX)
    assert decision.state == expected_state
    assert written({}, decision) == written({}, expected)
    # Its group links: the net ones, each group once; and 'parent' back to each child.
    targets = [e.entity_id for e in decision.emits]
    assert len(targets) == len(set(targets)) == 4 + 3  # the school's and three classes' groups
    assert {e.entity_id for e in decision.emits if e.relation == "parent"} == set(MEMBERS[:3])


def test_a_batch_of_links_to_another_entity_is_refused() -> None:
    other = GroupSpec(school_jointure="S2", profile="pupils")
    packed = LinkBatch(entity_id=CLASS_ID, cause=cause(2), links=(link(MEMBERS[0], 1, spec=other),))
    with pytest.raises(ContractError):
        decide(None, packed, CTX)


def _targets(inputs: list[EntityInput]) -> dict[str, list[EntityInput]]:
    """Each entity's inputs in order, with the packs unpacked."""
    by_target: dict[str, list[EntityInput]] = {}
    for inp in inputs:
        unpacked = inp.links if isinstance(inp, LinkBatch) else (inp,)
        by_target.setdefault(inp.entity_id, []).extend(unpacked)
    return by_target


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(MEMBERS[:3]), st.booleans()), max_size=40
    ),
    st.integers(2, 5),
)
def test_packing_keeps_what_each_entity_receives_in_order(
    plan: list[tuple[int, str, bool]], limit: int
) -> None:
    inputs: list[EntityInput] = []
    for i, (target, member, is_link) in enumerate(plan):
        spec = GroupSpec(school_jointure=f"S{target}", profile="pupils")
        if is_link:
            inputs.append(link(member, i, spec=spec))
        else:  # any other input to the target (in real life, not to a group)
            gid = ids.group_id(NS, spec)
            inputs.append(LoginAssigned(entity_id=gid, cause=cause(i), login=f"x{i}"))
    packed = pack_links(inputs, limit)
    assert _targets(packed) == _targets(inputs)
    assert len(packed) <= len(inputs)
    for inp in packed:
        if isinstance(inp, LinkBatch):
            assert 2 <= len(inp.links) <= limit and inp.cause == inp.links[-1].cause
    # Packs go over the wire as one message each, and come back equal.
    for inp in packed:
        assert EntityMessage.model_validate_json(EntityMessage(inp).model_dump_json()).root == inp


def test_packing_merges_the_links_of_a_batch_per_target() -> None:
    other = GroupSpec(school_jointure="S2", profile="pupils")
    inputs: list[EntityInput] = [
        link(MEMBERS[0], 1),
        link(MEMBERS[0], 2, spec=other),
        link(MEMBERS[1], 3),
        link(MEMBERS[2], 4),
    ]
    packed = pack_links(inputs)
    assert [type(p) for p in packed] == [LinkBatch, LinkSet]
    assert isinstance(packed[0], LinkBatch) and [link.cause.offset for link in packed[0].links] == [
        1,
        3,
        4,
    ]

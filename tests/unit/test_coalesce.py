"""Coalescing a batch's ops: same directory, fewer writes, one audit event per write."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause
from sync.coalesce import _merge_ops, coalesce
from sync.ops import AddEntry, DeleteEntry, DirectoryOp, ModifyEntry

Directory = dict[str, dict[str, tuple[str, ...]]]
DNS = ("cn=a,ou=groups,dc=x", "cn=b,ou=groups,dc=x", "uid=c,ou=people,dc=x")
NAMES = ("member", "description", "mail")


def _cause(i: int) -> Cause:
    return Cause(topic="t", partition=0, offset=i, rule="r", at=datetime(2026, 1, 1, tzinfo=UTC))


def _audit(i: int, op: DirectoryOp) -> DirectoryChanged:
    action = {AddEntry: "add", ModifyEntry: "modify", DeleteEntry: "delete"}[type(op)]
    names = (
        op.attributes
        if isinstance(op, AddEntry)
        else op.changes
        if isinstance(op, ModifyEntry)
        else {}
    )
    return DirectoryChanged(
        event_id=f"e{i}",
        action=action,  # type: ignore[arg-type]
        entity_id="x",
        entity_kind="group",
        dn=op.dn,
        changes=tuple(
            AttributeChange(name=n, before_digest=f"b{i}", after_digest=f"a{i}") for n in names
        ),
        cause=_cause(i),
    )


def apply(directory: Directory, op: DirectoryOp) -> None:
    if isinstance(op, AddEntry):
        assert op.dn not in directory
        directory[op.dn] = dict(op.attributes)
    elif isinstance(op, ModifyEntry):
        entry = directory[op.dn]
        for name, values in op.changes.items():
            if values:
                entry[name] = values
            else:
                entry.pop(name, None)
    else:
        del directory[op.dn]


values = st.lists(st.sampled_from(["1", "2", "3"]), min_size=1, max_size=2, unique=True).map(
    lambda v: tuple(sorted(v))
)


@st.composite
def op_sequences(draw: st.DrawFn) -> tuple[Directory, list[DirectoryOp]]:
    """Valid op sequences against a starting directory (adds only of absent entries, etc.)."""
    start: Directory = {dn: {"cn": ("x",)} for dn in DNS if draw(st.booleans())}
    model = {dn: dict(a) for dn, a in start.items()}
    ops: list[DirectoryOp] = []
    for _ in range(draw(st.integers(0, 12))):
        dn = draw(st.sampled_from(DNS))
        if dn not in model:
            attributes = {"cn": ("x",), **draw(st.dictionaries(st.sampled_from(NAMES), values))}
            op: DirectoryOp = AddEntry(dn, attributes)
        elif draw(st.integers(0, 4)) == 0:
            op = DeleteEntry(dn)
        else:
            changes = draw(
                st.dictionaries(st.sampled_from(NAMES), values | st.just(()), min_size=1)
            )
            op = ModifyEntry(dn, changes, desired={})
        ops.append(op)
        apply(model, op)
    return start, ops


@given(op_sequences())
def test_coalesced_ops_give_the_same_directory(case: tuple[Directory, list[DirectoryOp]]) -> None:
    start, ops = case
    expected = {dn: dict(a) for dn, a in start.items()}
    for op in ops:
        apply(expected, op)
    pairs = coalesce([(op, _audit(i, op)) for i, op in enumerate(ops)])
    actual = {dn: dict(a) for dn, a in start.items()}
    for op, audit in pairs:
        apply(actual, op)
        assert audit.dn == op.dn
        assert (
            audit.action
            == {AddEntry: "add", ModifyEntry: "modify", DeleteEntry: "delete"}[type(op)]
        )
    assert actual == expected
    assert len(pairs) <= len(ops)
    assert len({a.event_id for _, a in pairs}) == len(pairs)


def test_add_then_modifies_become_one_add_with_every_cause() -> None:
    dn = DNS[0]
    ops: list[DirectoryOp] = [
        AddEntry(dn, {"cn": ("x",), "member": ("1",)}),
        ModifyEntry(dn, {"member": ("1", "2")}),
        ModifyEntry(dn, {"member": ("1", "2", "3")}),
    ]
    [(op, audit)] = coalesce([(o, _audit(i, o)) for i, o in enumerate(ops)])
    assert op == AddEntry(dn, {"cn": ("x",), "member": ("1", "2", "3")})
    assert audit.action == "add"
    assert audit.cause.offset == 2
    assert [c.offset for c in audit.merged_causes] == [0, 1]


def test_add_then_delete_writes_and_audits_nothing() -> None:
    ops: list[DirectoryOp] = [AddEntry(DNS[1], {"cn": ("x",)}), DeleteEntry(DNS[1])]
    assert coalesce([(o, _audit(i, o)) for i, o in enumerate(ops)]) == []


def test_delete_then_add_stays_two_changes() -> None:
    ops: list[DirectoryOp] = [DeleteEntry(DNS[2]), AddEntry(DNS[2], {"cn": ("y",)})]
    assert [op for op, _ in coalesce([(o, _audit(i, o)) for i, o in enumerate(ops)])] == ops


def test_merged_modifies_keep_the_values_before_the_first() -> None:
    first = ModifyEntry("cn=g", {"member": ("a", "b", "c")}, previous={"member": ("a", "b")})
    then = ModifyEntry(
        "cn=g",
        {"member": ("a", "b", "c", "d"), "cn": ("y",)},
        previous={"member": ("a", "b", "c"), "cn": ("x",)},
    )
    merged = _merge_ops(first, then)
    assert isinstance(merged, ModifyEntry)
    assert merged.changes == {"member": ("a", "b", "c", "d"), "cn": ("y",)}
    assert merged.previous == {"member": ("a", "b"), "cn": ("x",)}

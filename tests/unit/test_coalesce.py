"""Coalescing ops: the same directory, fewer writes, one audit event per write naming every cause.

The shell merges each batch's ops, then the merged ops of the batches it holds back while more
input waits; a crashed run's batches are decided again and may come in other pieces. The
properties below apply the merged ops as the directory writer does (it heals instead of
failing: :mod:`connectors.ldap.healing`, driven here against an in-memory directory) and
compare with the original ops applied one by one to the directory the core believes in, from a
consistent start and after a crash that left part of the writes done.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.ldap import healing
from connectors.ldap.directory import (
    ALREADY_EXISTS,
    ATTRIBUTE_OR_VALUE_EXISTS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
)
from connectors.ldap.healing import run_steps
from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause
from sync.coalesce import MAX_CAUSES, Coalescer, Pair, _merge_ops, coalesce
from sync.ops import AddEntry, DeleteEntry, DirectoryOp, ModifyEntry

Directory = dict[str, dict[str, tuple[str, ...]]]
DNS = ("cn=a,ou=groups,dc=x", "cn=b,ou=groups,dc=x", "uid=c,ou=people,dc=x")
NAMES = ("member", "description", "mail")
ACTIONS = {AddEntry: "add", ModifyEntry: "modify", DeleteEntry: "delete"}


def _cause(i: int) -> Cause:
    return Cause(topic="t", partition=0, offset=i, rule="r", at=datetime(2026, 1, 1, tzinfo=UTC))


def _audit(i: int, op: DirectoryOp) -> DirectoryChanged:
    names = (
        op.attributes
        if isinstance(op, AddEntry)
        else op.changes
        if isinstance(op, ModifyEntry)
        else {}
    )
    return DirectoryChanged(
        event_id=f"e{i}",
        action=ACTIONS[type(op)],  # type: ignore[arg-type]
        entity_id="x",
        entity_kind="group",
        dn=op.dn,
        changes=tuple(
            AttributeChange(name=n, before_digest=f"b{i}", after_digest=f"a{i}") for n in names
        ),
        cause=_cause(i),
    )


def _pairs(ops: list[DirectoryOp]) -> list[Pair]:
    return [(op, _audit(i, op)) for i, op in enumerate(ops)]


def believed(directory: Directory, op: DirectoryOp) -> None:
    """The op on the directory the core believes in (every op valid there)."""
    if isinstance(op, AddEntry):
        assert op.dn not in directory
        directory[op.dn] = {n: v for n, v in op.attributes.items() if v}
    elif isinstance(op, ModifyEntry):
        entry = directory[op.dn]
        for name, values in op.changes.items():
            if values:
                entry[name] = values
            else:
                entry.pop(name, None)
    else:
        del directory[op.dn]


def write(directory: Directory, op: DirectoryOp) -> None:
    """The op as the directory writer carries it out on whatever the directory holds: its
    requests and healing (:func:`connectors.ldap.healing.steps`) answered as slapd would."""
    run_steps(healing.steps(op, uncertain=False), lambda request: _reply(directory, request))


def _reply(directory: Directory, request: healing.Request) -> healing.Reply:
    entry = directory.get(request.dn)
    if isinstance(request, healing.AddRequest):
        if entry is not None:
            return healing.Reply(ALREADY_EXISTS)
        directory[request.dn] = {n: tuple(sorted(v)) for n, v in request.attributes.items()}
        return healing.Reply(0)
    if entry is None:
        return healing.Reply(NO_SUCH_OBJECT)
    if isinstance(request, healing.DeleteRequest):
        del directory[request.dn]
    elif isinstance(request, healing.ReadRequest):
        return healing.Reply(0, entry={n.lower(): v for n, v in entry.items()})
    else:  # a modify: all its changes or none
        after = {n: set(v) for n, v in entry.items()}
        for name, parts in request.changes.items():
            have = after.setdefault(name, set())
            for kind, values in parts:
                if kind == healing.MODIFY_ADD:
                    if have & set(values):
                        return healing.Reply(ATTRIBUTE_OR_VALUE_EXISTS)
                    have |= set(values)
                elif kind == healing.MODIFY_DELETE:
                    if set(values) - have:
                        return healing.Reply(NO_SUCH_ATTRIBUTE)
                    have -= set(values)
                else:
                    have.clear()
                    have |= set(values)
        directory[request.dn] = {n: tuple(sorted(v)) for n, v in after.items() if v}
    return healing.Reply(0)


values = st.lists(st.sampled_from(["1", "2", "3", "4"]), min_size=1, max_size=3, unique=True).map(
    lambda v: tuple(sorted(v))
)


@st.composite
def op_sequences(draw: st.DrawFn) -> tuple[Directory, list[DirectoryOp]]:
    """Ops as the core decides them from a start: adds of absent entries, modifies naming the
    values the core last wrote (``previous``) and the whole entry it believes in (``desired``)."""
    start: Directory = {dn: {"cn": ("x",)} for dn in DNS if draw(st.booleans())}
    model = {dn: dict(a) for dn, a in start.items()}
    ops: list[DirectoryOp] = []
    for _ in range(draw(st.integers(0, 14))):
        dn = draw(st.sampled_from(DNS))
        entry = model.get(dn)
        if entry is None:
            attributes = {"cn": ("x",), **draw(st.dictionaries(st.sampled_from(NAMES), values))}
            op: DirectoryOp = AddEntry(dn, attributes)
        elif draw(st.integers(0, 4)) == 0:
            op = DeleteEntry(dn)
        else:
            changes = draw(
                st.dictionaries(st.sampled_from(NAMES), values | st.just(()), min_size=1)
            )
            previous = {n: entry[n] for n in changes if n in entry}
            after = {**entry, **changes}
            desired = {n: v for n, v in after.items() if v}
            op = ModifyEntry(dn, changes, desired=desired, previous=previous)
        ops.append(op)
        believed(model, op)
    return start, ops


def pieces(draw: st.DrawFn, ops: list[DirectoryOp]) -> list[Pair]:
    """The shell's merging: ``ops`` cut into batches, each merged; the batches cut into windows,
    each merged again (one Coalescer fed batch by batch)."""
    pairs = _pairs(ops)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(pairs) - 1)), max_size=5)))
    batches = [pairs[a:b] for a, b in zip([0, *cuts], [*cuts, len(pairs)], strict=True)]
    merged: list[Pair] = []
    window = Coalescer()
    for batch in batches:
        window.add(coalesce(batch))
        if draw(st.booleans()):  # the window is written
            merged += window.pairs()
            window = Coalescer()
    return merged + window.pairs()


@settings(max_examples=400)
@given(op_sequences(), st.data())
def test_merged_ops_give_the_directory_of_the_ops_one_by_one(
    case: tuple[Directory, list[DirectoryOp]], data: st.DataObject
) -> None:
    start, ops = case
    expected = {dn: dict(a) for dn, a in start.items()}
    for op in ops:
        believed(expected, op)
    pairs = pieces(data.draw, ops)
    actual = {dn: dict(a) for dn, a in start.items()}
    for op, audit in pairs:
        write(actual, op)
        assert audit.dn == op.dn and audit.action == ACTIONS[type(op)]
    assert actual == expected
    assert len(pairs) <= len(ops)
    assert len({a.event_id for _, a in pairs}) == len(pairs)
    # Every decided change is named once: by the event of the write that carries it out.
    named = Counter(c.offset for _, a in pairs for c in (*a.merged_causes, a.cause))
    assert named == Counter(range(len(ops)))


@settings(max_examples=400)
@given(op_sequences(), st.data())
def test_merged_ops_replayed_after_a_crash_give_the_same_directory(
    case: tuple[Directory, list[DirectoryOp]], data: st.DataObject
) -> None:
    """A run wrote part of its merged ops (any prefix of each entry's: entries are written
    concurrently) and crashed; the next run decides the same ops again, merged in other pieces,
    and writes them all over what the first one left."""
    start, ops = case
    expected = {dn: dict(a) for dn, a in start.items()}
    for op in ops:
        believed(expected, op)
    crashed = {dn: dict(a) for dn, a in start.items()}
    first = _pairs(ops) if data.draw(st.booleans()) else pieces(data.draw, ops)
    for dn in DNS:
        mine = [op for op, _ in first if op.dn == dn]
        for op in mine[: data.draw(st.integers(0, len(mine)))]:
            write(crashed, op)
    for op, _ in pieces(data.draw, ops):
        write(crashed, op)
    assert crashed == expected


@settings(max_examples=300)
@given(
    st.lists(st.sets(st.sampled_from("abcd"), min_size=1), min_size=2, max_size=6),
    st.integers(0, 6),
)
def test_a_members_list_merged_and_replayed_over_any_earlier_step_ends_right(
    steps: list[set[str]], crashed_after: int
) -> None:
    """One group's members changing step by step (value by value, see ModifyEntry.previous);
    the directory holds any of the steps (a crash) when the merged modify is written."""
    lists = [tuple(sorted(members)) for members in steps]
    dn = DNS[0]
    ops: list[DirectoryOp] = [
        ModifyEntry(
            dn,
            {"member": after},
            desired={"cn": ("x",), "member": after},
            previous={"member": before},
        )
        for before, after in pairwise(lists)
    ]
    directory: Directory = {dn: {"cn": ("x",), "member": lists[min(crashed_after, len(ops))]}}
    for op, _ in coalesce(_pairs(ops)):
        write(directory, op)
    assert directory == {dn: {"cn": ("x",), "member": lists[-1]}}


def test_add_then_modifies_become_one_add_with_every_cause() -> None:
    dn = DNS[0]
    ops: list[DirectoryOp] = [
        AddEntry(dn, {"cn": ("x",), "member": ("1",)}),
        ModifyEntry(dn, {"member": ("1", "2")}),
        ModifyEntry(dn, {"member": ("1", "2", "3")}),
    ]
    [(op, audit)] = coalesce(_pairs(ops))
    assert op == AddEntry(dn, {"cn": ("x",), "member": ("1", "2", "3")})
    assert audit.action == "add"
    assert audit.cause.offset == 2
    assert [c.offset for c in audit.merged_causes] == [0, 1]


def test_merging_in_pieces_names_the_causes_merged_before() -> None:
    dn = DNS[0]
    ops: list[DirectoryOp] = [
        AddEntry(dn, {"cn": ("x",), "member": ("1",)}),
        ModifyEntry(dn, {"member": ("1", "2")}),
        ModifyEntry(dn, {"member": ("1", "2", "3")}),
        ModifyEntry(dn, {"member": ("1", "2", "3", "4")}),
    ]
    pairs = _pairs(ops)
    window = Coalescer(coalesce(pairs[:2]))
    window.add(coalesce(pairs[2:]))
    [(op, audit)] = window.pairs()
    assert op == AddEntry(dn, {"cn": ("x",), "member": ("1", "2", "3", "4")})
    assert audit.cause.offset == 3
    assert [c.offset for c in audit.merged_causes] == [0, 1, 2]
    assert window.taken == 2 and len(window) == 1


def test_add_then_delete_is_a_delete() -> None:
    """Not nothing: a crashed run may have written the add."""
    ops: list[DirectoryOp] = [AddEntry(DNS[1], {"cn": ("x",)}), DeleteEntry(DNS[1])]
    [(op, audit)] = coalesce(_pairs(ops))
    assert op == DeleteEntry(DNS[1]) and audit.action == "delete"
    assert [c.offset for c in audit.merged_causes] == [0]


def test_an_add_is_not_merged_with_a_modify_that_removes_an_attribute() -> None:
    """Replayed over the entry the add made, a merged add would leave the attribute there."""
    dn = DNS[0]
    ops: list[DirectoryOp] = [
        AddEntry(dn, {"cn": ("x",), "mail": ("1",)}),
        ModifyEntry(dn, {"mail": ()}),
        ModifyEntry(dn, {"member": ("2",)}),
    ]
    merged = [op for op, _ in coalesce(_pairs(ops))]
    assert merged == [ops[0], ModifyEntry(dn, {"mail": (), "member": ("2",)})]


def test_delete_then_add_stays_two_changes() -> None:
    ops: list[DirectoryOp] = [DeleteEntry(DNS[2]), AddEntry(DNS[2], {"cn": ("y",)})]
    assert [op for op, _ in coalesce(_pairs(ops))] == ops


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


def test_a_value_removed_then_put_back_is_replaced_whole() -> None:
    first = ModifyEntry("cn=g", {"member": ("b", "c")}, previous={"member": ("a", "b")})
    then = ModifyEntry("cn=g", {"member": ("a", "b", "c")}, previous={"member": ("b", "c")})
    merged = _merge_ops(first, then)
    assert isinstance(merged, ModifyEntry) and merged.previous == {}
    # Replayed over the entry ``first`` changed, adding "c" alone would leave "a" out.
    directory: Directory = {"cn=g": {"member": ("b", "c")}}
    write(directory, merged)
    assert directory == {"cn=g": {"member": ("a", "b", "c")}}


def test_an_entry_with_too_many_causes_is_written_more_than_once() -> None:
    dn = DNS[0]
    ops: list[DirectoryOp] = [AddEntry(dn, {"cn": ("x",), "member": ("0",)})]
    ops += [ModifyEntry(dn, {"member": tuple(map(str, range(i + 1)))}) for i in range(1, 1500)]
    pairs = coalesce(_pairs(ops))
    assert [type(op) for op, _ in pairs] == [AddEntry, ModifyEntry]
    assert [1 + len(a.merged_causes) for _, a in pairs] == [MAX_CAUSES, 1500 - MAX_CAUSES]


@settings(max_examples=200)
@given(op_sequences(), st.data())
def test_a_merged_event_digests_each_attribute_before_its_first_change_and_after_its_last(
    case: tuple[Directory, list[DirectoryOp]], data: st.DataObject
) -> None:
    """Whatever the pieces (the window holds its events compactly, :class:`_Pending`)."""
    _, ops = case
    for _, audit in pieces(data.draw, ops):
        offsets = [c.offset for c in (*audit.merged_causes, audit.cause)]
        assert offsets == sorted(offsets)
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i in offsets:
            assert i is not None
            for change in _audit(i, ops[i]).changes:
                first.setdefault(change.name, i)
                last[change.name] = i
        # (in the event's own order when nothing was merged into it, else by name)
        assert sorted((c.name, c.before_digest, c.after_digest) for c in audit.changes) == [
            (name, f"b{first[name]}", f"a{last[name]}") for name in sorted(first)
        ]
        assert all(isinstance(c, AttributeChange) for c in audit.changes)

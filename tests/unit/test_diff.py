"""Minimal ops and their audit events."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from sync.diff import audit, diff, event_id, values_digest
from sync.ops import AddEntry, DeleteEntry, ModifyEntry
from sync.simulator import apply_op
from tests.unit.core_factories import cause

DN = "uid=el-x,ou=people,dc=ent,dc=example"
A = {"cn": ("Léa Martin",), "mail": ("a@x.fr",), "objectClass": ("top", "person")}


def test_equal_entries_give_nothing() -> None:
    assert diff(DN, A, dict(A)) is None
    assert diff(DN, None, None) is None


def test_value_order_and_name_case_do_not_matter() -> None:
    applied = {"CN": ("Léa Martin",), "MAIL": ("a@x.fr",), "objectclass": ("person", "top")}
    assert diff(DN, A, applied) is None


def test_add_and_delete() -> None:
    assert diff(DN, A, None) == AddEntry(dn=DN, attributes=A)
    assert diff(DN, None, A) == DeleteEntry(dn=DN)


def test_modify_lists_only_changed_attributes() -> None:
    desired = {**A, "mail": ("b@x.fr",), "sn": ("Martin",)}
    desired.pop("objectClass")
    op = diff(DN, desired, A)
    assert isinstance(op, ModifyEntry)
    assert op.changes == {"mail": ("b@x.fr",), "objectClass": (), "sn": ("Martin",)}
    assert op.desired == desired


def test_modify_with_renamed_case_keeps_applied_spelling_for_removal() -> None:
    op = diff(DN, {"cn": ("x",)}, {"cn": ("x",), "Mail": ("a",)})
    assert isinstance(op, ModifyEntry)
    assert op.changes == {"Mail": ()}


attr_names = st.sampled_from(["cn", "sn", "mail", "member", "objectClass", "l"])
values = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True)
entries_ = st.dictionaries(attr_names, values.map(lambda v: tuple(sorted(v))), max_size=6)


@given(desired=st.none() | entries_, applied=st.none() | entries_)
def test_diff_reaches_desired_minimally(
    desired: dict[str, tuple[str, ...]] | None, applied: dict[str, tuple[str, ...]] | None
) -> None:
    op = diff(DN, desired, applied)
    if desired == applied:
        assert op is None
        return
    directory = {} if applied is None else {DN: dict(applied)}
    if op is None:
        # Same sets under different spellings/orders only.
        assert desired is not None and applied is not None
        return
    apply_op(directory, op)
    result = directory.get(DN)
    assert (None if result is None else {k: set(v) for k, v in result.items()}) == (
        None if desired is None else {k: set(v) for k, v in desired.items()}
    )
    if isinstance(op, ModifyEntry):
        assert applied is not None and desired is not None
        for name, new in op.changes.items():
            assert set(new) != set(applied.get(name, ())), "an unchanged attribute was sent"
        untouched = (applied.keys() | desired.keys()) - op.changes.keys()
        assert all(set(applied.get(n, ())) == set(desired.get(n, ())) for n in untouched)


KEY = b"k" * 32


def test_values_digest_is_keyed() -> None:
    expected = hmac.new(KEY, b"a\x00b", hashlib.sha256).hexdigest()
    assert values_digest(("b", "a"), KEY) == expected
    # A plain hash of a value with few candidates (a birth date) could be reversed by trying
    # them all; under another key the same value has an unrelated digest.
    assert values_digest(("2015-03-14",), KEY) != hashlib.sha256(b"2015-03-14").hexdigest()
    assert values_digest(("2015-03-14",), KEY) != values_digest(("2015-03-14",), b"x" * 32)
    assert values_digest(None, KEY) is None
    assert values_digest((), KEY) is None


def test_audit_of_modify_names_attributes_and_digests_only() -> None:
    after = {**A, "mail": ("secret@x.fr",)}
    op = diff(DN, after, A)
    assert op is not None
    event = audit(
        op,
        before=A,
        after=after,
        entity_id="el-x",
        entity_kind="pupil",
        cause=cause(7),
        digest_key=KEY,
    )
    assert event.action == "modify" and event.dn == DN and event.entity_id == "el-x"
    assert [c.name for c in event.changes] == ["mail"]
    assert event.changes[0].before_digest == values_digest(("a@x.fr",), KEY)
    assert event.changes[0].after_digest == values_digest(("secret@x.fr",), KEY)
    assert "secret" not in event.model_dump_json()


def test_audit_of_add_and_delete() -> None:
    add = audit(
        AddEntry(dn=DN, attributes=A),
        before=None,
        after=A,
        entity_id="el-x",
        entity_kind="pupil",
        cause=cause(1),
        digest_key=KEY,
    )
    assert add.action == "add"
    assert {c.name for c in add.changes} == set(A)
    assert all(c.before_digest is None for c in add.changes)
    delete = audit(
        DeleteEntry(dn=DN),
        before=A,
        after=None,
        entity_id="el-x",
        entity_kind="pupil",
        cause=cause(2),
        digest_key=KEY,
    )
    assert delete.action == "delete"
    assert all(c.after_digest is None for c in delete.changes)


def test_event_id_is_deterministic_and_distinguishes() -> None:
    a = event_id(cause(1), "el-x", "add", DN, ())
    assert a == event_id(cause(1), "el-x", "add", DN, ())
    assert a != event_id(cause(2), "el-x", "add", DN, ())
    assert a != event_id(cause(1), "el-y", "add", DN, ())
    assert a != event_id(cause(1), "el-x", "modify", DN, ())
    assert a != event_id(cause(1), "el-x", "add", DN + "x", ())


def test_a_modify_names_the_values_it_replaces() -> None:
    before = {"member": ("a", "b"), "cn": ("x",)}
    after = {"member": ("a", "b", "c"), "cn": ("x",), "description": ("d",)}
    op = diff("cn=g", after, before)
    assert isinstance(op, ModifyEntry)
    assert op.changes == {"description": ("d",), "member": ("a", "b", "c")}
    assert op.previous == {"member": ("a", "b")}  # description is new: nothing before


@given(st.lists(st.text(max_size=6), min_size=1, max_size=8))
def test_values_digest_of_any_order_and_size_is_the_hmac_of_the_sorted_values(
    values: list[str],
) -> None:
    # Few values are remembered (sync.diff._small_digest), more are digested each time: one rule.
    joined = "\x00".join(sorted(values)).encode()
    expected = hmac.new(KEY, joined, hashlib.sha256).hexdigest()
    assert values_digest(tuple(values), KEY) == expected
    assert values_digest(tuple(reversed(values)), KEY) == expected


@given(
    st.dictionaries(
        st.sampled_from(["cn", "CN", "mail", "member", "sn"]),
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(tuple),
    ),
    st.dictionaries(
        st.sampled_from(["cn", "mail", "Member", "sn"]),
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(tuple),
    ),
)
def test_diff_and_audit_read_values_as_sets(
    desired: dict[str, tuple[str, ...]], applied: dict[str, tuple[str, ...]]
) -> None:
    """Values in any order, repeated or not: a change only where the sets differ."""
    op = diff(DN, desired, applied)
    want = {n.lower(): set(v) for n, v in desired.items()}
    have = {n.lower(): set(v) for n, v in applied.items()}
    if want == have:
        assert op is None
        return
    assert isinstance(op, ModifyEntry)
    changed = {n.lower() for n in op.changes}
    assert changed == {n for n in want.keys() | have.keys() if want.get(n) != have.get(n)}
    event = audit(
        op,
        before=applied,
        after=desired,
        entity_id="el-x",
        entity_kind="pupil",
        cause=cause(1),
        digest_key=KEY,
    )
    digested = {n for n in want.keys() | have.keys() if want.get(n) != have.get(n)}
    assert {c.name.lower() for c in event.changes} == digested

"""sync.equality: values compared as the directory compares them (caseIgnoreMatch, RFC 4518)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.entities import GroupSpec
from sync import dit, equality, ids, logins

# Source values after validation (sync.validation): no edge or doubled spaces.
values = st.text(min_size=1, max_size=12).map(lambda s: " ".join(s.split())).filter(bool)
codes = st.one_of(values, st.sampled_from(["C02", "c02", "CP-A", "cp-a", "Cp-A", "ＣＰ-A", "＄"]))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("C02", "c02"),
        ("CE1-CE2", "ce1-ce2"),
        ("Jean.Dupont", "jean.dupont"),
        ("  CM1  ", "CM1"),
        ("CM1\tA", "CM1  a"),
        ("ÉLODIE", "élodie"),
        ("ＣＭ１", "cm1"),  # fullwidth forms: NFKC
        ("Straße", "STRASSE"),  # full case folding
        ("co\u00adde", "code"),  # soft hyphen: mapped to nothing
        ("a\u200bb", "ab"),  # zero-width space: mapped to nothing
        ("\u3380", "PA"),  # folded to a fixed point
    ],
)
def test_the_directory_holds_these_equal(a: str, b: str) -> None:
    assert equality.equal(a, b)
    assert equality.key(a) == equality.key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("C02", "C2"), ("CE1-CE2", "CE1 CE2"), ("élodie", "elodie"), ("a b", "ab")]
)
def test_the_directory_holds_these_different(a: str, b: str) -> None:
    assert not equality.equal(a, b)
    assert equality.key(a) != equality.key(b)


def test_usual_spellings_keep_their_key_so_ids_do_not_change() -> None:
    for value in ("CM1", "0310100R", "CE1-CE2", "TPS-PS"):
        assert equality.key(value) == value
    assert ids.school_id("entsync", "0310100R") == ids.entity_id("entsync", "school", "0310100R")


@given(st.text(max_size=20))
def test_prepare_is_idempotent(value: str) -> None:
    once = equality.prepare(value)
    assert equality.prepare(once) == once


@given(st.text(max_size=20), st.text(max_size=20))
def test_key_separates_exactly_what_equality_separates(a: str, b: str) -> None:
    assert (equality.key(a) == equality.key(b)) == equality.equal(a, b)


@given(values, codes, codes, st.sampled_from(["pupils", "guardians", "teachers"]))
def test_equal_codes_give_one_group_and_different_codes_never_collide(
    school: str, a: str, b: str, profile: str
) -> None:
    spec_a = GroupSpec(school_jointure=school, profile=profile, class_code=a)
    spec_b = spec_a.model_copy(update={"class_code": b})
    same_id = ids.group_id("ns", spec_a) == ids.group_id("ns", spec_b)
    same_name = equality.equal(dit.group_name(spec_a), dit.group_name(spec_b))
    if equality.equal(a, b):
        assert same_id and same_name
    else:
        assert not same_id and not same_name


@given(values, values, values, values)
def test_group_names_of_different_groups_never_collide(s1: str, c1: str, s2: str, c2: str) -> None:
    assume(not (equality.equal(s1, s2) and equality.equal(c1, c2)))
    a = GroupSpec(school_jointure=s1, profile="pupils", class_code=c1)
    b = GroupSpec(school_jointure=s2, profile="pupils", class_code=c2)
    assert not equality.equal(dit.group_name(a), dit.group_name(b))
    assert ids.group_id("ns", a) != ids.group_id("ns", b)


@given(values, values)
def test_schools_the_directory_confuses_are_one_school(a: str, b: str) -> None:
    same = ids.school_id("ns", a) == ids.school_id("ns", b)
    assert same == equality.equal(a, b)


@given(st.text(max_size=12), st.integers(min_value=2, max_value=99))
def test_an_academic_login_is_reserved_where_it_could_be_generated(name: str, suffix: int) -> None:
    base = logins.login_base(name, "Martin", "el-x")
    for generated in (base, f"{base}{suffix}"):
        # Whatever its case, the only allocator that can hand it out is the one of its base.
        assert logins.academic_base(generated.upper()) == base

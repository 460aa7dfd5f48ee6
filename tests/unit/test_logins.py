"""Login bases and allocation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.logins import MAX_BASE_LENGTH, allocate, login_base

LOGIN_RE = re.compile(r"^[a-z.-]+[0-9]*$")


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Jean", "Dupont", "jean.dupont"),
        ("Élodie", "Lefèvre", "elodie.lefevre"),
        ("Jean Pierre", "De La Fontaine", "jean-pierre.de-la-fontaine"),
        ("Jean-Pierre", "Martin", "jean-pierre.martin"),
        ("Zoë", "D'Artagnan", "zoe.dartagnan"),
        ("Anaïs", "N’Diaye", "anais.ndiaye"),
        ("Lætitia", "Cœur", "laetitia.coeur"),
        ("Jürgen", "Straße", "jurgen.strasse"),
        ("  Ana  ", "  Lopez  ", "ana.lopez"),
        ("Louis2", "XIV", "louis.xiv"),
        ("Çağla", "Øberg", "cagla.oberg"),
        ("", "Martin", "martin"),
        ("Lou", "", "lou"),
    ],
)
def test_base_examples(first: str, last: str, expected: str) -> None:
    assert login_base(first, last, "el-x") == expected


def test_base_is_bounded_without_trailing_separator() -> None:
    base = login_base("Marie-Charlotte-Eugénie", "De Saint-Exupéry-Montmorency", "el-x")
    assert len(base) <= MAX_BASE_LENGTH
    assert not base.endswith(("-", "."))


def test_empty_names_fall_back_to_a_stable_pseudonymous_base() -> None:
    a = login_base("李", "王", "el-aaaa")
    assert a == login_base("", "!!", "el-aaaa")
    assert a != login_base("", "", "el-bbbb")
    assert a.startswith("u-") and re.fullmatch(r"u-[a-z]{8}", a)


@given(st.text(max_size=60), st.text(max_size=60), st.text(min_size=1, max_size=20))
def test_base_shape(first: str, last: str, seed: str) -> None:
    base = login_base(first, last, seed)
    assert re.fullmatch(r"[a-z.-]+", base)
    assert 0 < len(base) <= MAX_BASE_LENGTH
    assert base[0] not in ".-" and base[-1] not in ".-"


def test_first_comes_gets_the_base_then_suffixes_from_2() -> None:
    allocations: dict[str, str] = {}
    for person in ("p1", "p2", "p3"):
        allocations[person] = allocate(allocations, person, "jean.dupont")
    assert allocations == {"p1": "jean.dupont", "p2": "jean.dupont2", "p3": "jean.dupont3"}


def test_existing_login_is_returned_again() -> None:
    allocations = {"p1": "jean.dupont", "p2": "jean.dupont2"}
    assert allocate(allocations, "p2", "jean.dupont") == "jean.dupont2"
    assert allocate(allocations, "p1", "other.base") == "jean.dupont"


def test_smallest_free_suffix() -> None:
    allocations = {"a": "jean.dupont", "b": "jean.dupont3"}
    assert allocate(allocations, "c", "jean.dupont") == "jean.dupont2"
    assert allocate({"b": "jean.dupont2"}, "c", "jean.dupont") == "jean.dupont"


@given(st.lists(st.sampled_from(["p1", "p2", "p3", "p4", "p5"]), max_size=30))
def test_allocation_unique_and_stable(requests: list[str]) -> None:
    allocations: dict[str, str] = {}
    for person in requests:
        login = allocate(allocations, person, "ana.lopez")
        assert allocations.get(person, login) == login
        allocations[person] = login
        assert LOGIN_RE.match(login)
    assert len(set(allocations.values())) == len(allocations)

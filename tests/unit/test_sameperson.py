"""The same-person rule of INE conflicts (sync.sameperson): properties and examples."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from schemas.state import PupilIdentity
from sync import sameperson
from sync.sameperson import folded_names, followed, identity, matches, same_person
from tests.unit.core_factories import pupil_record

names = st.text(alphabet="abcdeéèàçï -'", min_size=1, max_size=12)
dates = st.one_of(st.none(), st.dates(min_value=date(2010, 1, 1), max_value=date(2024, 12, 31)))
identities = st.builds(PupilIdentity, names=names, birth_date=dates)


@given(identities)
def test_a_person_is_the_same_person_as_itself(a: PupilIdentity) -> None:
    assert same_person(a, a)


@given(identities, identities)
def test_the_rule_is_symmetric(a: PupilIdentity, b: PupilIdentity) -> None:
    assert same_person(a, b) == same_person(b, a)


@given(identities, identities)
def test_not_the_same_person_exactly_when_names_and_dates_both_differ(
    a: PupilIdentity, b: PupilIdentity
) -> None:
    assert same_person(a, b) == (a.names == b.names or a.birth_date == b.birth_date)


@given(names, names, dates, dates)
def test_one_correction_at_a_time_stays_the_same_person(
    first: str, other: str, born: date | None, reborn: date | None
) -> None:
    a = PupilIdentity(names=folded_names(first, "Martin"), birth_date=born)
    renamed = PupilIdentity(names=folded_names(other, "Martin"), birth_date=born)
    redated = PupilIdentity(names=a.names, birth_date=reborn)
    assert same_person(a, renamed) and same_person(a, redated)


@given(st.lists(identities, max_size=4), identities)
def test_followed_keeps_the_accepted_and_what_it_does_not_match(
    known: list[PupilIdentity], accepted: PupilIdentity
) -> None:
    after = followed(tuple(known), accepted)
    assert accepted in after
    assert matches(after, accepted)
    assert all(k in after for k in known if not same_person(k, accepted))
    assert after == followed(tuple(reversed(known)), accepted)  # order-free


def test_names_fold_case_accents_punctuation_and_order() -> None:
    assert folded_names("Zoé-Anne", "D'Arc") == folded_names("ZOE ANNE", "d arc")
    assert folded_names("Martin", "Alice") == folded_names("Alice", "Martin")
    assert folded_names("Alice", "Martin") != folded_names("Alicia", "Martin")


def test_records_of_two_children_are_not_the_same_person() -> None:
    alice = identity(pupil_record("P1", first="Alice", birth=date(2019, 3, 14)))
    bob = identity(pupil_record("P2", first="Bob", birth=date(2018, 7, 2)))
    assert not same_person(alice, bob)
    assert sameperson.RULE == "names_and_birth_date_differ"


def test_an_unknown_birth_date_matches_only_an_unknown_one() -> None:
    a = PupilIdentity(names="alice martin", birth_date=None)
    b = PupilIdentity(names="bob martin", birth_date=date(2019, 1, 1))
    assert not same_person(a, b)
    assert same_person(a, PupilIdentity(names="bob durand", birth_date=None))

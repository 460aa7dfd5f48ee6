"""Same person: whether two pupil records carrying one INE describe one child.

Pure. A pupil entity is keyed by its INE (:func:`sync.ids.pupil_natural_key`), so two records
with one INE land on one entity; this rule says when they must not be merged there.

- a record's identity is its folded name words (first and last names together, as a sorted
  tuple: case, accents, hyphens, apostrophes and the order of the names do not matter) and its
  birth date (:func:`identity`);
- two identities are the **same person** unless their names differ **and** their birth dates
  differ (:func:`same_person`): a name correction with the same birth date, or a birth-date
  correction with the same names, stays the same person;
- an unknown birth date equals only an unknown birth date (nothing says it is the same day);
- a record is the INE's person when it is the same person as **one** of the identities the
  entity accepted (:func:`matches`): usually one, several after an operator said that records
  are one person (``entsync admin resolve-ine --same-person``);
- a record accepted as the INE's person replaces the identities it matched
  (:func:`followed`): the entity follows a person's own corrections, one field at a time.

The rule sees only equality of folded names and dates, so it works the same on digests of them
(the ingest report compares digests, never keeping the values).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from schemas.feed import Pupil
from schemas.state import PupilIdentity
from sync.bridge import normalize_name

RULE = "names_and_birth_date_differ"

__all__ = ["RULE", "PupilIdentity", "followed", "identity", "matches", "same_person"]


def folded_names(first_name: str, last_name: str) -> str:
    """The name words of a person, folded and sorted, joined by single spaces."""
    return " ".join(sorted(normalize_name(f"{first_name} {last_name}")))


def identity(pupil: Pupil) -> PupilIdentity:
    return PupilIdentity(
        names=folded_names(pupil.first_name, pupil.last_name), birth_date=pupil.birth_date
    )


def same_person(a: PupilIdentity, b: PupilIdentity) -> bool:
    """Not the same person only when both the names and the birth dates differ."""
    return a.names == b.names or a.birth_date == b.birth_date


def matches(known: Iterable[PupilIdentity], candidate: PupilIdentity) -> bool:
    """Whether ``candidate`` is the same person as one of the ``known`` identities."""
    return any(same_person(k, candidate) for k in known)


def followed(
    known: tuple[PupilIdentity, ...], accepted: PupilIdentity
) -> tuple[PupilIdentity, ...]:
    """The known identities once ``accepted`` is taken: those it matched give way to it.

    Sorted, so the result depends on the identities, not on the order they were met."""
    kept = {k for k in known if not same_person(k, accepted)}
    kept.add(accepted)
    return tuple(sorted(kept, key=_order))


def _order(value: BaseModel) -> str:
    return value.model_dump_json()

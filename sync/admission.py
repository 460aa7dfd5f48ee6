"""Pupil admission rules (seed 003): which pupils are brought into the ENT, and why not.

A pupil is admitted only if all of these hold; each failure is one :class:`HoldReason`:

1. INE present and valid (``ine_missing`` / ``ine_invalid``).
2. Admitted definitively. The public AAF1D attribute set has no such field, so the parser reads an
   optional ``ENTEleveAdmissionDefinitive`` (``O``/``N``, ``true``/``false``, ``1``/``0``).
   **When the attribute is absent the pupil is treated as admitted definitively**: ONDE only
   exports admitted pupils in the standard extract, so absence must not hold every pupil.
3. Assigned to a class: at least one valid ``ENTPersonClasses`` value.
4. Enrolled for the current school year (a school year runs 1 September → 31 August), see
   :func:`enrolled_school_year`.
5. Attached to at least one guardian holding parental authority: at least one valid
   ``ENTEleveAutoriteParentale`` value (that attribute lists only holders of parental authority).

A held pupil is still published, with its reasons, so that a later change can release it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from schemas.feed import HoldReason

IneStatus = Literal["valid", "missing", "invalid"]
ADMISSION_ATTRIBUTE = "ENTEleveAdmissionDefinitive"
SCHOOL_YEAR_ATTRIBUTE = "ENTEleveAnneeScolaire"


def school_year_of(day: date) -> str:
    """The school year containing ``day``: 1 September → 31 August, e.g. ``2025-2026``."""
    start = day.year if day.month >= 9 else day.year - 1
    return f"{start}-{start + 1}"


def enrolled_school_year(
    explicit: str | None, exit_date: date | None, extract_date: date
) -> str | None:
    """The school year for which the record attests an active enrolment, or None.

    - ``ENTEleveDateSortieStructRattach`` on or before the extract date: the pupil has left the
      school, the enrolment is over → None (held as ``not_current_school_year``).
    - else an explicit school-year attribute (``ENTEleveAnneeScolaire``) when the feed has one;
    - else the school year of the extract date: an ONDE extract describes current enrolments.
    """
    if exit_date is not None and exit_date <= extract_date:
        return None
    if explicit is not None:
        return explicit
    return school_year_of(extract_date)


@dataclass(frozen=True, slots=True)
class AdmissionFacts:
    """What the admission rules look at, already extracted from a pupil record."""

    ine: IneStatus
    admitted_definitively: bool | None
    class_count: int
    school_year: str | None
    current_school_year: str
    parental_authority_count: int


def admission_holds(facts: AdmissionFacts) -> tuple[HoldReason, ...]:
    """The reasons to hold the pupil back, in rule order; empty when admitted."""
    reasons: list[HoldReason] = []
    if facts.ine == "missing":
        reasons.append(HoldReason.INE_MISSING)
    elif facts.ine == "invalid":
        reasons.append(HoldReason.INE_INVALID)
    if facts.admitted_definitively is False:
        reasons.append(HoldReason.NOT_ADMITTED_DEFINITIVELY)
    if facts.class_count < 1:
        reasons.append(HoldReason.NO_CLASS)
    if facts.school_year != facts.current_school_year:
        reasons.append(HoldReason.NOT_CURRENT_SCHOOL_YEAR)
    if facts.parental_authority_count < 1:
        reasons.append(HoldReason.NO_PARENTAL_AUTHORITY)
    return tuple(reasons)


SCHOOL_HOLD_REASONS = frozenset({HoldReason.SIREN_MISSING, HoldReason.SIREN_INVALID})
STAFF_HOLD_REASONS = frozenset(
    {HoldReason.ACADEMIC_LOGIN_SHARED, HoldReason.ACADEMIC_LOGIN_TAKEN}
)  # decided by the login allocation (sync.claims), never carried by a record
"""The reasons that hold a school; every other reason holds a pupil."""

HOLD_MESSAGES: dict[HoldReason, str] = {
    HoldReason.INE_MISSING: "pupil held: no INE",
    HoldReason.INE_INVALID: "pupil held: INE does not have a valid shape",
    HoldReason.NOT_ADMITTED_DEFINITIVELY: "pupil held: not admitted definitively",
    HoldReason.NO_CLASS: "pupil held: not assigned to a class",
    HoldReason.NOT_CURRENT_SCHOOL_YEAR: "pupil held: not enrolled for the current school year",
    HoldReason.NO_PARENTAL_AUTHORITY: "pupil held: no guardian with parental authority",
    HoldReason.INE_CONFLICT: (
        "pupil held: another record carries its INE, names and birth date differ "
        "(entsync admin resolve-ine)"
    ),
    HoldReason.SIREN_MISSING: "school held: no SIREN (mandatory in the SDET schema)",
    HoldReason.SIREN_INVALID: "school held: SIREN is not 9 digits (or a 14-digit SIRET)",
    HoldReason.ACADEMIC_LOGIN_SHARED: "staff held: another staff record has the same academic "
    "login (the directory compares logins ignoring case)",
    HoldReason.ACADEMIC_LOGIN_TAKEN: "staff held: the academic login is already the login of "
    "another account (logins never change once given)",
}

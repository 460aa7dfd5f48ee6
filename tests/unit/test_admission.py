"""Pupil admission rules (sync.admission)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.feed import HoldReason
from sync.admission import (
    HOLD_MESSAGES,
    AdmissionFacts,
    admission_holds,
    enrolled_school_year,
    school_year_of,
)

CURRENT = "2025-2026"
OK = AdmissionFacts(
    ine="valid",
    admitted_definitively=None,
    class_count=1,
    school_year=CURRENT,
    current_school_year=CURRENT,
    parental_authority_count=1,
)


def _with(**changes: Any) -> AdmissionFacts:
    return dataclasses.replace(OK, **changes)


def test_admitted_pupil_has_no_hold() -> None:
    assert admission_holds(OK) == ()
    # Absent admission state: treated as admitted definitively (documented choice).
    assert admission_holds(_with(admitted_definitively=None)) == ()
    assert admission_holds(_with(admitted_definitively=True)) == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ine": "missing"}, HoldReason.INE_MISSING),
        ({"ine": "invalid"}, HoldReason.INE_INVALID),
        ({"admitted_definitively": False}, HoldReason.NOT_ADMITTED_DEFINITIVELY),
        ({"class_count": 0}, HoldReason.NO_CLASS),
        ({"school_year": "2024-2025"}, HoldReason.NOT_CURRENT_SCHOOL_YEAR),
        ({"school_year": None}, HoldReason.NOT_CURRENT_SCHOOL_YEAR),
        ({"parental_authority_count": 0}, HoldReason.NO_PARENTAL_AUTHORITY),
    ],
)
def test_each_rule(change: dict[str, object], reason: HoldReason) -> None:
    assert admission_holds(_with(**change)) == (reason,)
    assert reason in HOLD_MESSAGES


def test_all_rules_fail_in_rule_order() -> None:
    facts = _with(
        ine="missing",
        admitted_definitively=False,
        class_count=0,
        school_year=None,
        parental_authority_count=0,
    )
    assert admission_holds(facts) == (
        HoldReason.INE_MISSING,
        HoldReason.NOT_ADMITTED_DEFINITIVELY,
        HoldReason.NO_CLASS,
        HoldReason.NOT_CURRENT_SCHOOL_YEAR,
        HoldReason.NO_PARENTAL_AUTHORITY,
    )


@given(
    ine=st.sampled_from(["valid", "missing", "invalid"]),
    admitted=st.sampled_from([None, True, False]),
    classes=st.integers(0, 3),
    year=st.sampled_from([None, "2024-2025", CURRENT, "2026-2027"]),
    guardians=st.integers(0, 3),
)
def test_holds_iff_a_rule_fails(
    ine: str, admitted: bool | None, classes: int, year: str | None, guardians: int
) -> None:
    facts = _with(
        ine=ine,
        admitted_definitively=admitted,
        class_count=classes,
        school_year=year,
        parental_authority_count=guardians,
    )
    holds = admission_holds(facts)
    admitted_ok = ine == "valid" and admitted is not False and classes > 0 and year == CURRENT
    assert (holds == ()) == (admitted_ok and guardians > 0)
    assert len(set(holds)) == len(holds)


def test_school_year_boundaries() -> None:
    assert school_year_of(date(2025, 9, 1)) == "2025-2026"
    assert school_year_of(date(2025, 8, 31)) == "2024-2025"
    assert school_year_of(date(2026, 1, 15)) == "2025-2026"
    assert school_year_of(date(2026, 7, 4)) == "2025-2026"


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)))
def test_school_year_contains_the_day(day: date) -> None:
    start, end = (int(y) for y in school_year_of(day).split("-"))
    assert end == start + 1
    assert date(start, 9, 1) <= day <= date(end, 8, 31)


def test_enrolled_school_year() -> None:
    extract = date(2025, 9, 22)
    assert enrolled_school_year(None, None, extract) == CURRENT
    assert enrolled_school_year("2024-2025", None, extract) == "2024-2025"
    # left the school before (or on) the extract date: enrolment over
    assert enrolled_school_year(None, extract - timedelta(days=1), extract) is None
    assert enrolled_school_year(None, extract, extract) is None
    assert enrolled_school_year(CURRENT, extract - timedelta(days=30), extract) is None
    # a planned departure later this year does not end the current enrolment
    assert enrolled_school_year(None, date(2026, 7, 4), extract) == CURRENT

"""AAF file names: scope, complete flag, extract date, category, part."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.aaf import format_file_name, parse_file_name
from schemas.feed import Category


def test_full_and_delta_names() -> None:
    full = parse_file_name("ENT_0310100R_Complet_20250922_Eleve_0000.xml")
    assert full.conforming and full.complete
    assert (full.scope, full.extract_date, full.category, full.part) == (
        "0310100R",
        date(2025, 9, 22),
        Category.PUPILS,
        0,
    )
    delta = parse_file_name("ENT_AC-TOULOUSE_Delta_20250923_PersRelEleve_0012.XML")
    assert delta.conforming and not delta.complete
    assert (delta.scope, delta.category, delta.part) == ("AC-TOULOUSE", Category.GUARDIANS, 12)


@pytest.mark.parametrize(
    "name",
    [
        "ENT_0310100R_Complet_20250231_Eleve_0000.xml",  # impossible date
        "ENT_0310100R_Complet_2025092_Eleve_0000.xml",
        "ENT_0310100R_Full_20250922_Eleve_0000.xml",
        "ENT_0310100R_Complet_20250922_Eleve.xml",
        "eleves.xml",
        "ENT_0310100R_Complet_20250922_Eleve_0000.xml.bak",
    ],
)
def test_non_conforming_names(name: str) -> None:
    parsed = parse_file_name(name)
    assert not parsed.conforming and not parsed.complete
    assert parsed.category is None and parsed.scope is None
    assert parsed.claims_complete == ("_Complet_" in name)


@pytest.mark.parametrize(
    ("name", "prefix", "scope", "complete", "day", "category"),
    [
        (
            "ENT2DVA-ENT16_Complet_20240916_Eleve_0000.xml",
            "ENT2DVA-ENT16",
            None,
            True,
            date(2024, 9, 16),
            Category.PUPILS,
        ),
        (
            "ENT_Complet_20200101_Eleve_0000.xml",
            "ENT",
            None,
            True,
            date(2020, 1, 1),
            Category.PUPILS,
        ),
        (
            "FULL_ENTTSSERVICES_Complet_20130117_PersEducNat_0000.xml",
            "FULL_ENTTSSERVICES",
            None,
            True,
            date(2013, 1, 17),
            Category.STAFF,
        ),
        (
            "ENT_0310100R_Delta_20250922_PersRelEleve_0003.xml",
            "ENT_0310100R",
            "0310100R",
            False,
            date(2025, 9, 22),
            Category.GUARDIANS,
        ),
        (
            "ENT_03_10_Complet_20250922_Eleve_0000.xml",  # not our shape: no scope from it
            "ENT_03_10",
            None,
            True,
            date(2025, 9, 22),
            Category.PUPILS,
        ),
    ],
)
def test_real_name_shapes(
    name: str, prefix: str, scope: str | None, complete: bool, day: date, category: Category
) -> None:
    parsed = parse_file_name(name)
    assert parsed.conforming and not parsed.claims_complete
    assert (parsed.prefix, parsed.scope, parsed.complete, parsed.extract_date) == (
        prefix,
        scope,
        complete,
        day,
    )
    assert parsed.category is category and parsed.unsynced is None


def test_categories_not_synced_are_named() -> None:
    parsed = parse_file_name("ENT2DVA-ENT16_Complet_20240916_MefEducNat_0000.xml")
    assert parsed.conforming and parsed.complete and parsed.category is None
    assert parsed.unsynced == parsed.category_name == "MefEducNat"


@given(
    scope=st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True),
    complete=st.booleans(),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    category=st.sampled_from(list(Category)),
    part=st.integers(0, 9999),
)
def test_format_parse_roundtrip(
    scope: str, complete: bool, day: date, category: Category, part: int
) -> None:
    parsed = parse_file_name(format_file_name(scope, complete, day, category, part))
    assert parsed.conforming
    assert (parsed.scope, parsed.complete, parsed.extract_date, parsed.category, parsed.part) == (
        scope,
        complete,
        day,
        category,
        part,
    )

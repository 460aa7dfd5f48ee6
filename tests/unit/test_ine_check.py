"""The ingest report's INE check: records sharing an INE while not the same person."""

from __future__ import annotations

from pathlib import Path

from connectors.aaf import scan_many
from schemas.feed import Category
from tests.unit.aaf_files import pupil, real_file

NAME = "ENT_{uai}_Complet_20260901_Eleve_0000.xml"


def two_schools(tmp_path: Path, **bob: list[str]) -> list[Path]:
    first = real_file(
        tmp_path, NAME.format(uai="0310100R"), [(Category.PUPILS, "10000001", pupil("10000001"))]
    )
    other = pupil("10000002", school="0310200S", **bob)
    second = real_file(
        tmp_path, NAME.format(uai="0310200S"), [(Category.PUPILS, "10000002", other)]
    )
    return [first, second]


def test_same_ine_on_two_children_in_two_schools_is_reported_for_both(tmp_path: Path) -> None:
    files = two_schools(
        tmp_path,
        ENTPersonPrenom=["Bob"],
        ENTPersonNom=["DURAND"],
        ENTPersonDateNaissance=["02/07/2017"],
    )
    report = scan_many(files).report
    assert report.ok
    items = report.conflicts
    assert [(i.record_id, i.rule, i.severity, i.field) for i in items] == [
        ("10000001", "ine_conflict", "held", "ENTEleveINE"),
        ("10000002", "ine_conflict", "held", "ENTEleveINE"),
    ]
    assert "10000002" in items[0].message and "names_and_birth_date_differ" in items[0].message
    assert {i.file for i in items} == {f.name for f in files}
    for item in items:  # no value in a report line
        text = item.model_dump_json()
        assert "1234567890A" not in text and "DURAND" not in text and "2017" not in text
    assert all(i in report.items() for i in items)
    assert sum(f.published for f in report.files) == 2  # both still published: the core holds


def test_one_correction_is_the_same_person(tmp_path: Path) -> None:
    renamed = two_schools(tmp_path, ENTPersonPrenom=["Lea-Rose"])
    assert scan_many(renamed).report.conflicts == []
    for f in renamed:
        f.unlink()
    redated = two_schools(tmp_path, ENTPersonDateNaissance=["13/03/2018"])
    assert scan_many(redated).report.conflicts == []


def test_distinct_ines_are_not_compared(tmp_path: Path) -> None:
    files = two_schools(
        tmp_path,
        ENTEleveINE=["2234567890B"],
        ENTPersonPrenom=["Bob"],
        ENTPersonDateNaissance=["02/07/2017"],
    )
    assert scan_many(files).report.conflicts == []

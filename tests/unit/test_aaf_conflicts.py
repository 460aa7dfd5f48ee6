"""check/ingest report the values of a call the directory would confuse, by record id only."""

from __future__ import annotations

from pathlib import Path

from connectors.aaf import scan_many
from connectors.aaf.conflicts import CLASS_RULE, GENERATED_RULE, JOINTURE_RULE, SHARED_RULE
from schemas.feed import Category
from tests.unit.aaf_files import guardian, pupil, real_file, staff

SCHOOL = "0310100R"


def _pupil(
    jointure: str, code: str, first: str = "Léa", last: str = "MARTIN"
) -> dict[str, list[str]]:
    return pupil(
        jointure,
        ENTPersonClasses=[f"{SCHOOL}$2025$CP${code}$CP"],
        ENTPersonPrenom=[first],
        ENTPersonNom=[last],
    )


def _files(tmp_path: Path) -> list[Path]:
    pupils = real_file(
        tmp_path,
        "ENT_0310100R_Complet_20250922_Eleve_0000.xml",
        [
            (Category.PUPILS, "10000001", _pupil("10000001", "C02")),
            (Category.PUPILS, "10000002", _pupil("10000002", "c02", "Jean", "DUPONT")),
            (Category.PUPILS, "10000003", _pupil("10000003", "C03")),
        ],
    )
    guardians = real_file(
        tmp_path,
        "ENT_0310100R_Complet_20250922_PersRelEleve_0000.xml",
        [
            (Category.GUARDIANS, "ab1", guardian("ab1")),
            (Category.GUARDIANS, "AB1", guardian("AB1")),
        ],
    )
    login = "ENTPersonLogin"
    staff_file = real_file(
        tmp_path,
        "ENT_0310100R_Complet_20250922_PersEducNat_0000.xml",
        [
            (Category.STAFF, "30000001", {**staff("30000001", SCHOOL), login: ["Jean.Dupont"]}),
            (Category.STAFF, "30000002", {**staff("30000002", SCHOOL), login: ["hfabre"]}),
            (Category.STAFF, "30000003", {**staff("30000003", SCHOOL), login: ["HFabre"]}),
        ],
    )
    return [staff_file, pupils, guardians]


def test_each_conflict_of_the_call_is_reported_with_record_ids_only(tmp_path: Path) -> None:
    report = scan_many(_files(tmp_path)).report
    by_rule: dict[str, set[str | None]] = {}
    for item in report.conflicts:
        by_rule.setdefault(item.rule, set()).add(item.record_id)
        for value in ("Jean.Dupont", "hfabre", "Léa", "DUPONT", "MARTIN"):
            assert value not in item.message
    assert by_rule == {
        CLASS_RULE: {"10000001", "10000002"},
        JOINTURE_RULE: {"ab1", "AB1"},
        SHARED_RULE: {"30000002", "30000003"},
        GENERATED_RULE: {"30000001"},
    }
    shared = [i for i in report.conflicts if i.rule == SHARED_RULE]
    assert {i.severity for i in shared} == {"held"}
    assert all(i in report.items() for i in report.conflicts)
    (first, _) = [i for i in report.conflicts if i.rule == CLASS_RULE]
    assert SCHOOL in first.message and "10000001, 10000002" in first.message


def test_no_conflict_in_a_clean_call(tmp_path: Path) -> None:
    real_file(
        tmp_path,
        "ENT_0310100R_Complet_20250922_Eleve_0000.xml",
        [(Category.PUPILS, "10000001", _pupil("10000001", "C02"))],
    )
    assert scan_many(sorted(tmp_path.glob("*.xml"))).report.conflicts == []

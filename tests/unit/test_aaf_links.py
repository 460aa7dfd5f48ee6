"""Guardian links checked from both sides (pupils file vs guardians file)."""

from __future__ import annotations

from pathlib import Path

from connectors.aaf import check_links, scan_many
from connectors.aaf.xmlwrite import request_xml
from schemas.feed import Category


def test_symmetric_links_are_clean() -> None:
    pupils = {"p1": ["g1", "g2"], "p2": ["g1"]}
    guardians = {"g1": ["p1", "p2"], "g2": ["p1"]}
    assert check_links(pupils, guardians) == []


def test_one_sided_and_dangling_links() -> None:
    pupils = {"p1": ["g1", "g2", "g9"], "p2": []}
    guardians = {"g1": ["p1", "p2"], "g2": [], "g3": ["p8"]}
    items = check_links(pupils, guardians, pupils_file="E.xml", guardians_file="G.xml")
    found = {(i.file, i.record_id, i.rule) for i in items}
    assert found == {
        ("E.xml", "p1", "link_not_reciprocated"),  # g2 does not list p1
        ("E.xml", "p1", "link_guardian_missing"),  # g9 absent
        ("G.xml", "g1", "link_not_reciprocated"),  # p2 does not list g1
        ("G.xml", "g3", "link_pupil_missing"),  # p8 absent
    }
    assert all(i.severity.value == "warning" for i in items)
    assert all(i.field in ("ENTEleveAutoriteParentale", "ENTPersRelEleveEleve") for i in items)


def _file(
    folder: Path, name: str, category: Category, requests: list[tuple[str, dict[str, list[str]]]]
) -> Path:
    body = "".join(request_xml("add", category, ident, attrs) for ident, attrs in requests)
    path = folder / name
    path.write_text(f"<ficAlimMENESR>{body}</ficAlimMENESR>", encoding="utf-8")
    return path


def test_scan_many_checks_both_files(tmp_path: Path) -> None:
    names = {"ENTPersonNom": ["A"], "ENTPersonPrenom": ["B"]}
    pupils = _file(
        tmp_path,
        "ENT_X_Complet_20251001_Eleve_0000.xml",
        Category.PUPILS,
        [("p1", {**names, "ENTEleveAutoriteParentale": ["g1$10", "g2$20"]})],
    )
    guardians = _file(
        tmp_path,
        "ENT_X_Complet_20251001_PersRelEleve_0000.xml",
        Category.GUARDIANS,
        [("g1", {**names, "ENTPersRelEleveEleve": ["p1"]}), ("g2", names)],
    )
    report = scan_many([pupils, guardians]).report
    assert [(i.record_id, i.rule) for i in report.links] == [("p1", "link_not_reciprocated")]
    # one side alone: nothing to compare
    assert scan_many([pupils]).report.links == []
    assert scan_many([pupils, guardians], link_check=False).report.links == []

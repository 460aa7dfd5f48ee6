"""Guardian links checked from both sides (pupils file vs guardians file)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.aaf import check_links, scan_many
from connectors.aaf.links import LinkSide, check_link_sides
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


_ids = st.sampled_from([f"{n}" for n in range(8)])


@settings(max_examples=60, deadline=None)
@given(
    pupils=st.dictionaries(st.sampled_from(["p1", "p2", "p3", "p4"]), st.lists(_ids, max_size=3)),
    guardians=st.dictionaries(
        _ids, st.lists(st.sampled_from(["p1", "p2", "p3", "p5"]), max_size=3)
    ),
    split=st.integers(0, 4),
)
def test_streaming_check_agrees_with_pure_rule(
    pupils: dict[str, list[str]], guardians: dict[str, list[str]], split: int
) -> None:
    """The on-disk check (what scan_many uses) finds exactly what check_links finds."""
    pupil_files = [LinkSide("E0", pupils=True), LinkSide("E1", pupils=True)]
    guardian_side = LinkSide("G", pupils=False)
    for n, (pupil, linked) in enumerate(pupils.items()):
        pupil_files[n < split].add(pupil, linked)  # the pupils spread over two files
    for guardian, linked in guardians.items():
        guardian_side.add(guardian, linked)
    sides = [*pupil_files, guardian_side]
    streamed = check_link_sides(sides)
    for side in sides:
        side.close()
    pure = check_links(pupils, guardians, pupils_file="E0,E1", guardians_file="G")
    if not pupils and not guardians:
        assert streamed == pure == []
    else:
        assert streamed == pure

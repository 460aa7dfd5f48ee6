"""A school held for its SIREN: the report says which records of the call wait for it."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.aaf import scan_many
from connectors.aaf.gen_model import GeneratedRecord, GeneratorConfig
from connectors.aaf.generator import generate
from connectors.aaf.held_schools import WAITING_RULE
from schemas.feed import Pupil, Staff


def test_pupils_and_staff_waiting_for_a_school_without_siren(tmp_path: Path) -> None:
    generated: list[GeneratedRecord] = []
    generate(tmp_path, GeneratorConfig(schools=2, pupils_per_school=12, seed=3), generated.append)
    records = [g.record for g in generated if not g.delta]
    schools_file = next(tmp_path.glob("*_EtabEducNat_*.xml"))
    text = schools_file.read_text(encoding="utf-8")
    sirens = re.findall(r'<attr name="ENTStructureSIREN"><value>[0-9]+</value></attr>\n', text)
    assert len(sirens) == 2
    schools_file.write_text(text.replace(sirens[0], "", 1), encoding="utf-8")
    held = re.findall(r"<id>([0-9]{7}[A-Z])</id>", text)[0]

    result = scan_many(sorted(tmp_path.glob("*_Complet_*.xml")))

    (item,) = result.report.waiting
    assert (item.record_id, item.rule, item.severity) == (held, WAITING_RULE, "held")
    assert item.file == schools_file.name
    pupils = [
        r
        for r in records
        if isinstance(r, Pupil)
        and held in {r.school_jointure, *(c.school_jointure for c in r.classes)}
    ]
    staff = [
        r
        for r in records
        if isinstance(r, Staff) and held in {r.attachment_school_jointure, *r.school_jointures}
    ]
    assert pupils and staff
    assert f"{len(pupils)} pupil and {len(staff)} staff records" in item.message
    assert item in result.report.items()  # rendered with the rest of the report


def test_no_item_when_every_school_has_its_siren(tmp_path: Path) -> None:
    generate(tmp_path, GeneratorConfig(schools=2, pupils_per_school=5, seed=3))
    assert scan_many(sorted(tmp_path.glob("*_Complet_*.xml"))).report.waiting == []

"""``entsync check`` reports a pupil naming a guardian absent from the scanned guardian files
(issue 19, item 4): record ids and the rule, no personal value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entsync.cli import app
from schemas.feed import Category
from tests.unit.aaf_files import guardian, pupil, real_file

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("restore_logging")

PUPILS = "ENT_0310100R_Complet_20250922_Eleve_0000.xml"
GUARDIANS = "ENT_0310100R_Complet_20250922_PersRelEleve_0000.xml"


def _files(tmp_path: Path, *, with_guardians: bool) -> list[str]:
    parents = ["20000001$10", "29999999$20"]  # the second is in no file
    files = [
        real_file(
            tmp_path,
            PUPILS,
            [(Category.PUPILS, "10000001", pupil("10000001", ENTEleveAutoriteParentale=parents))],
        )
    ]
    if with_guardians:
        files.append(
            real_file(tmp_path, GUARDIANS, [(Category.GUARDIANS, "20000001", guardian("20000001"))])
        )
    return [str(f) for f in files]


def test_check_reports_a_guardian_in_no_scanned_file(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        app, ["check", *_files(tmp_path, with_guardians=True), "--report", str(report_path)]
    )
    assert result.exit_code == 0, result.output  # a warning: the files are still accepted
    assert "link_guardian_missing" in result.output
    (item,) = [i for i in json.loads(report_path.read_text())["links"]]
    assert (item["file"], item["record_id"], item["rule"]) == (
        PUPILS,
        "10000001",
        "link_guardian_missing",
    )
    assert item["field"] == "ENTEleveAutoriteParentale" and "29999999" in item["message"]
    text = report_path.read_text() + result.output
    assert "MARTIN" not in text and "Léa" not in text and "12/03/2018" not in text


def test_without_a_guardian_file_there_is_nothing_to_compare(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        app, ["check", *_files(tmp_path, with_guardians=False), "--report", str(report_path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(report_path.read_text())["links"] == []

"""``entsync generate`` and ``entsync check``; the report's JSON and terminal forms."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connectors.aaf import IngestReport, render_summary, scan_many
from entsync.cli import app
from entsync.exit_codes import ExitCode

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("restore_logging")


def _generate(out: Path) -> None:
    result = runner.invoke(
        app,
        [
            "generate",
            "--out",
            str(out),
            "--schools",
            "2",
            "--pupils-per-school",
            "15",
            "--seed",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output


def test_generate_then_check(tmp_path: Path) -> None:
    out = tmp_path / "extract"
    _generate(out)
    files = sorted(out.glob("*.xml"))
    assert len(files) == 5
    full = [f for f in files if "_Complet_" in f.name]
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "check",
            *map(str, files),
            "--report",
            str(report_path),
            "--base",
            str(next(f for f in full if "_Eleve_" in f.name)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AAF files" in result.output and "Findings by rule" in result.output
    report = IngestReport.from_json(report_path.read_text())
    assert report.ok and len(report.files) == 5
    delta = next(f for f in report.files if not f.complete)
    assert delta.rejected == 0  # modifications completed from --base
    data = json.loads(report_path.read_text())
    item = data["files"][0]["items"][0]
    assert set(item) == {"file", "line", "record_id", "field", "rule", "message", "severity"}


def test_check_refuses_and_exits_non_zero(tmp_path: Path) -> None:
    out = tmp_path / "extract"
    _generate(out)
    bad = tmp_path / "ENT_AC-TOULOUSE_Complet_20250922_Eleve_0001.xml"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><ficAlimMENESR/>')
    good = next(out.glob("*_EtabEducNat_*"))
    report_path = tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["check", str(good), str(bad), str(tmp_path / "missing.xml"), "--report", str(report_path)],
    )
    assert result.exit_code == ExitCode.FILES_REFUSED
    assert "REFUSED" in result.output
    report = IngestReport.from_json(report_path.read_text())
    refused = {f.name: f.refusal for f in report.files if f.refused}
    assert set(refused) == {bad.name, "missing.xml"}
    assert "DOCTYPE" in (refused[bad.name] or "")


def test_generate_rejects_unknown_encoding(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--encoding", "UTF-16"])
    assert result.exit_code == 2


def test_render_summary(tmp_path: Path) -> None:
    out = tmp_path / "extract"
    _generate(out)
    report = scan_many(sorted(out.glob("*_Complet_*.xml"))).report
    buffer = io.StringIO()
    render_summary(report, Console(file=buffer, width=160), max_items=5)
    text = buffer.getvalue()
    assert "AC-TOULOUSE_Complet_20250922_Eleve_0000" in text
    assert "First 5 of" in text and "held" in text
    assert IngestReport.from_json(report.to_json()) == report


def test_check_doctype_options(tmp_path: Path) -> None:
    out = tmp_path / "extract"
    _generate(out)
    school = next(out.glob("*_EtabEducNat_*"))
    text = school.read_text(encoding="utf-8")
    school.write_text(
        text.replace(
            "<ficAlimMENESR>",
            '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>',
            1,
        ),
        encoding="utf-8",
    )
    assert runner.invoke(app, ["check", str(school)]).exit_code == 0
    # the deprecated flag is still understood, and does nothing
    deprecated = runner.invoke(app, ["check", str(school), "--allow-aaf-doctype"])
    assert deprecated.exit_code == 0 and "deprecated" in deprecated.output
    refused = runner.invoke(app, ["check", str(school), "--refuse-doctype"])
    assert refused.exit_code == ExitCode.FILES_REFUSED and "--refuse-doctype" in refused.output
    by_setting = runner.invoke(app, ["check", str(school)], env={"ENTSYNC_AAF_REFUSE_DOCTYPE": "1"})
    assert (
        by_setting.exit_code == ExitCode.FILES_REFUSED
        and "ENTSYNC_AAF_REFUSE_DOCTYPE" in by_setting.output
    )

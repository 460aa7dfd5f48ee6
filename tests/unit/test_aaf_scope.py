"""Real file names: completeness and date from the name; the scope from the name, the records or
``--scope``; a complete extract without a scope is refused, never read as a delta."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.aaf import FileRejected, IngestReport, ScanConfig, events, scan
from entsync.cli import app
from entsync.exit_codes import ExitCode
from schemas.feed import Category, SnapshotCompleted, SnapshotStarted
from tests.unit.aaf_files import guardian, pupil, real_file, staff

CONFIG = ScanConfig(reference_date=date(2025, 10, 1))
DIJON = ScanConfig(reference_date=date(2025, 10, 1), scope="AC-DIJON")


def test_channel_prefix_single_school_takes_the_school(tmp_path: Path) -> None:
    name = "FULL_ENTTSSERVICES_Complet_20130117_PersEducNat_0000.xml"
    people = [(Category.STAFF, str(i), staff(str(i), "0210001A")) for i in range(3)]
    file_scan = scan(real_file(tmp_path, name, people), config=CONFIG)
    assert file_scan.complete and file_scan.extract_date == date(2013, 1, 17)
    assert (file_scan.scope, file_scan.report.scope_source) == ("0210001A", "records")
    started = next(iter(events(file_scan)))
    assert isinstance(started, SnapshotStarted) and started.scope == "0210001A"


def test_academy_wide_file_needs_the_scope_option(tmp_path: Path) -> None:
    name = "ENT2DVA-ENT16_Complet_20240916_Eleve_0000.xml"
    pupils = [(Category.PUPILS, "1", pupil("1", "0210001A")), (Category.PUPILS, "2", pupil("2"))]
    path = real_file(tmp_path, name, pupils)
    with pytest.raises(FileRejected, match="complete extract without a scope") as caught:
        scan(path, config=CONFIG)
    assert "--scope" in caught.value.reason and "never read as a delta" in caught.value.reason
    file_scan = scan(path, config=DIJON)
    assert file_scan.complete and file_scan.extract_date == date(2024, 9, 16)
    assert (file_scan.scope, file_scan.report.scope_source) == ("AC-DIJON", "option")
    evs = list(events(file_scan))
    assert isinstance(evs[-1], SnapshotCompleted) and evs[-1].scope == "AC-DIJON"


def test_bare_ent_prefix_and_one_school_of_pupils(tmp_path: Path) -> None:
    pupils = [(Category.PUPILS, str(i), pupil(str(i))) for i in range(2)]
    path = real_file(tmp_path, "ENT_Complet_20200101_Eleve_0000.xml", pupils)
    file_scan = scan(path, config=DIJON)  # the records come before the option
    assert (file_scan.scope, file_scan.report.scope_source) == ("0310100R", "records")


def test_guardians_name_no_school(tmp_path: Path) -> None:
    people = [(Category.GUARDIANS, "20000001", guardian("20000001"))]
    path = real_file(tmp_path, "ENT_Complet_20200101_PersRelEleve_0000.xml", people)
    with pytest.raises(FileRejected, match="without a scope"):
        scan(path, config=CONFIG)
    assert scan(path, config=DIJON).scope == "AC-DIJON"


def test_a_rejected_record_of_another_school_counts(tmp_path: Path) -> None:
    """A record refused for its own fault is still present in the extract: its school counts."""
    bad = pupil("2", "0210001A", ENTPersonNom=[])  # no name: rejected
    pupils = [(Category.PUPILS, "1", pupil("1")), (Category.PUPILS, "2", bad)]
    path = real_file(tmp_path, "ENT_Complet_20200101_Eleve_0000.xml", pupils)
    with pytest.raises(FileRejected, match="without a scope"):
        scan(path, config=CONFIG)


def test_our_name_scope_wins(tmp_path: Path) -> None:
    pupils = [(Category.PUPILS, "1", pupil("1"))]
    path = real_file(tmp_path, "ENT_AC-TOULOUSE_Complet_20251001_Eleve_0000.xml", pupils)
    file_scan = scan(path, config=DIJON)
    assert (file_scan.scope, file_scan.report.scope_source) == ("AC-TOULOUSE", "name")


def test_deltas_take_no_scope_from_records(tmp_path: Path) -> None:
    pupils = [(Category.PUPILS, "1", pupil("1"))]
    path = real_file(tmp_path, "ENT2DVA-ENT16_Delta_20240917_Eleve_0000.xml", pupils)
    file_scan = scan(path, config=CONFIG)
    assert not file_scan.complete and file_scan.scope is None
    assert scan(path, config=DIJON).scope == "AC-DIJON"


@pytest.mark.parametrize(
    "name",
    ["ENT_0310100R_Complet_2025092_Eleve_0000.xml", "export_Complet_eleves.xml"],
)
def test_a_name_saying_complete_must_fit(tmp_path: Path, name: str) -> None:
    path = real_file(tmp_path, name, [(Category.PUPILS, "1", pupil("1"))])
    with pytest.raises(FileRejected, match="never read as a delta"):
        scan(path, config=DIJON)


@pytest.mark.usefixtures("restore_logging")
def test_check_scope_option(tmp_path: Path) -> None:
    pupils = [(Category.PUPILS, "1", pupil("1", "0210001A")), (Category.PUPILS, "2", pupil("2"))]
    path = real_file(tmp_path, "ENT_Complet_20250922_Eleve_0000.xml", pupils)
    report = tmp_path / "r.json"
    runner = CliRunner()
    refused = runner.invoke(app, ["check", str(path), "--report", str(report)])
    assert refused.exit_code == ExitCode.FILES_REFUSED
    assert "without a scope" in (IngestReport.from_json(report.read_text()).files[0].refusal or "")
    ok = runner.invoke(app, ["check", str(path), "--scope", "AC-DIJON", "--report", str(report)])
    assert ok.exit_code == 0, ok.output
    (file_report,) = IngestReport.from_json(report.read_text()).files
    assert (file_report.scope, file_report.scope_source, file_report.complete) == (
        "AC-DIJON",
        "option",
        True,
    )
    assert runner.invoke(app, ["check", str(path), "--scope", "AC DIJON$"]).exit_code == 2

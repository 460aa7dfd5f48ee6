"""A real academy drop: categories entsync does not sync are skipped; 2D person files refused."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from connectors.aaf import (
    FileRejected,
    FileSkipped,
    ScanConfig,
    events_many,
    read_base,
    render_summary,
    scan,
    scan_many,
)
from schemas.feed import Category, PupilUpserted
from tests.unit.aaf_files import pupil, real_file

CONFIG = ScanConfig(reference_date=date(2025, 10, 1))
MEF = "ENT2DVA-ENT16_Complet_20240916_MefEducNat_0000.xml"
PUPILS = "ENT_0310100R_Complet_20240916_Eleve_0000.xml"


def _mef(folder: Path) -> Path:
    attrs = {"ENTMefJointure": ["10010012110"], "ENTLibelleMef": ["6EME"]}
    return real_file(folder, MEF, [("MefEducNat", "10010012110", attrs)])


def test_unsynced_category_skipped_while_the_others_go_on(tmp_path: Path) -> None:
    mef = _mef(tmp_path)
    pupils = real_file(tmp_path, PUPILS, [(Category.PUPILS, "1", pupil("1"))])
    result = scan_many([mef, pupils], config=CONFIG)
    assert result.report.ok
    skipped, read = result.report.files
    assert (skipped.name, skipped.skipped, skipped.refused) == (MEF, True, False)
    assert skipped.category_name == "MefEducNat" and skipped.category is None
    assert skipped.notice == "MefEducNat: category not synced (file skipped)"
    assert [s.path for s in result.scans] == [pupils]
    assert read.category_name == "Eleve" and read.published == 1
    keys = [e.key for e in events_many(result.scans) if isinstance(e, PupilUpserted)]
    assert keys == ["pupil:1"]
    out = io.StringIO()
    render_summary(result.report, Console(file=out, width=200))
    assert f"skipped {MEF}: MefEducNat: category not synced" in out.getvalue()


def test_a_skipped_file_is_never_used_unknowingly(tmp_path: Path) -> None:
    """Callers that do not know about skipping see a refusal (FileSkipped is a FileRejected)."""
    mef = _mef(tmp_path)
    with pytest.raises(FileSkipped):
        scan(mef, config=CONFIG)
    with pytest.raises(FileRejected, match="not synced"):
        read_base([mef], CONFIG)


def _pupil_2d(jointure: str) -> dict[str, list[str]]:
    """A 2D Eleve record: classes, guardian links and contacts under their 2D names."""
    return {
        "ENTPersonJointure": [jointure],
        "ENTEleveINE": ["1234567890A"],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Léa"],
        "personalTitle": ["Mme"],
        "ENTPersonDateNaissance": ["12/03/2010"],
        "ENTPersonStructRattach": ["0210001A"],
        "ENTEleveClasses": ["0210001A$6A"],
        "ENTElevePersRelEleve": ["20000001$10$1$1$0$0"],
        "mail": ["lea@example.org"],
    }


def test_2d_eleve_file_refused_by_name(tmp_path: Path) -> None:
    pupils = [(Category.PUPILS, "1", pupil("1")), (Category.PUPILS, "2", _pupil_2d("2"))]
    path = real_file(tmp_path, "ENT2DVA-ENT16_Complet_20240916_Eleve_0000.xml", pupils)
    with pytest.raises(FileRejected, match="2D Eleve file: not supported") as caught:
        scan(path, config=ScanConfig(reference_date=date(2025, 10, 1), scope="AC-DIJON"))
    for attribute in ("ENTEleveClasses", "ENTElevePersRelEleve", "mail", "personalTitle"):
        assert attribute in caught.value.reason
    assert "lea@" not in str(caught.value) and "MARTIN" not in str(caught.value)


def test_2d_guardians_refused_2d_staff_read(tmp_path: Path) -> None:
    guardian_2d = {
        "ENTPersonJointure": ["20000001"],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Noël"],
        "telephoneNumber": ["0102030405"],
        "mobile": ["0602030405"],
    }
    name = "ENT2DVA-ENT16_Delta_20240916_PersRelEleve_0000.xml"
    path = real_file(tmp_path, name, [(Category.GUARDIANS, "20000001", guardian_2d)])
    with pytest.raises(FileRejected, match="2D PersRelEleve file") as caught:
        scan(path, config=CONFIG)
    assert "mobile, telephoneNumber" in caught.value.reason
    staff_2d = {
        "ENTPersonJointure": ["30000001"],
        "ENTPersonNom": ["FABRE"],
        "ENTPersonPrenom": ["Hélène"],
        "ENTPersonStructRattach": ["0210001A"],
        "ENTPersonFonctions": ["0210001A$ENS$ENSEIGNEMENT$L0201$LETTRES CLASSIQUES"],
    }
    name = "ENT2DVA-ENT16_Complet_20240916_PersEducNat_0000.xml"
    staff_scan = scan(
        real_file(tmp_path, name, [(Category.STAFF, "30000001", staff_2d)]), config=CONFIG
    )
    assert staff_scan.report.published == 1 and staff_scan.scope == "0210001A"

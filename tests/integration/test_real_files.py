"""A real-shaped academy drop through the CLI: real names, the AAF DOCTYPE, ISO-8859-15 and
windows-1252, a category entsync does not sync; ``check`` then ``ingest`` on the local broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from connectors.aaf import IngestReport
from connectors.stream.clients import KafkaParams
from connectors.stream.reader import read_topic
from entsync.exit_codes import ExitCode
from schemas.feed import Category, PupilUpserted, SnapshotStarted, StaffUpserted
from schemas.lifecycle import FeedTopicMessage
from schemas.topics import FEED
from tests.unit.aaf_files import pupil, real_file, staff

ENTSYNC = str(Path(sys.executable).parent / "entsync")
PUPILS = "ENT2DVA-ENT16_Complet_20250922_Eleve_0000.xml"
STAFF = "FULL_ENTTSSERVICES_Complet_20250922_PersEducNat_0000.xml"
MEF = "ENT2DVA-ENT16_Complet_20250922_MefEducNat_0000.xml"


def _drop(folder: Path) -> list[Path]:
    pupils = [
        (Category.PUPILS, "91000001", pupil("91000001", ENTPersonNom=["CŒURDEROY"])),
        (Category.PUPILS, "91000002", pupil("91000002", ENTPersonPrenom=["Zoé"])),
    ]
    teachers = [
        (Category.STAFF, "93000001", staff("93000001", "0310100R", "0310200S")),
        (Category.STAFF, "93000002", staff("93000002", "0310200S")),
    ]
    teachers[1][2]["ENTPersonNom"] = ["LEBŒUF"]
    mef = [("MefEducNat", "10010012110", {"ENTLibelleMef": ["6EME"]})]
    return [
        real_file(folder, PUPILS, pupils, "ISO-8859-15"),
        real_file(folder, STAFF, teachers, "windows-1252"),
        real_file(folder, MEF, mef, "ISO-8859-15"),
    ]


def _entsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENTSYNC, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_real_drop_checked_then_ingested(local_services: object, tmp_path: Path) -> None:
    bootstrap = local_services.kafka_bootstrap  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": bootstrap,
        "ENTSYNC_LOG_FORMAT": "json",
    }
    files = [str(p) for p in _drop(tmp_path)]
    assert b"<!DOCTYPE ficAlimMENESR" in Path(files[0]).read_bytes()

    # The staff file spans two schools and its name gives no scope: refused without --scope.
    checked = _entsync(env, "check", *files, "--report", str(tmp_path / "c.json"))
    assert checked.returncode == ExitCode.FILES_REFUSED
    refusals = {
        f.name: f.refusal for f in IngestReport.from_json((tmp_path / "c.json").read_text()).files
    }
    assert "without a scope" in (refusals[STAFF] or "") and refusals[PUPILS] is None

    report_path = tmp_path / "r.json"
    done = _entsync(env, "ingest", *files, "--scope", "AC-TOULOUSE", "--report", str(report_path))
    assert done.returncode == 0, done.stdout + done.stderr
    report = IngestReport.from_json(report_path.read_text())
    by_name = {f.name: f for f in report.files}
    assert report.ok and by_name[MEF].skipped and by_name[MEF].notice
    assert (by_name[PUPILS].scope, by_name[PUPILS].scope_source) == ("0310100R", "records")
    assert (by_name[STAFF].scope, by_name[STAFF].scope_source) == ("AC-TOULOUSE", "option")
    assert f"skipped {MEF}" in " ".join(done.stdout.split())

    ours = [
        m.root
        for m in (
            FeedTopicMessage.model_validate_json(r.value)
            for r in asyncio.run(read_topic(KafkaParams(bootstrap), FEED.name))
            if r.value is not None
        )
        if getattr(getattr(m.root, "source", None), "file_name", None) in (PUPILS, STAFF)
    ]
    names = {e.pupil.jointure: e.pupil.last_name for e in ours if isinstance(e, PupilUpserted)}
    assert names == {"91000001": "CŒURDEROY", "91000002": "MARTIN"}
    staff_names = {
        e.staff.jointure: e.staff.last_name for e in ours if isinstance(e, StaffUpserted)
    }
    assert staff_names == {"93000001": "FABRE", "93000002": "LEBŒUF"}
    scopes = {e.category: e.scope for e in ours if isinstance(e, SnapshotStarted)}
    assert scopes == {Category.PUPILS: "0310100R", Category.STAFF: "AC-TOULOUSE"}

"""The ``entsync audit`` commands that need no broker, on an SQLite store in a state dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.auditstore import open_store
from entsync.cli import app
from schemas.auditstore import ExportedAuditRecord
from tests.unit.test_audit_store import load

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ENTSYNC_AUDIT_DB_URL", "ENTSYNC_AUDIT_RETENTION_DAYS", "ENTSYNC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with open_store(None, tmp_path) as store:
        load(store)
    return tmp_path


def audit(state: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args, "--state-dir", str(state)])
    return result.exit_code, result.output


def test_search_export_and_gaps(state: Path) -> None:
    code, out = audit(state, "search", "--school", "0310100R", "--since", "2026-01-02", "--json")
    assert code == 0
    lines = [ExportedAuditRecord.model_validate_json(line) for line in out.splitlines()]
    assert [(r.partition, r.offset) for r in lines] == [(0, 1), (0, 2), (0, 3)]
    code, out = audit(state, "export", "--format", "jsonl", "--out", str(state / "x.jsonl"))
    assert code == 0 and "7 events written" in out
    assert len((state / "x.jsonl").read_text().splitlines()) == 7
    code, out = audit(state, "gaps")
    assert code == 0 and "entsync.audit.v1[1]: offsets 2-3" in out and "1 gap(s)" in out
    code, out = audit(state, "history", "p-1")
    assert code == 0 and "2 change(s)" in out


def test_verify_exit_codes(state: Path) -> None:
    code, out = audit(state, "verify")
    assert code == 0 and "audit store: event 7; chain verified" in out and "gap: offsets 2-3" in out
    with open_store(None, state) as store:
        store.backend.execute("UPDATE audit_record SET raw = '{}' WHERE msg_offset = 1")
    code, out = audit(state, "verify")
    assert code == 1 and "TAMPERED" in out
    assert out.count("was changed") == 2  # offset 1 of each partition


def test_prune_uses_the_configured_retention(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = audit(state, "prune")
    assert code == 2 and "ENTSYNC_AUDIT_RETENTION_DAYS" in out
    monkeypatch.setenv("ENTSYNC_AUDIT_RETENTION_DAYS", "36500")
    code, out = audit(state, "prune")
    assert code == 0 and "0 records older than 36500 days pruned" in out
    code, out = audit(state, "prune", "--days", "1")
    assert code == 0 and "7 records older than 1 days pruned" in out
    code, out = audit(state, "verify")
    assert code == 0 and "anchor offset" in out

"""Issue 19, items 3 and 4 (logins), on the real broker and slapd: values the directory confuses.

Three cases a tester found: class codes ``C02`` and ``c02`` in one school; a teacher whose
academic login is a pupil's generated login; two staff with one academic login (``hfabre``,
``HFabre``). ``check`` lists each conflict; the staff feed is synced first (as in the school
year: staff in August, ONDE after the switchover), then the families; no write is refused (the
worker exits 4 on any refused write) and no class group mixes pupils silently.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from connectors.aaf import IngestReport
from connectors.aaf.conflicts import CLASS_RULE, GENERATED_RULE, SHARED_RULE
from connectors.ldap import search_entries
from connectors.stream.reader import read_topic
from schemas.audit import AuditMessage, IdentityHeld
from schemas.feed import Category
from schemas.topics import AUDIT
from sync import ids
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline
from tests.unit.aaf_files import guardian, pupil, real_file, staff

pytestmark = pytest.mark.integration

fresh_broker = e2e.fresh_broker
pipeline = e2e.pipeline

SAMPLES = Path(__file__).parents[2] / "entsync" / "samples"
SCHOOL = "0310100R"


def _pupil(
    jointure: str, ine: str, code: str, first: str, last: str, g: str
) -> dict[str, list[str]]:
    return pupil(
        jointure,
        ENTEleveINE=[ine],
        ENTPersonPrenom=[first],
        ENTPersonNom=[last],
        ENTPersonClasses=[f"{SCHOOL}$2025$CP${code}$CP {code}"],
        ENTEleveAutoriteParentale=[f"{g}$10"],
    )


def _files(folder: Path) -> tuple[list[str], list[str]]:
    schools = folder / "ENT_AC-TOULOUSE_Complet_20250922_EtabEducNat_0000.xml"
    shutil.copy(SAMPLES / schools.name, schools)
    login = "ENTPersonLogin"
    teachers = real_file(
        folder,
        "ENT_0310100R_Delta_20250922_PersEducNat_0000.xml",
        [
            (Category.STAFF, "93000001", {**staff("93000001", SCHOOL), login: ["jean.dupont"]}),
            (Category.STAFF, "93000002", {**staff("93000002", SCHOOL), login: ["hfabre"]}),
            (Category.STAFF, "93000003", {**staff("93000003", SCHOOL), login: ["HFabre"]}),
        ],
    )
    pupils = real_file(
        folder,
        "ENT_0310100R_Delta_20250922_Eleve_0000.xml",
        [
            (
                Category.PUPILS,
                "91000001",
                _pupil("91000001", "1234567890A", "C02", "Jean", "DUPONT", "92000001"),
            ),
            (
                Category.PUPILS,
                "91000002",
                _pupil("91000002", "1234567890B", "c02", "Zoé", "PETIT", "92000002"),
            ),
        ],
    )
    guardians = real_file(
        folder,
        "ENT_0310100R_Delta_20250922_PersRelEleve_0000.xml",
        [
            (Category.GUARDIANS, g, guardian(g, ENTPersRelEleveEleve=[p]))
            for g, p in (("92000001", "91000001"), ("92000002", "91000002"))
        ],
    )
    return [str(schools), str(teachers)], [str(pupils), str(guardians)]


def _people(p: Pipeline) -> dict[str, str]:
    """Source jointure → login, for every person entry."""
    found = search_entries(
        p.ldap, f"ou=people,{p.base_dn}", "(objectClass=ENTPerson)", ["*"], scope="one"
    )
    return {
        e.get("ENTPersonJointure")[0].rsplit("$", 1)[-1]: e.get("ENTPersonLogin")[0] for e in found
    }


def test_conflicts_reported_then_decided_by_rule(pipeline: Pipeline, tmp_path: Path) -> None:
    staff_files, family_files = _files(tmp_path)
    report_path = tmp_path / "check.json"
    pipeline.ok("check", *staff_files, *family_files, "--report", str(report_path))
    report = IngestReport.from_json(report_path.read_text())
    by_rule: dict[str, set[str | None]] = {}
    for item in report.conflicts:
        by_rule.setdefault(item.rule, set()).add(item.record_id)
    assert by_rule[CLASS_RULE] == {"91000001", "91000002"}
    assert by_rule[SHARED_RULE] == {"93000002", "93000003"}
    assert by_rule[GENERATED_RULE] == {"93000001"}

    pipeline.ok("run", *staff_files)  # exit 0: no write refused
    pipeline.ok("run", *family_files)
    people = _people(pipeline)
    assert people["93000001"] == "jean.dupont"
    assert people["91000001"] == "jean.dupont2"  # the pupil namesake: suffixed, not refused
    assert "91000002" in people and "92000001" in people and "92000002" in people
    # Both hfabre are held; one may have been written before the other's claim came.
    assert sum(j in people for j in ("93000002", "93000003")) <= 1

    groups = search_entries(
        pipeline.ldap,
        f"ou=groups,{pipeline.base_dn}",
        f"(cn={SCHOOL}$c02$*)",  # caseIgnoreMatch: finds every spelling
        ["cn", "member"],
        scope="one",
    )
    names = sorted(g.get("cn")[0] for g in groups)
    assert names == [f"{SCHOOL}$C02$guardians", f"{SCHOOL}$C02$pupils"]  # one class, one name
    assert all(len(g.get("member")) == 2 for g in groups)

    # The holds changed no entry: the audit topic names them (ids and reason, no value).
    held = [
        event
        for m in asyncio.run(read_topic(pipeline.kafka, AUDIT.name))
        if m.value is not None
        and isinstance(event := AuditMessage.model_validate_json(m.value).root, IdentityHeld)
    ]
    shared = {ids.staff_id("entsync", j) for j in ("93000002", "93000003")}
    assert shared <= {h.entity_id for h in held if h.reason == SHARED_RULE}
    assert not any("hfabre" in m for m in (h.model_dump_json() for h in held))

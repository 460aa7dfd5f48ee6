"""INE conflicts on real services: records carrying one INE that are not the same person.

Two cases found on the real broker and slapd (issue 19, item 2): the same INE on two pupils of
two schools in one extract, and an INE moving from one child (Alice) to another (Dan) in the
next extract. Both are held (no entry, no rewrite, no links), reported by ``check`` and
``ingest`` (record ids and rule only), audited, then settled by ``entsync admin resolve-ine``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connectors.ldap import DirectoryEntry, search_entries
from connectors.stream.reader import read_topic
from schemas.admin import AdminCommandDecided
from schemas.audit import RecordsHeld
from schemas.feed import Category
from schemas.topics import ADMIN_DECISIONS, AUDIT
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline
from tests.unit.aaf_files import guardian, pupil, real_file

pytestmark = pytest.mark.integration

fresh_broker = e2e.fresh_broker
pipeline = e2e.pipeline

R, S = "0310100R", "0310200S"
INE_X, INE_Y = "1234567890A", "2234567890B"
DAY1, DAY2 = "20260910", "20260911"


def _school(uai: str, siren: str) -> dict[str, list[str]]:
    return {
        "ENTStructureJointure": [uai],
        "ENTStructureUAI": [uai],
        "ENTStructureNomCourant": [f"ECOLE {uai}"],
        "ENTStructureSIREN": [siren],
    }


def _child(jointure: str, school: str, ine: str, first: str, last: str, born: str, parent: str):  # type: ignore[no-untyped-def]
    return pupil(
        jointure,
        school,
        ENTEleveINE=[ine],
        ENTPersonPrenom=[first],
        ENTPersonNom=[last],
        ENTPersonDateNaissance=[born],
        ENTEleveAutoriteParentale=[f"{parent}$10"],
        ENTPersonClasses=[f"{school}$2026$CP$C01$CP A"],
    )


def _parent(jointure: str, child: str, first: str) -> dict[str, list[str]]:
    return guardian(jointure, ENTPersRelEleveEleve=[child], ENTPersonPrenom=[first])


def _extracts(folder: Path) -> tuple[list[str], list[str]]:
    """Day 1: Lea (R) and Bob (S) share INE X; Alice (R) has INE Y. Day 2 (a delta): Dan, a
    new pupil of R, comes with Alice's INE Y."""
    day1 = [
        real_file(
            folder,
            f"ENT_ACTEST_Complet_{DAY1}_EtabEducNat_0000.xml",
            [
                (Category.SCHOOLS, R, _school(R, "213105554")),
                (Category.SCHOOLS, S, _school(S, "213105555")),
            ],
        ),
        real_file(
            folder,
            f"ENT_{R}_Complet_{DAY1}_Eleve_0000.xml",
            [
                (
                    Category.PUPILS,
                    "10000001",
                    _child("10000001", R, INE_X, "Léa", "MARTIN", "12/03/2019", "20000001"),
                ),
                (
                    Category.PUPILS,
                    "10000003",
                    _child("10000003", R, INE_Y, "Alice", "ROUX", "05/05/2019", "20000003"),
                ),
            ],
        ),
        real_file(
            folder,
            f"ENT_{S}_Complet_{DAY1}_Eleve_0000.xml",
            [
                (
                    Category.PUPILS,
                    "10000002",
                    _child("10000002", S, INE_X, "Bob", "DURAND", "02/07/2018", "20000002"),
                )
            ],
        ),
        real_file(
            folder,
            f"ENT_ACTEST_Complet_{DAY1}_PersRelEleve_0000.xml",
            [
                (Category.GUARDIANS, "20000001", _parent("20000001", "10000001", "Anne")),
                (Category.GUARDIANS, "20000002", _parent("20000002", "10000002", "Paul")),
                (Category.GUARDIANS, "20000003", _parent("20000003", "10000003", "Rose")),
            ],
        ),
    ]
    day2 = [
        real_file(
            folder,
            f"ENT_{R}_Delta_{DAY2}_Eleve_0000.xml",
            [
                (
                    Category.PUPILS,
                    "10000004",
                    _child("10000004", R, INE_Y, "Dan", "BLANC", "30/11/2018", "20000004"),
                )
            ],
        ),
        real_file(
            folder,
            f"ENT_ACTEST_Delta_{DAY2}_PersRelEleve_0000.xml",
            [(Category.GUARDIANS, "20000004", _parent("20000004", "10000004", "Marc"))],
        ),
    ]
    return [str(p) for p in day1], [str(p) for p in day2]


def _person(p: Pipeline, jointure: str) -> DirectoryEntry | None:
    found = search_entries(
        p.ldap, f"ou=people,{p.base_dn}", f"(ENTPersonJointure=ONDE${jointure})", ["*"], scope="one"
    )
    return found[0] if found else None


def _conflicts(p: Pipeline, command: str, files: list[str], out: Path) -> list[tuple[str, str]]:
    p.ok(command, *files, "--report", str(out))
    report = json.loads(out.read_text())
    text = out.read_text()
    for value in (INE_X, INE_Y, "DURAND", "BLANC", "ROUX", "2018", "2019"):
        assert value not in text  # record ids and rule only
    return sorted((i["record_id"], i["rule"]) for i in report["conflicts"])


def _held_events(p: Pipeline) -> list[RecordsHeld]:
    found = []
    for m in asyncio.run(read_topic(p.kafka, AUDIT.name)):
        if m.value is not None and json.loads(m.value)["type"] == "records.held":
            found.append(RecordsHeld.model_validate_json(m.value))
    return found


def _work(p: Pipeline) -> None:
    p.ok("worker", "--until-idle", "--timeout", "120")


def test_ine_conflicts_are_held_reported_and_resolved(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    day1, day2 = _extracts(tmp_path)
    held = [("10000001", "ine_conflict"), ("10000002", "ine_conflict")]
    assert _conflicts(p, "check", day1, tmp_path / "check1.json") == held
    assert _conflicts(p, "ingest", day1, tmp_path / "ingest1.json") == held
    _work(p)

    # Same INE in two schools: neither child gets the INE's account, nor Bob's only guardian.
    assert _person(p, "10000001") is None and _person(p, "10000002") is None
    assert _person(p, "20000002") is None
    alice = _person(p, "10000003")
    assert alice is not None and alice.get("givenName") == ("Alice",)
    rose = _person(p, "20000003")
    assert rose is not None and rose.get("ENTAuxPersRelEleveEleve") == (alice.dn,)
    (first,) = [e for e in _held_events(p) if e.unresolved]
    assert first.held in (("pupil:10000001",), ("pupil:10000002",))
    assert first.rule == "names_and_birth_date_differ"

    # The next extract gives Alice's INE to Dan: held, Alice's entry and guardian unchanged.
    together = [f for f in day1 if "_Eleve_" in f and R in f] + day2
    assert _conflicts(p, "check", together, tmp_path / "check2.json") == [
        ("10000003", "ine_conflict"),
        ("10000004", "ine_conflict"),
    ]
    assert _conflicts(p, "ingest", day2, tmp_path / "ingest2.json") == []  # Alice not in the call
    _work(p)
    assert _person(p, "10000003") == alice  # not rewritten as Dan: same names, login, everything
    assert _person(p, "20000003") == rose
    assert _person(p, "10000004") is None and _person(p, "20000004") is None
    assert any(e.held == ("pupil:10000004",) and e.unresolved for e in _held_events(p))

    # Resolved: INE X is Lea's (Bob stays held), INE Y is Alice's (Dan stays held).
    refused = p.cli("admin", "resolve-ine", "--ine", INE_X, "--ine-holder", "1", "--same-person")
    assert refused.returncode == 1
    p.ok("admin", "resolve-ine", "--ine", INE_X, "--ine-holder", "10000001")
    p.ok("admin", "resolve-ine", "--ine", INE_Y, "--ine-holder", "ONDE$10000003")
    _work(p)
    lea = _person(p, "10000001")
    assert lea is not None and lea.get("givenName") == ("Léa",)
    anne = _person(p, "20000001")
    assert anne is not None and anne.get("ENTAuxPersRelEleveEleve") == (lea.dn,)
    assert _person(p, "10000002") is None and _person(p, "20000002") is None
    assert _person(p, "10000003") == alice and _person(p, "10000004") is None
    decided = [
        AdminCommandDecided.model_validate_json(m.value)
        for m in asyncio.run(read_topic(p.kafka, ADMIN_DECISIONS.name))
        if m.value is not None
    ]
    assert sorted((d.command, d.outcome, d.holder) for d in decided) == [
        ("resolve-ine", "accepted", "pupil:10000001"),
        ("resolve-ine", "accepted", "pupil:10000003"),
    ]
    last = {e.entity_id: e for e in _held_events(p)}
    assert {e.held for e in last.values()} == {("pupil:10000002",), ("pupil:10000004",)}
    assert not any(e.unresolved for e in last.values())

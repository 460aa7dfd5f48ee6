"""Replay on real services: a continuous history (full extract, delta, a later complete extract
without one pupil, a sweep at a simulated date) is predicted exactly by a dry run, a manual
LDAP edit is reported as exactly that difference, and a real replay from the beginning into an
emptied directory rebuilds the same LDIF without touching the live topics.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import BRANCHES, clear_subtree, export_ldif, search_entries
from connectors.ldap.connection import connection
from connectors.stream.reader import read_topic
from schemas.topics import AUDIT, ENTITIES, FEED
from sync.entries import source_key
from tests.integration import test_lifecycle_e2e as lifecycle_e2e
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline

# Fixtures shared with the pipeline tests.
fresh_broker, pipeline = e2e.fresh_broker, e2e.pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def extract(tmp_path: Path) -> dict[str, Path]:
    generated = generate(
        tmp_path / "extract", GeneratorConfig(schools=2, pupils_per_school=12, seed=7)
    )
    return {str(k): Path(v) for k, v in generated.files.items()}


def dry_run(p: Pipeline, *options: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    lines = [json.loads(x) for x in p.ok("replay", "--dry-run", "--json", *options).splitlines()]
    *changes, summary = lines
    return changes, summary


def history(p: Pipeline, extract: dict[str, Path]) -> tuple[str, datetime]:
    """The continuous run; returns the DN of the pupil who left, and a time before he left."""
    full = e2e.full_files(extract)
    p.ok("run", *full)
    p.ok("run", *(f"--base={f}" for f in full), str(extract["delta"]))
    delta_text = extract["delta"].read_text(encoding="utf-8")
    pupils = search_entries(p.ldap, f"ou=people,{p.base_dn}", "(objectClass=ENTEleve)", ["*"])
    leaver = next(e for e in pupils if source_key(e.get("ENTPersonJointure")[0]) not in delta_text)
    before_leaving = datetime.now(UTC)
    leaver_key = source_key(leaver.get("ENTPersonJointure")[0])
    later = lifecycle_e2e.pupils_file(extract, 5, None, {leaver_key})
    p.ok("run", str(later))
    sweep_at = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    p.ok("lifecycle", "sweep", "--future", "--now", sweep_at)
    p.ok("worker", "--until-idle", "--timeout", "240")
    return leaver.dn, before_leaving


def live_counts(p: Pipeline) -> dict[str, int]:
    async def count() -> dict[str, int]:
        return {t.name: len(await read_topic(p.kafka, t.name)) for t in (FEED, ENTITIES, AUDIT)}

    return asyncio.run(count())


def test_dry_run_and_replay_rebuild_the_continuous_directory(
    pipeline: Pipeline, extract: dict[str, Path]
) -> None:
    p = pipeline
    leaver_dn, before_leaving = history(p, extract)
    leaver = search_entries(p.ldap, leaver_dn, attributes=["entsyncAccountState"], scope="base")
    assert leaver[0].get("entsyncAccountState") == ("predeleted",)
    saved = export_ldif(p.ldap, p.base_dn)
    assert "entsyncDisappearedAt:" in saved and "entsyncPredeletedAt:" in saved

    # The pure core on the topics' inputs predicts the directory exactly.
    changes, summary = dry_run(p, "--from-beginning")
    assert changes == [] and summary["summary"] == {}
    assert int(summary["inputs"]) > 50  # type: ignore[call-overload]
    assert export_ldif(p.ldap, p.base_dn) == saved

    # A manual edit: one attribute of one pupil changed, one guardian deleted.
    pupils = search_entries(p.ldap, f"ou=people,{p.base_dn}", "(objectClass=ENTEleve)", ["*"])
    edited = next(e for e in pupils if e.dn != leaver_dn)
    guardian = search_entries(
        p.ldap, f"ou=people,{p.base_dn}", "(objectClass=ENTAuxPersRelEleve)", ["1.1"]
    )[0]
    with connection(p.ldap) as conn:
        assert conn.modify(edited.dn, {"sn": [(MODIFY_REPLACE, ["Edited-By-Hand"])]})
        assert conn.delete(guardian.dn)
    changes, summary = dry_run(p, "--from-beginning")
    assert [(c["dn"], c["action"], c["attributes"]) for c in changes] == sorted(
        [(edited.dn, "modify", ["sn"]), (guardian.dn, "add", changes_of(changes, guardian.dn))],
        key=lambda c: str(c[0]).lower(),
    )
    assert "Edited-By-Hand" not in json.dumps(changes)
    school = re.search(r"ou=([^,]+),ou=structures", edited.get("ENTPersonStructRattach")[0])
    assert school is not None
    assert summary["summary"][school.group(1)]["modify"] == 1  # type: ignore[index]

    # --scope: that school's entries only; --since: only what inputs since then changed;
    # --until: the directory as it was before the pupil left.
    scoped, _ = dry_run(p, "--from-beginning", "--scope", school.group(1))
    assert edited.dn in {c["dn"] for c in scoped}
    others = {str(k) for k in summary["summary"]} - {school.group(1)}  # type: ignore[union-attr]
    for other in others - {"-"}:
        assert all(
            c["dn"] != edited.dn for c in dry_run(p, "--from-beginning", "--scope", other)[0]
        )
    assert dry_run(p, "--since", datetime.now(UTC).isoformat())[0] == []
    before, _ = dry_run(p, "--from-beginning", "--until", before_leaving.isoformat())
    by_dn = {c["dn"]: c for c in before}
    assert "entsyncaccountstate" in by_dn[leaver_dn]["attributes"]  # type: ignore[operator]
    bad = p.cli("replay", "--dry-run", "--since", "2026-01-02", "--until", "2026-01-01")
    assert bad.returncode == 1 and "is after --until" in bad.stderr
    both = p.cli("replay", "--dry-run", "--from-beginning", "--since", "2026-01-01")
    assert both.returncode == 2 and "exactly one" in both.stderr

    # A real replay refuses a directory that is not empty...
    refused = p.cli("replay", "--from-beginning")
    assert refused.returncode == 1 and "not empty" in refused.stderr
    # ...and into an emptied one rebuilds what the continuous run built, in its own group and
    # topics: the live topics get nothing.
    for branch in BRANCHES:
        clear_subtree(p.ldap, f"ou={branch},{p.base_dn}")
    live = live_counts(p)
    out = p.ok("replay", "--from-beginning", "--replay-id", "t1", "--timeout", "400")
    assert "replay t1:" in out and "entsync-replay-t1" in out
    assert export_ldif(p.ldap, p.base_dn) == saved
    assert live_counts(p) == live
    private = asyncio.run(read_topic(p.kafka, f"{AUDIT.name}.replay-t1"))
    assert private, "the replay's audit events go to its own topic"
    assert dry_run(p, "--from-beginning")[0] == []

    for branch in BRANCHES:
        clear_subtree(p.ldap, f"ou={branch},{p.base_dn}")
    again = p.cli("replay", "--from-beginning", "--replay-id", "t1")
    assert again.returncode == 1 and "already used" in again.stderr


def changes_of(changes: list[dict[str, object]], dn: str) -> object:
    return next((c["attributes"] for c in changes if c["dn"] == dn), None)

"""The account lifecycle on real services: absence from complete extracts, the mass-deletion
guard and its holds, the sweeper (dry run, pre-deletion, deletion), the school-year commands.

Generated AAF files go through the real ``entsync`` CLI (ingest, worker, holds, lifecycle,
year) against a fresh broker and the session's slapd.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import export_ldif, search_entries
from connectors.stream.reader import read_topic
from sync.entries import JointureSources, jointure, source_key
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline

# Fixtures shared with the pipeline tests.
fresh_broker, pipeline = e2e.fresh_broker, e2e.pipeline

pytestmark = pytest.mark.integration

REQUEST = re.compile(r"<addRequest>.*?</addRequest>\n", re.DOTALL)


@pytest.fixture
def extract(tmp_path: Path) -> dict[str, Path]:
    config = GeneratorConfig(schools=2, pupils_per_school=12, seed=11, faults=False, delta=False)
    generated = generate(tmp_path / "extract", config)
    return {str(k): Path(v) for k, v in generated.files.items()}


def pupils_file(extract: dict[str, Path], day: int, keep: set[str] | None, drop: set[str]) -> Path:
    """A later complete Eleve extract of the same scope, with some pupils left out."""
    original = extract["Eleve"]
    text = original.read_text(encoding="utf-8")

    def kept(match: re.Match[str]) -> str:
        jointure = re.search(r"<identifier><id>([^<]+)</id>", match.group(0))
        assert jointure is not None
        j = jointure.group(1)
        return match.group(0) if (keep is None or j in keep) and j not in drop else ""

    name = original.name.replace("_20250922_", f"_202509{22 + day:02d}_")
    path = original.parent / f"day{day}" / name
    path.parent.mkdir()
    path.write_text(REQUEST.sub(kept, text), encoding="utf-8")
    return path


def pupils(p: Pipeline) -> dict[str, dict[str, tuple[str, ...]]]:
    """Pupil entries by jointure."""
    found = search_entries(p.ldap, f"ou=people,{p.base_dn}", "(objectClass=ENTEleve)", ["*"])
    return {source_key(e.get("ENTPersonJointure")[0]): dict(e.attributes) for e in found}


def state(entry: dict[str, tuple[str, ...]]) -> str:
    return entry["entsyncAccountState"][0]


def holds(p: Pipeline) -> list[dict[str, object]]:
    out = p.ok("holds", "list", "--json")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run(p: Pipeline, *files: Path) -> None:
    p.ok("ingest", *map(str, files))
    p.ok("worker", "--until-idle", "--timeout", "240")


def test_absence_guard_holds_and_sweeper(pipeline: Pipeline, extract: dict[str, Path]) -> None:
    p = pipeline
    run(p, *(extract[c] for c in ("EtabEducNat", "PersEducNat", "PersRelEleve", "Eleve")))
    before = pupils(p)
    assert len(before) >= 10 and all(state(e) == "active" for e in before.values())
    leaver = sorted(before)[0]
    by_jointure = f"(ENTPersonJointure={jointure(JointureSources().onde, leaver)})"
    leaver_dn = search_entries(p.ldap, f"ou=people,{p.base_dn}", by_jointure, ["1.1"])[0].dn

    # A complete extract without one pupil: that pupil disappears, nobody else.
    run(p, pupils_file(extract, 1, None, {leaver}))
    after = pupils(p)
    assert state(after[leaver]) == "disappeared" and "entsyncDisappearedAt" in after[leaver]
    assert all(state(e) == "active" for j, e in after.items() if j != leaver)
    assert holds(p) == []

    # A complete extract with only two pupils: held by the guard, nothing marked.
    kept = set(sorted(before)[1:3])
    run(p, pupils_file(extract, 2, kept, set()))
    (hold,) = holds(p)
    assert hold["outcome"] == "held" and hold["absent"] == len(before) - 3
    assert sum(state(e) == "active" for e in pupils(p).values()) == len(before) - 1
    refused = p.cli("holds", "approve", "no-such-hold")
    assert refused.returncode == 1 and "no open hold" in refused.stderr

    p.ok("holds", "approve", str(hold["snapshot_id"])[:10])
    p.ok("worker", "--until-idle", "--timeout", "240")
    assert holds(p) == []
    now_states = {j: state(e) for j, e in pupils(p).items()}
    assert sorted(j for j, s in now_states.items() if s == "active") == sorted(kept)

    # The sweeper: a dry run changes nothing, then pre-deletion, then deletion.
    later = datetime.now(UTC) + timedelta(days=91)
    snapshot_before = export_ldif(p.ldap, p.base_dn)
    dry = p.ok("lifecycle", "sweep", "--dry-run", "--now", later.isoformat(), "--json")
    planned = [json.loads(line) for line in dry.splitlines() if line.strip()]
    assert {x["to"] for x in planned} == {"predeleted"}
    assert sum(x["kind"] == "pupil" for x in planned) == len(before) - 2
    assert export_ldif(p.ldap, p.base_dn) == snapshot_before

    p.ok("lifecycle", "sweep", "--future", "--now", later.isoformat())
    p.ok("worker", "--until-idle", "--timeout", "240")
    entry = pupils(p)[leaver]
    assert state(entry) == "predeleted" and "ENTPersonStructRattach" not in entry
    groups = search_entries(p.ldap, f"ou=groups,{p.base_dn}", f"(member={leaver_dn})", ["1.1"])
    assert groups == []

    p.ok("lifecycle", "sweep", "--future", "--now", (later + timedelta(days=91)).isoformat())
    p.ok("worker", "--until-idle", "--timeout", "240")
    remaining = pupils(p)
    assert leaver not in remaining and sorted(remaining) == sorted(kept)


def test_freeze_then_switchover_retires_classes(
    pipeline: Pipeline, extract: dict[str, Path]
) -> None:
    p = pipeline
    run(p, *(extract[c] for c in ("EtabEducNat", "PersEducNat", "PersRelEleve", "Eleve")))
    before = pupils(p)
    classes = search_entries(
        p.ldap, f"ou=groups,{p.base_dn}", "(objectClass=ENTClasse)", ["entsyncSchool"]
    )
    assert classes

    p.ok("year", "freeze")
    run(p, pupils_file(extract, 1, set(sorted(before)[:2]), set()))
    assert all(state(e) == "active" for e in pupils(p).values())
    (frozen,) = [
        json.loads(line)
        for line in p.ok("holds", "list", "--all", "--json").splitlines()
        if '"Eleve"' in line and "frozen" in line
    ]
    assert frozen["absent"] == len(before) - 2

    bad = p.cli("year", "switchover", "2026-2028")
    assert bad.returncode == 1 and "not a school year" in bad.stderr
    out = p.ok("year", "switchover", "2026-2027")
    schools = {e.get("entsyncSchool")[0] for e in classes}
    assert f"{len(classes)} class groups of {len(schools)} schools" in out
    p.ok("worker", "--until-idle", "--timeout", "240")
    assert search_entries(p.ldap, f"ou=groups,{p.base_dn}", "(objectClass=ENTClasse)") == []
    after = pupils(p)
    assert all(e.get("ENTPersonStructRattach") for e in after.values())
    # no class left: SDET's mandatory ENTEleveClasses names the school and an empty class
    assert all(
        state(e) == "active" and e["ENTEleveClasses"] == (f"{e['ENTPersonStructRattach'][0]}$",)
        for e in after.values()
    )
    purged = asyncio.run(read_topic(p.kafka, "entsync.scolarity.v1"))
    assert sum(len(json.loads(m.value)["groups"]) for m in purged) == len(classes)
    # Done once: the same or an earlier year again would retire the new year's classes.
    for again in ("2026-2027", "2025-2026"):
        refused = p.cli("year", "switchover", again)
        assert refused.returncode == 1 and "already done" in refused.stderr, refused.stderr
    assert len(asyncio.run(read_topic(p.kafka, "entsync.scolarity.v1"))) == len(purged)

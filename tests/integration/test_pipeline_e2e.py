"""The whole pipeline on real services: AAF files -> broker -> faust worker -> slapd.

Each test gets a fresh in-memory broker (topics, offsets and tables start empty) and an empty
directory on the session's slapd; the real ``entsync`` CLI runs in subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.aaf import collect_records, events_many, scan_many
from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import LdapParams, count_entries, export_ldif, search_entries
from connectors.ldap.connection import close_quietly, connect
from connectors.services import broker
from connectors.services.process import free_port, stop_pid
from connectors.stream.clients import KafkaParams
from connectors.stream.publisher import FeedPublisher
from connectors.stream.reader import read_topic
from connectors.stream.topics import ensure_topics
from schemas.audit import AuditMessage, DirectoryChanged
from schemas.entities import Cause
from schemas.feed import (
    Category,
    ClassAssignment,
    FeedEvent,
    Guardian,
    GuardianUpserted,
    Pupil,
    PupilUpserted,
    School,
    SchoolUpserted,
    SourceRef,
    Staff,
    StaffUpserted,
    payload_version,
    record_key,
)
from schemas.topics import AUDIT, FEED
from sync import dit, ids
from sync.diff import values_digest
from sync.reconcile import Context
from sync.simulator import run_to_quiescence

pytestmark = pytest.mark.integration

ENTSYNC = str(Path(sys.executable).parent / "entsync")


@dataclass
class Pipeline:
    env: dict[str, str]
    bootstrap: str
    ldap: LdapParams
    base_dn: str

    @property
    def kafka(self) -> KafkaParams:
        return KafkaParams(self.bootstrap)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ENTSYNC, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"entsync {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own, stopped by pid at the end."""
    layout = broker.BrokerLayout(tmp_path / "broker")
    layout.state_dir.mkdir()
    port = free_port()
    pid = broker.start(broker.find_broker(), layout, port)
    try:
        broker.wait_ready(port=port, pid=pid, layout=layout, timeout=20)
        yield broker.bootstrap(port)
    finally:
        stop_pid(pid, marker=broker.marker(port))


AUDIT_DIGEST_KEY = "e2e-audit-digest-key-0123456789-abcdef"


@pytest.fixture
def pipeline(
    fresh_broker: str, clean_directory: LdapParams, local_services: object, tmp_path: Path
) -> Pipeline:
    base_dn = local_services.base_dn  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": fresh_broker,
        "ENTSYNC_LDAP_URL": clean_directory.url,
        "ENTSYNC_LDAP_BIND_DN": clean_directory.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": clean_directory.password,
        "ENTSYNC_LDAP_BASE_DN": base_dn,
        # Connections set explicitly, as in a deployment: the digest key must be too.
        "ENTSYNC_AUDIT_DIGEST_KEY": AUDIT_DIGEST_KEY,
        "ENTSYNC_LOG_FORMAT": "json",
    }
    return Pipeline(env=env, bootstrap=fresh_broker, ldap=clean_directory, base_dn=base_dn)


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("extract")
    generated = generate(out, GeneratorConfig(schools=2, pupils_per_school=12, seed=7))
    return {str(k): Path(v) for k, v in generated.files.items()}


def full_files(extract: dict[str, Path]) -> list[str]:
    return [str(p) for k, p in sorted(extract.items()) if k != "delta"]


def worker_counts(stdout: str) -> tuple[int, int]:
    match = re.search(
        r"worker: (\d+) feed events, \d+ entity inputs, (\d+) directory changes", stdout
    )
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


def with_causes(feed: list[FeedEvent]) -> list[tuple[FeedEvent, Cause]]:
    """Causes in publication order, as the broker's timestamps are."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (e, Cause(topic=FEED.name, offset=i, rule="test", at=start + timedelta(seconds=i)))
        for i, e in enumerate(feed)
    ]


def directory_of(pipeline: Pipeline) -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        e.dn.lower(): dict(e.attributes)
        for branch in ("people", "structures", "groups")
        for e in search_entries(
            pipeline.ldap, f"ou={branch},{pipeline.base_dn}", "(objectClass=*)", ["*"], scope="one"
        )
    }


def assert_same_directory(actual: dict[str, Any], predicted: dict[str, Any]) -> None:
    a, p = _without_logins(actual), _without_logins(predicted)
    problems = [f"only in LDAP: {dn}" for dn in sorted(a.keys() - p.keys())]
    problems += [f"only predicted: {dn}" for dn in sorted(p.keys() - a.keys())]
    for dn in sorted(a.keys() & p.keys()):
        for name in sorted(a[dn].keys() | p[dn].keys()):
            if a[dn].get(name) != p[dn].get(name):
                problems.append(f"{dn} {name}: LDAP {a[dn].get(name)} != {p[dn].get(name)}")
    assert not problems, "\n".join(problems[:30])


# Login suffixes depend on arrival order among homonyms, and times come from the broker's clock
# (the prediction uses synthetic ones); everything else must be equal.
UNCOMPARED = {"entpersonlogin", "entsyncdisappearedat"}


def _without_logins(entries: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, Any]:
    return {
        dn.lower(): {
            k.lower(): tuple(sorted(v)) for k, v in attrs.items() if k.lower() not in UNCOMPARED
        }
        for dn, attrs in entries.items()
    }


def test_run_builds_the_directory_the_pure_core_predicts(
    pipeline: Pipeline, extract: dict[str, Path]
) -> None:
    stdout = pipeline.ok("run", *full_files(extract))
    feed_events, changes = worker_counts(stdout)
    assert feed_events > 0 and changes > 0

    # The pure pipeline on the same events is the specification of the directory.
    scanned = scan_many(full_files(extract))
    assert scanned.report.ok
    feed = list(events_many(scanned.scans))
    predicted = run_to_quiescence(with_causes(feed), ctx=Context(base_dn=pipeline.base_dn))
    actual = directory_of(pipeline)
    assert_same_directory(actual, predicted.world.directory)

    # Admitted pupils are there with their SDET attributes; held ones are not.
    pupils = [e.pupil for e in feed if isinstance(e, PupilUpserted)]
    admitted = [p for p in pupils if not p.held_reasons]
    held = [p for p in pupils if p.held_reasons and p.ine]
    assert admitted and held
    for pupil in admitted:
        assert pupil.ine
        dn = dit.people_dn(ids.pupil_id("entsync", pupil), pipeline.base_dn).lower()
        entry = {k.lower(): v for k, v in actual[dn].items()}
        assert "enteleve" in {c.lower() for c in entry["objectclass"]}
        assert entry["enteleveine"] == (pupil.ine,)
        assert entry["entpersonprofils"] == ("National_1",)
        assert re.fullmatch(r"[a-z-]+\.[a-z-]+[0-9]*", entry["entpersonlogin"][0])
    for pupil in held:
        dn = dit.people_dn(ids.pupil_id("entsync", pupil), pipeline.base_dn).lower()
        assert dn not in actual
    guardians = [e for e in actual.values() if "ENTAuxPersRelEleveEleve" in e]
    assert guardians and all(e["ENTPersonProfils"] == ("National_2",) for e in guardians)

    # Exactly one audit event per directory change, none carrying clear-text values.
    audits = directory_changes(pipeline.bootstrap)
    assert len(audits) == changes
    assert len({a.event_id for a in audits}) == len(audits)
    audit_text = "".join(a.model_dump_json() for a in audits)
    for pupil in admitted:
        assert pupil.last_name not in audit_text and (pupil.ine or "") not in audit_text


def test_an_initial_load_writes_each_entry_about_once(pipeline: Pipeline, tmp_path: Path) -> None:
    """While more input waits, the worker holds decided batches back and writes each entry
    once for all of them: a pupil with the guardians that answered it, a group with the members
    found in later batches (issue #17). The directory is still the one the core predicts, and
    each write has one audit event naming every decided change behind it."""
    generated = generate(tmp_path / "load", GeneratorConfig(schools=4, pupils_per_school=40))
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    _, changes = worker_counts(pipeline.ok("run", *files))

    feed = list(events_many(scan_many(files).scans))
    predicted = run_to_quiescence(with_causes(feed), ctx=Context(base_dn=pipeline.base_dn))
    actual = directory_of(pipeline)
    assert_same_directory(actual, predicted.world.directory)
    assert changes <= 1.1 * len(actual), f"{changes} writes for {len(actual)} entries"

    audits = audits_of(pipeline)
    assert len(audits) == changes and len({a.event_id for a in audits}) == changes
    assert_audit_trail_covers(actual, audits)
    # Writes merged from several decisions name their causes (sync.coalesce).
    assert sum(1 + len(a.merged_causes) for a in audits) > changes


def test_a_load_with_its_feed_held_back_gives_the_predicted_directory(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The intake pauses the feed while inputs wait (connectors/stream/intake.py), here over 20
    of them: paused and resumed many times, the load still ends, with the directory the core
    predicts from the events in file order (the ingest publishes them school by school). Each
    feed record is read once: a pause keeps aiokafka's position at the first record not handed
    over (faust's own pause skipped what its last fetch brought, then the stall guard read the
    partition again)."""
    generated = generate(tmp_path / "load", GeneratorConfig(schools=3, pupils_per_school=20))
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    pipeline.env["ENTSYNC_INTAKE_MAX_WAITING"] = "20"
    done = pipeline.cli("run", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    pauses = re.search(r"feed paused (\d+) times", done.stdout)
    assert pauses and int(pauses.group(1)) > 1, done.stdout
    assert "stream.stall_recovered" not in done.stderr
    feed = list(events_many(scan_many(files).scans))
    # Every record of the feed topic (the load and the absence scans the worker sent) read once.
    on_topic = asyncio.run(read_topic(pipeline.kafka, FEED.name))
    assert len(on_topic) > len(feed)
    assert worker_counts(done.stdout)[0] == len(on_topic)
    predicted = run_to_quiescence(with_causes(feed), ctx=Context(base_dn=pipeline.base_dn))
    assert_same_directory(directory_of(pipeline), predicted.world.directory)


def test_same_extract_again_writes_nothing(pipeline: Pipeline, extract: dict[str, Path]) -> None:
    pipeline.ok("run", *full_files(extract))
    before = export_ldif(pipeline.ldap, pipeline.base_dn)

    again = pipeline.ok("ingest", *full_files(extract))
    assert "already ingested" in again and "events published" not in again

    pipeline.ok("ingest", "--force", *full_files(extract))
    feed_events, changes = worker_counts(pipeline.ok("worker", "--until-idle", "--timeout", "120"))
    assert changes == 0
    # At least the re-published events were read (a rebalance may make faust re-read some).
    assert feed_events >= sum(1 for _ in events_many(scan_many(full_files(extract)).scans))
    assert export_ldif(pipeline.ldap, pipeline.base_dn) == before


def test_delta_after_full_gives_the_predicted_directory(
    pipeline: Pipeline, extract: dict[str, Path], tmp_path: Path
) -> None:
    """Worker restarts between files lose nothing: the result is what the pure core predicts."""
    pipeline.ok("run", *full_files(extract))
    bases = [f"--base={f}" for f in full_files(extract)]
    delta_run = pipeline.ok(
        "run", *bases, "--report", str(tmp_path / "r.json"), str(extract["delta"])
    )
    feed_events, changes = worker_counts(delta_run)
    report = json.loads((tmp_path / "r.json").read_text())
    rules = {item["rule"] for f in report["files"] for item in f["items"]}
    assert "modify_unknown_record" not in rules
    base = collect_records(scan_many(full_files(extract)).scans)
    delta = list(events_many(scan_many([str(extract["delta"])], base=base).scans))
    assert any(isinstance(e, PupilUpserted) for e in delta)

    full = list(events_many(scan_many(full_files(extract)).scans))
    predicted = run_to_quiescence(with_causes(full + delta), ctx=Context(base_dn=pipeline.base_dn))
    assert_same_directory(directory_of(pipeline), predicted.world.directory)
    assert feed_events >= len(delta) and changes > 0


def test_a_bad_file_refuses_the_whole_ingest(
    pipeline: Pipeline, extract: dict[str, Path], tmp_path: Path
) -> None:
    good = full_files(extract)
    truncated = tmp_path / Path(good[0]).name.replace("_0000", "_0001")
    truncated.write_bytes(Path(good[0]).read_bytes()[:-200])
    done = pipeline.cli("ingest", *good, str(truncated))
    assert done.returncode != 0
    assert "nothing was published" in done.stderr
    assert asyncio.run(read_topic(pipeline.kafka, FEED.name)) == []


def test_worker_without_services_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTSYNC_")}
    env["ENTSYNC_STATE_DIR"] = str(tmp_path / "nothing-here")
    done = subprocess.run(
        [ENTSYNC, "worker", "--until-idle"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "entsync services up" in " ".join(done.stderr.split())


def test_worker_killed_mid_load_converges_without_duplicates(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    generated = generate(
        tmp_path / "big", GeneratorConfig(schools=4, pupils_per_school=40, seed=11)
    )
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    pipeline.ok("ingest", *files)

    log = (tmp_path / "killed-worker.log").open("w")
    worker = subprocess.Popen(
        [ENTSYNC, "worker"],
        env={**pipeline.env, "ENTSYNC_LOG_LEVEL": os.environ.get("E2E_WORKER_LOG_LEVEL", "INFO")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        people = f"ou=people,{pipeline.base_dn}"
        while count_entries(pipeline.ldap, people, scope="one") < 20:
            assert worker.poll() is None, "the worker exited on its own"
            assert time.monotonic() < deadline, "the worker wrote nothing in time"
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)  # mid-load, no chance to commit or clean up
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    log.close()
    partial = count_entries(pipeline.ldap, people, scope="one")

    restarted = pipeline.ok("worker", "--until-idle", "--timeout", "150")
    (tmp_path / "restarted-worker.log").write_text(restarted)
    feed = list(events_many(scan_many(files).scans))
    predicted = run_to_quiescence(with_causes(feed), ctx=Context(base_dn=pipeline.base_dn))
    actual = directory_of(pipeline)
    assert len(actual) > partial
    assert_same_directory(actual, predicted.world.directory)
    # One entry per person: logins and INEs are unique.
    logins = [v[0] for e in actual.values() for k, v in e.items() if k == "ENTPersonLogin"]
    ines = [v[0] for e in actual.values() for k, v in e.items() if k == "ENTEleveINE"]
    assert len(logins) == len(set(logins)) and len(ines) == len(set(ines))
    # The audit trail survived the kill: folding it gives every entry's attributes as they are.
    assert_audit_trail_covers(actual, audits_of(pipeline))


def test_a_change_found_already_written_is_still_audited(
    pipeline: Pipeline, extract: dict[str, Path]
) -> None:
    """As after a crash between a batch's writes and its audit events: the schools' entries are
    in the directory already, exactly as the worker will write them; their adds are audited."""
    feed = list(events_many(scan_many(full_files(extract)).scans))
    predicted = run_to_quiescence(with_causes(feed), ctx=Context(base_dn=pipeline.base_dn))
    schools = {
        dn: attributes
        for dn, attributes in predicted.world.directory.items()
        if dn.lower().endswith(f",ou=structures,{pipeline.base_dn}".lower())
    }
    assert schools
    # The worker has state already (a crash after its first batches): its changelogs are not
    # empty, so the entries it finds are not taken as a lost state to rebuild (sync.rebuild).
    pipeline.ok("run", str(extract["PersEducNat"]))
    conn = connect(pipeline.ldap)
    try:
        for dn, attributes in schools.items():
            assert conn.add(dn, attributes={k: list(v) for k, v in attributes.items()}), dn
    finally:
        close_quietly(conn)
    out = pipeline.ok("run", *full_files(extract))
    assert f"and {len(schools)} found already done" in " ".join(out.split()), out  # wrapped
    assert_audit_trail_covers(directory_of(pipeline), audits_of(pipeline))


def directory_changes(bootstrap: str) -> list[DirectoryChanged]:
    """The audit topic's directory changes (holds decided without a change left out)."""
    events = (
        AuditMessage.model_validate_json(m.value).root
        for m in asyncio.run(read_topic(KafkaParams(bootstrap), AUDIT.name))
        if m.value is not None
    )
    return [e for e in events if isinstance(e, DirectoryChanged)]


def audits_of(pipeline: Pipeline) -> list[DirectoryChanged]:
    return directory_changes(pipeline.bootstrap)


def assert_audit_trail_covers(
    directory: dict[str, dict[str, tuple[str, ...]]], audits: list[DirectoryChanged]
) -> None:
    """Every entry's attribute values are the last ones its audit events name (by digest).

    Events are in topic order per partition, and all the events of one entry share a partition
    (keyed by the entity that writes it); a re-sent event of the same change folds the same.
    """
    folded: dict[str, dict[str, str | None]] = {}
    for audit in audits:
        dn = audit.dn.lower()
        if audit.action == "delete":
            folded.pop(dn, None)
            continue
        entry = folded.setdefault(dn, {})
        for change in audit.changes:
            entry[change.name.lower()] = change.after_digest
    problems = []
    for dn, attributes in sorted(directory.items()):
        want = {
            name.lower(): values_digest(tuple(v), AUDIT_DIGEST_KEY.encode())
            for name, v in attributes.items()
        }
        got = {name: d for name, d in folded.get(dn, {}).items() if d is not None}
        if got != want:
            problems.append(f"{dn}: {sorted(set(want.items()) ^ set(got.items()))[:3]}")
    problems += [f"audited, not in LDAP: {dn}" for dn in sorted(folded.keys() - directory.keys())]
    assert not problems, "\n".join(problems[:20])


_UPSERTS: dict[type, tuple[type, str]] = {
    School: (SchoolUpserted, "school"),
    Pupil: (PupilUpserted, "pupil"),
    Guardian: (GuardianUpserted, "guardian"),
    Staff: (StaffUpserted, "staff"),
}


def _feed_event(index: int, record: School | Pupil | Guardian | Staff) -> FeedEvent:
    source = SourceRef(
        file_name="test.xml",
        file_digest=f"{index:064d}",
        category=Category.STAFF,
        record_index=index,
        complete=False,
    )
    event_type, kind = _UPSERTS[type(record)]
    return event_type(  # type: ignore[no-any-return]
        key=record_key(kind, record.jointure),
        version=payload_version(record),
        source=source,
        **{kind: record},
    )


def _publish(pipeline: Pipeline, *records: School | Pupil | Guardian | Staff) -> None:
    async def run() -> None:
        await ensure_topics(pipeline.kafka, 4)
        async with FeedPublisher(pipeline.kafka) as publisher:
            await publisher.publish_all(_feed_event(i, r) for i, r in enumerate(records))

    asyncio.run(run())


def add_foreign_login(ldap: LdapParams, base_dn: str, login: str) -> None:
    """An entry another tool made, holding ``login`` (the directory's logins are unique)."""
    conn = connect(ldap)
    try:
        attributes = {
            "objectClass": ["ENTPerson"],
            "cn": ["Other tool"],
            "sn": ["Tool"],
            "ENTPersonLogin": [login],
            "ENTPersonJointure": ["OTHER$1"],
        }
        dn = f"uid=other-tool,ou=manual-groups,{base_dn}"  # cleared with every branch
        assert conn.add(dn, attributes=attributes), conn.result
    finally:
        close_quietly(conn)


def _zoe_and_her_mother(school: School) -> tuple[Pupil, Guardian]:
    """A pupil (login zoe.lefevre) of ``school`` and her guardian."""
    pupil = Pupil(
        jointure="P1",
        ine="1234567890A",
        last_name="Lefèvre",
        first_name="Zoé",
        school_jointure=school.jointure,
        classes=(ClassAssignment(school_jointure=school.jointure, code="CP", label="CP"),),
        guardian_jointures=("G1",),
    )
    guardian = Guardian(
        jointure="G1", last_name="Lefèvre", first_name="Anne", pupil_jointures=("P1",)
    )
    return pupil, guardian


def test_a_write_the_directory_refuses_is_reported_and_retried(pipeline: Pipeline) -> None:
    school = School(jointure="0310999A", uai="0310999A", name="École du test", siren="213105554")
    pupil, guardian = _zoe_and_her_mother(school)
    _publish(pipeline, school, pupil, guardian)
    pipeline.ok("worker", "--until-idle", "--timeout", "120")
    people = f"ou=people,{pipeline.base_dn}"
    assert count_entries(pipeline.ldap, people, "(ENTPersonLogin=zoe.lefevre)") == 1

    # Another tool took the teacher's academic login after the worker started: the unique
    # overlay refuses the teacher's entry (a login entsync allocates never collides).
    add_foreign_login(pipeline.ldap, pipeline.base_dn, "paul.martin")
    teacher = Staff(
        jointure="S1",
        last_name="Martin",
        first_name="Paul",
        academic_login="paul.martin",
        attachment_school_jointure=school.jointure,
        school_jointures=(school.jointure,),
        is_teacher=True,
    )
    _publish(pipeline, teacher)
    done = pipeline.cli("worker", "--until-idle", "--timeout", "120")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "directory writes refused" in " ".join(done.stderr.split())
    assert "directory.write_refused" in done.stderr and "Martin" not in done.stderr
    assert count_entries(pipeline.ldap, people, "(ENTPersonJointure=AAF$S1)") == 0
    assert count_entries(pipeline.ldap, pipeline.base_dn, "(ENTPersonLogin=paul.martin)") == 1

    # The academy corrects the login: the next change of that teacher goes through.
    _publish(pipeline, teacher.model_copy(update={"academic_login": "pmartin"}))
    pipeline.ok("worker", "--until-idle", "--timeout", "120")
    assert (
        count_entries(
            pipeline.ldap, people, "(&(ENTPersonJointure=AAF$S1)(ENTPersonLogin=pmartin))"
        )
        == 1
    )


def test_a_login_another_tool_holds_is_never_handed_out(pipeline: Pipeline) -> None:
    """The directory has zoe.lefevre on an entry entsync does not manage, made after the worker
    had its state: the pupil's add is refused once, then she gets zoe.lefevre2; no write is left
    refused (exit 0)."""
    school = School(jointure="0310998A", uai="0310998A", name="École", siren="213105554")
    _publish(pipeline, school)
    pipeline.ok("worker", "--until-idle", "--timeout", "120")  # the worker has state now
    add_foreign_login(pipeline.ldap, pipeline.base_dn, "zoe.lefevre")
    pupil, guardian = _zoe_and_her_mother(school)
    _publish(pipeline, pupil, guardian)
    done = pipeline.cli("worker", "--until-idle", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "login.taken_in_directory" in done.stderr and "zoe" not in done.stderr.lower()
    people = f"ou=people,{pipeline.base_dn}"
    found = search_entries(pipeline.ldap, people, "(ENTPersonJointure=ONDE$P1)", ["*"])
    assert [e.get("ENTPersonLogin") for e in found] == [("zoe.lefevre2",)]

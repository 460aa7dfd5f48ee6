"""``entsync audit consume`` on a real broker, into SQLite and a real PostgreSQL server.

The pipeline test runs the whole synchronizer on a generated extract and checks that the store
holds one record per directory change, that ``audit verify`` passes, and that it fails, naming
the record, once a row is altered or removed behind the store's back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from connectors.auditstore import Search, open_store
from connectors.stream.clients import KafkaParams
from connectors.stream.reader import read_topic
from connectors.stream.topics import ensure_topics
from schemas.audit import AttributeChange, DirectoryChanged
from schemas.auditstore import ExportedAuditRecord
from schemas.entities import Cause
from schemas.topics import AUDIT
from sync import dit
from sync.auditindex import school_of_dn
from tests.integration import postgres_support as pg
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import ENTSYNC, Pipeline, full_files, worker_counts

# Fixtures shared with the pipeline and PostgreSQL tests.
fresh_broker, pipeline, extract = e2e.fresh_broker, e2e.pipeline, e2e.extract

pytestmark = pytest.mark.integration


def _event(n: int) -> DirectoryChanged:
    return DirectoryChanged(
        event_id=f"ev-{n}",
        action="modify",
        entity_id=f"p-{n % 500}",
        entity_kind="pupil",
        dn=dit.people_dn(f"p-{n % 500}"),
        changes=(AttributeChange(name="cn", before_digest="0" * 64, after_digest="1" * 64),),
        cause=Cause(topic="entsync.feed.v1", offset=n, rule="test", at="2026-03-01T08:00:00Z"),  # type: ignore[arg-type]
    )


async def _produce(bootstrap: str, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(AUDIT.name, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


def _events(numbers: range) -> list[tuple[bytes, bytes | None]]:
    return [(_event(n).entity_id.encode(), _event(n).model_dump_json().encode()) for n in numbers]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENTSYNC, "audit", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM audit_record").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_consume_is_exactly_once_across_a_kill_and_a_replay(
    fresh_broker: str, tmp_path: Path
) -> None:
    asyncio.run(ensure_topics(KafkaParams(fresh_broker), partitions=4))
    total = 20000
    asyncio.run(_produce(fresh_broker, _events(range(total))))
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": fresh_broker,
        "ENTSYNC_LOG_FORMAT": "json",
    }
    db = tmp_path / "state" / "audit.sqlite3"
    # Killed without warning as soon as it has committed something.
    proc = subprocess.Popen(
        [ENTSYNC, "audit", "consume", "--until-idle"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _stored(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = _cli(env, "consume", "--until-idle", "--timeout", "180")
    assert done.returncode == 0, done.stdout + done.stderr

    # The topic replayed in part, a tombstone, garbage and a type this version does not know.
    future = {"type": "lifecycle.held", "event_id": "h-1", "entity_id": "p-1", "why": [1]}
    asyncio.run(
        _produce(
            fresh_broker,
            [
                *_events(range(100)),
                (b"p-1", None),
                (b"p-2", b"\x00garbage"),
                (b"p-1", json.dumps(future).encode()),
            ],
        )
    )
    again = _cli(env, "consume", "--until-idle", "--timeout", "180")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 events stored, 100 duplicates, 2 invalid, 0 gaps" in again.stdout

    with open_store(str(db), tmp_path) as store:
        assert store.counts() == {"event": total + 1, "duplicate": 100, "invalid": 2}
        ends = {i.partition: i.head.next_offset for i in store.partitions()}
    on_topic = asyncio.run(read_topic(KafkaParams(fresh_broker), AUDIT.name))
    assert sum(ends.values()) == len(on_topic) == total + 103
    history = _cli(env, "history", "p-1", "--json")
    assert history.returncode == 0
    lines = [json.loads(line) for line in history.stdout.splitlines()]
    assert {line["event"]["event_id"] for line in lines} >= {"ev-1", "ev-501", "h-1"}
    verified = _cli(env, "verify")
    assert verified.returncode == 0 and "chain verified" in verified.stdout, verified.stdout


def test_the_store_of_a_scenario_run_holds_each_change_once_and_shows_tampering(
    pipeline: Pipeline, extract: dict[str, Path], postgres: pg.PostgresServer
) -> None:
    _, changes = worker_counts(pipeline.ok("run", *full_files(extract)))
    assert changes > 0
    audits = e2e.directory_changes(pipeline.bootstrap)
    assert len(audits) == changes
    pg_url = postgres.create_database()
    sqlite_path = Path(pipeline.env["ENTSYNC_STATE_DIR"]) / "audit.sqlite3"
    for db in (None, pg_url):
        where = ["--db", db] if db else []
        out = pipeline.ok("audit", "consume", "--until-idle", "--timeout", "180", *where)
        assert f"audit: {changes} events stored, 0 duplicates, 0 invalid, 0 gaps" in out
        # Our producer's offsets are contiguous on the local broker: no gap, none recorded.
        assert pipeline.ok("audit", "gaps", *where).strip().endswith("0 gap(s)")
        assert "chain verified" in pipeline.ok("audit", "verify", *where)
        again = pipeline.ok("audit", "consume", "--until-idle", *where)
        assert "audit: 0 events stored" in again
        out = pipeline.ok("audit", "export", "--format", "jsonl", *where)
        exported = [ExportedAuditRecord.model_validate_json(line) for line in out.splitlines()]
        assert [e.hash for e in exported if e.event is None] == []
        assert sorted(e.event["event_id"] for e in exported if e.event) == sorted(
            a.event_id for a in audits
        )

    with open_store(str(sqlite_path), sqlite_path.parent) as store:
        school = store.search(Search(entity_kind="school", limit=1))[0]["dn"]
        uai = _school_part(school)
        assert uai
        expected = {a.event_id for a in audits if uai in a.schools}
    assert {a.event_id for a in audits if uai in _school_part(a.dn)} <= expected
    found = pipeline.ok("audit", "search", "--school", uai, "--json").splitlines()
    assert {json.loads(line)["event"]["event_id"] for line in found} == expected
    # The school's people are found too: "who changed this child's account".
    kinds = {json.loads(line)["event"]["entity_kind"] for line in found}
    assert {"school", "group", "pupil", "guardian", "staff"} <= kinds
    since = pipeline.ok("audit", "search", "--since", "2000-01-01", "--action", "add", "--json")
    assert len(since.splitlines()) == sum(1 for a in audits if a.action == "add")
    person = next(a for a in audits if a.entity_kind == "pupil")
    shown = pipeline.ok("audit", "history", person.dn)
    assert person.entity_id in shown and "add" in shown

    _tamper_and_verify(pipeline, sqlite_path, pg_url)


def _school_part(dn: str) -> str:
    return school_of_dn(dn) or ""


def _tamper_and_verify(run: Pipeline, sqlite_path: Path, pg_url: str) -> None:
    """Change then remove a row in each store, by SQL: verify fails and names them."""
    change = "UPDATE audit_record SET action = 'delete' WHERE msg_partition = 1 AND msg_offset = 2"
    remove = "DELETE FROM audit_record WHERE msg_partition = 2 AND msg_offset = 3"
    for db in (None, pg_url):
        where = ["--db", db] if db else []
        _behind_the_stores_back(db, sqlite_path, change)
        failed = run.cli("audit", "verify", *where)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "changed: record at offset 2 was changed" in failed.stdout
        assert "entsync.audit.v1[1]:" in failed.stdout and "TAMPERED" in failed.stdout
        _behind_the_stores_back(db, sqlite_path, remove)
        failed = run.cli("audit", "verify", *where)
        assert failed.returncode == 1
        assert "record(s) at offset 3 removed" in failed.stdout, failed.stdout


def _behind_the_stores_back(pg_url: str | None, sqlite_path: Path, sql: str) -> None:
    if pg_url is None:
        with sqlite3.connect(sqlite_path) as conn:
            conn.execute(sql)
    else:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql)


def test_consume_follows_the_topic_until_told_to_stop(fresh_broker: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": fresh_broker,
        "ENTSYNC_LOG_FORMAT": "json",
    }
    absent = _cli(env, "consume", "--until-idle")
    assert absent.returncode == 0 and "does not exist yet" in absent.stdout, absent.stderr
    db = tmp_path / "state" / "audit.sqlite3"
    proc = subprocess.Popen(
        [ENTSYNC, "audit", "consume"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        # The topic appears while the consumer runs: it is picked up at the next refresh.
        while not db.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        asyncio.run(ensure_topics(KafkaParams(fresh_broker), partitions=2))
        asyncio.run(_produce(fresh_broker, _events(range(50))))
        while _stored(db) < 50 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        asyncio.run(_produce(fresh_broker, _events(range(50, 60))))
        while _stored(db) < 60 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _stored(db) == 60
    finally:
        proc.send_signal(signal.SIGTERM)
        out, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors.decode()[-2000:]
    assert "60 events stored" in out.decode()

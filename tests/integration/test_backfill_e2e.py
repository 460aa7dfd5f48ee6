"""Backfill on real services: re-ingesting full extracts (``entsync ingest --force``) while a
continuous worker runs writes nothing to the directory, leaves a held snapshot held, does not
resurrect a deleted account, and a worker killed during the backfill resumes from its committed
offsets without writing anything either.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from connectors.ldap import export_ldif
from connectors.stream.clients import KafkaParams
from connectors.stream.offsets import true_end_offsets
from connectors.stream.reader import read_topic
from schemas.topics import AUDIT, ENTITIES, FEED
from tests.integration import test_lifecycle_e2e as lifecycle_e2e
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import ENTSYNC, Pipeline

# Fixtures shared with the pipeline and lifecycle tests.
fresh_broker, pipeline, extract = e2e.fresh_broker, e2e.pipeline, lifecycle_e2e.extract

pytestmark = pytest.mark.integration

CATEGORIES = ("EtabEducNat", "PersEducNat", "PersRelEleve", "Eleve")


@pytest.fixture
def worker(pipeline: Pipeline, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A continuous worker, stopped by pid at the end."""
    process = start_worker(pipeline, tmp_path / "worker.log")
    try:
        yield process
    finally:
        stop(process)


def start_worker(p: Pipeline, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [ENTSYNC, "worker"],
            env=p.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


async def _behind(bootstrap: str, partitions: int) -> int:
    """Messages of the feed and entities topics the worker's group has not committed yet."""
    tps = [TopicPartition(t.name, p) for t in (FEED, ENTITIES) for p in range(partitions)]
    ends = await true_end_offsets(KafkaParams(bootstrap), tps)
    # A consumer of the worker's group that never joins it: it only fetches committed offsets.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id="entsync", enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()
    return sum(max(0, end - committed[tp]) for tp, end in ends.items())


def caught_up(p: Pipeline, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Wait until the continuous worker has committed everything, three checks in a row."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 3:
        assert process.poll() is None, "the continuous worker exited"
        assert time.monotonic() < deadline, "the continuous worker did not catch up"
        streak = streak + 1 if asyncio.run(_behind(p.bootstrap, 4)) == 0 else 0
        time.sleep(1.0)


def audit_count(p: Pipeline) -> int:
    return len(asyncio.run(read_topic(p.kafka, AUDIT.name)))


def holds(p: Pipeline) -> list[dict[str, object]]:
    return [json.loads(x) for x in p.ok("holds", "list", "--json").splitlines() if x.strip()]


def test_backfill_is_idempotent_keeps_holds_and_tombstones(
    pipeline: Pipeline, extract: dict[str, Path], worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    p = pipeline
    full = [str(extract[c]) for c in CATEGORIES]
    p.ok("ingest", *full)
    caught_up(p, worker)
    pupils = lifecycle_e2e.pupils(p)
    assert len(pupils) >= 10
    writes, directory = audit_count(p), export_ldif(p.ldap, p.base_dn)

    # The same full extract again, forced past the ledger: every record is a no-op.
    again = p.ok("ingest", "--force", *full)
    assert "events published" in again
    caught_up(p, worker)
    assert audit_count(p) == writes and export_ldif(p.ldap, p.base_dn) == directory

    # A complete extract that the guard holds; ingesting the very same file again keeps it
    # held (same snapshot id), and marks nobody.
    kept = set(sorted(pupils)[:2])
    partial = lifecycle_e2e.pupils_file(extract, 2, kept, set())
    p.ok("ingest", str(partial))
    caught_up(p, worker)
    (hold,) = holds(p)
    assert hold["outcome"] == "held"
    p.ok("ingest", "--force", str(partial))
    caught_up(p, worker)
    (still,) = holds(p)
    assert still["snapshot_id"] == hold["snapshot_id"] and still["outcome"] == "held"
    assert all(lifecycle_e2e.state(e) == "active" for e in lifecycle_e2e.pupils(p).values())
    assert audit_count(p) == writes
    p.ok("holds", "reject", str(hold["snapshot_id"]))

    # A pupil leaves, is pre-deleted, then deleted: re-ingesting the old full extract, which
    # still has him, does not bring him back (nor changes anyone else).
    leaver = sorted(pupils)[-1]
    p.ok("ingest", str(lifecycle_e2e.pupils_file(extract, 3, None, {leaver})))
    caught_up(p, worker)
    assert lifecycle_e2e.state(lifecycle_e2e.pupils(p)[leaver]) == "disappeared"
    now = datetime.now(UTC)
    for days in (91, 182):
        p.ok("lifecycle", "sweep", "--future", "--now", (now + timedelta(days=days)).isoformat())
        caught_up(p, worker)
    assert leaver not in lifecycle_e2e.pupils(p)
    writes, directory = audit_count(p), export_ldif(p.ldap, p.base_dn)
    p.ok("ingest", "--force", *full)
    caught_up(p, worker)
    assert leaver not in lifecycle_e2e.pupils(p)
    assert audit_count(p) == writes and export_ldif(p.ldap, p.base_dn) == directory

    # A worker killed during a backfill: the next one resumes from the committed offsets.
    history = len(asyncio.run(read_topic(p.kafka, FEED.name)))
    backfill = p.ok("ingest", "--force", *full)
    published = sum(int(n) for n in re.findall(r"(\d+) events published", backfill))
    stop(worker, signal.SIGKILL)
    resumed = p.ok("worker", "--until-idle", "--timeout", "240")
    assert "0 directory changes" in resumed
    assert audit_count(p) == writes and export_ldif(p.ldap, p.base_dn) == directory
    # It read what the killed worker had not committed of the backfill (with the snapshot
    # rounds it causes, and any re-read of the stall guard), not the topic's history of several
    # full ingests, as starting over from the beginning would.
    read = int(re.search(r"worker: (\d+) feed events", resumed).group(1))  # type: ignore[union-attr]
    assert published and history > 4 * published, (history, published)
    assert read < history, (read, published, history)

"""``entsync topics ensure`` on a real broker: every topic entsync uses, changelogs compacted,
idempotent, and a topic with another partition count refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from connectors.stream.clients import KafkaParams
from connectors.stream.topics import partition_counts
from schemas.topics import ALL_TOPICS
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import ENTSYNC

fresh_broker = e2e.fresh_broker

pytestmark = pytest.mark.integration

CHANGELOGS = ["entsync-sources-changelog", "entsync-entities-changelog"]


def _topics(bootstrap: str, tmp_path: Path, partitions: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": bootstrap,
        "ENTSYNC_TOPIC_PARTITIONS": str(partitions),
    }
    return subprocess.run(
        [ENTSYNC, "topics", "ensure", "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_topics_ensure_creates_everything_once(fresh_broker: str, tmp_path: Path) -> None:
    first = _topics(fresh_broker, tmp_path, 4)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changelogs created now: " + ", ".join(CHANGELOGS) in " ".join(first.stdout.split())
    names = [t.name for t in ALL_TOPICS] + CHANGELOGS
    counts = asyncio.run(partition_counts(KafkaParams(bootstrap=fresh_broker), names))
    assert counts == dict.fromkeys(names, 4)

    again = _topics(fresh_broker, tmp_path, 4)
    assert again.returncode == 0 and "changelogs created now: none" in again.stdout

    other = _topics(fresh_broker, tmp_path, 2)  # the topics have 4: refused, named
    assert other.returncode == 1
    assert "ENTSYNC_TOPIC_PARTITIONS" in " ".join(other.stderr.split())

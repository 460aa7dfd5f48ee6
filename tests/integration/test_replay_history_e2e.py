"""A replay whose input history is gone says so, on the real broker and slapd.

The sample is synced; the dry run predicts it exactly. Then the broker restarts (the local
broker keeps topics in memory; slapd keeps its data): the dry run reports that the history does
not explain the directory, lists no deletion and exits 6, and a real replay checked against the
directory refuses to start (exit 8) unless told to accept the incomplete history. Once the
extract is published again, the history explains the directory again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.ldap import BRANCHES, clear_subtree, count_entries, export_ldif
from connectors.services import broker
from connectors.services.process import free_port, stop_pid
from entsync.cli.replay import EXIT_HISTORY_INCOMPLETE
from tests.integration import test_pipeline_e2e as e2e
from tests.integration import test_replay_e2e as replay_e2e
from tests.integration.test_pipeline_e2e import Pipeline

# Fixtures shared with the pipeline and replay tests (fresh_broker is overridden below).
pipeline, extract = e2e.pipeline, replay_e2e.extract

pytestmark = pytest.mark.integration


@dataclass
class RestartableBroker:
    """A broker of this test's own on a fixed port; a restart loses every topic."""

    layout: broker.BrokerLayout
    port: int
    pid: int = 0

    def start(self) -> None:
        self.pid = broker.start(broker.find_broker(), self.layout, self.port)
        broker.wait_ready(port=self.port, pid=self.pid, layout=self.layout, timeout=20)

    def stop(self) -> None:
        if self.pid:
            stop_pid(self.pid, marker=broker.marker(self.port))
            self.pid = 0

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableBroker]:
    layout = broker.BrokerLayout(tmp_path / "broker")
    layout.state_dir.mkdir()
    handle = RestartableBroker(layout, free_port())
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def fresh_broker(restartable: RestartableBroker) -> str:
    """The pipeline's broker (overrides test_pipeline_e2e's): the restartable one."""
    return broker.bootstrap(restartable.port)


def dry_run(p: Pipeline, *options: str) -> tuple[int, list[dict[str, object]], str]:
    done = p.cli("replay", "--dry-run", "--json", "--from-beginning", *options)
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    return done.returncode, lines, done.stderr


def managed_entries(p: Pipeline) -> int:
    return sum(
        count_entries(p.ldap, f"ou={b},{p.base_dn}", "(entsyncId=*)", scope="one")
        for b in ("people", "structures", "groups")
    )


def test_a_dry_run_and_a_replay_after_the_broker_lost_its_topics(
    pipeline: Pipeline, restartable: RestartableBroker, extract: dict[str, Path]
) -> None:
    p = pipeline
    p.ok("run", *e2e.full_files(extract))
    saved = export_ldif(p.ldap, p.base_dn)
    total = managed_entries(p)
    assert total > 30

    # History intact: exact prediction, nothing unexplained, exit 0.
    code, lines, _ = dry_run(p)
    *changes, summary = lines
    assert code == 0 and changes == [] and summary["summary"] == {}
    assert summary["unexplained"] == {"total": 0, "kinds": {}, "ids": []}

    # The broker restarts: its topics are gone, slapd keeps the directory.
    restartable.restart()
    code, lines, stderr = dry_run(p)
    *changes, summary = lines
    assert code == EXIT_HISTORY_INCOMPLETE, stderr
    assert changes == [] and summary["summary"] == {}  # no deletion listed or counted
    unexplained = summary["unexplained"]
    assert isinstance(unexplained, dict) and unexplained["total"] == total
    assert {"pupil", "guardian", "school", "group"} <= set(unexplained["kinds"])
    assert len(unexplained["ids"]) == 5
    assert f"does not explain {total} managed entries" in stderr and "no deletion" in stderr
    plain = p.cli("replay", "--dry-run", "--since", "2020-01-01T00:00:00Z")
    assert plain.returncode == EXIT_HISTORY_INCOMPLETE
    assert "0 entries would change" in plain.stdout and "not compared" in plain.stdout
    assert export_ldif(p.ldap, p.base_dn) == saved

    # A real replay checked against the directory refuses to start, before writing anything.
    target = f"ou=rebuild,{p.base_dn}"
    rebuild = {**p.env, "ENTSYNC_LDAP_BASE_DN": target}
    other = Pipeline(env=rebuild, bootstrap=p.bootstrap, ldap=p.ldap, base_dn=target)
    try:
        refused = other.cli("replay", "--from-beginning", "--check-against", p.base_dn)
        assert refused.returncode == EXIT_HISTORY_INCOMPLETE, refused.stderr
        assert "replay refused" in refused.stderr and "does not explain" in refused.stderr
        assert sum(count_entries(p.ldap, f"ou={b},{target}", scope="one") for b in BRANCHES) == 0
        mistyped = other.cli("replay", "--from-beginning", "--check-against", f"ou=x,{p.base_dn}")
        assert mistyped.returncode == 1 and "no entry at" in mistyped.stderr
        wrong = p.cli("replay", "--dry-run", "--from-beginning", "--check-against", p.base_dn)
        assert wrong.returncode == 2
        # Told to, it replays what the topics hold (nothing here) and says what it left out.
        accepted = other.cli(
            "replay",
            "--from-beginning",
            "--check-against",
            p.base_dn,
            "--accept-incomplete-history",
            "--replay-id",
            "h1",
            "--timeout",
            "120",
        )
        assert accepted.returncode == 0, accepted.stderr
        assert "replay h1: 0 inputs" in accepted.stdout
        assert "warning (--accept-incomplete-history)" in accepted.stderr
    finally:
        clear_subtree(p.ldap, target, keep_root=False)
    assert export_ldif(p.ldap, p.base_dn) == saved

    # The same extract published again (no worker run): the history explains it all again.
    p.ok("ingest", *e2e.full_files(extract))
    code, lines, stderr = dry_run(p)
    *changes, summary = lines
    assert code == 0, stderr
    assert changes == [] and summary["unexplained"] == {"total": 0, "kinds": {}, "ids": []}

"""A real worker's /metrics, /healthz and /readyz during a load (real broker and slapd), and
``entsync status`` reading them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.services.process import free_port, stop_pid
from entsync.status import http_get as get
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline

pytestmark = pytest.mark.integration

fresh_broker, pipeline = e2e.fresh_broker, e2e.pipeline  # fixtures shared with the pipeline tests

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_worker_under_load_shows_its_counters_move(
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    files = generate(tmp_path / "x", GeneratorConfig(schools=3, pupils_per_school=40, seed=3))
    full = [str(p) for k, p in sorted(files.files.items()) if k != "delta"]
    pipeline.ok("ingest", *full)
    port = free_port()
    env = {**pipeline.env, "ENTSYNC_METRICS_PORT": str(port), "ENTSYNC_METRICS_HOST": "127.0.0.1"}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [e2e.ENTSYNC, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: _answers(port, "/healthz"), 60, "/healthz")
        seen: list[float] = []

        def moving() -> bool:
            seen.append(total(scrape(port), "entsync_batch_events_total", agent="reconcile"))
            return len(seen) > 2 and 0 < seen[-3] < seen[-1]

        # Counters scraped during the load, not only at its end: the batches decided (a load's
        # directory writes may all come at once, its batches held in one window).
        wait_for(moving, 120, "reconcile batches moving between scrapes")
        wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60, "/readyz")
        ready = json.loads(get(f"http://127.0.0.1:{port}/readyz")[1])
        assert ready == {"ready": True, "checks": {"tables": "ok", "partitions": "ok"}}

        def settled() -> bool:
            samples = scrape(port)
            # A lag of 0 sampled once the partitions are known (no sample reads as 0 too):
            # every input committed, so every window of the load written and counted.
            lags = [v for (n, _), v in samples.items() if n == "entsync_consumer_lag_messages"]
            return (
                total(samples, "entsync_snapshot_last_success_timestamp_seconds") > 0
                and bool(lags)
                and not any(lags)
            )

        wait_for(settled, 120, "snapshots decided and the inputs consumed")
        samples = scrape(port)
        assert total(samples, "entsync_feed_records_total", category="Eleve") >= 120
        assert total(samples, "entsync_feed_records_total", outcome="changed") > 0
        assert total(samples, "entsync_directory_writes_total", op="add", outcome="added") > 0
        assert total(samples, "entsync_directory_writes_total", outcome="refused") == 0
        assert total(samples, "entsync_directory_write_seconds_count", op="add") > 0
        assert total(samples, "entsync_batch_seconds_count", agent="reconcile") > 0
        assert total(samples, "entsync_batch_seconds_count", agent="route_feed") > 0
        assert total(samples, "entsync_accounts", state="active", profile="pupil") >= 100
        assert total(samples, "entsync_holds_pending", kind="snapshot") == 0
        assert total(samples, "entsync_snapshots_decided_total", outcome="nothing-absent") > 0
        assert total(samples, "entsync_build_info", component="worker") == 1
        scopes = {
            dict(ls).get("scope")
            for (n, ls), _ in samples.items()
            if n == "entsync_snapshot_last_success_timestamp_seconds"
        }
        assert scopes and all(s and len(s) <= 32 for s in scopes)

        # the operator's view, from the same endpoint
        done = pipeline.cli("status", "--json", "--worker", f"http://127.0.0.1:{port}")
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        assert status["workers"][0]["ready"] is True
        assert status["accounts"]["active"]["pupil"] >= 100
        assert status["holds_pending"]["snapshot"] == 0
        assert status["directory_writes"]["refused"] == 0
        assert status["snapshots"], status
        text = pipeline.cli("status", "--worker", f"http://127.0.0.1:{port}")
        assert text.returncode == 0 and "accounts" in text.stdout
    finally:
        stop_pid(worker.pid, timeout=20)
        worker.wait(timeout=10)
        log.close()
    assert pipeline.cli("status", "--worker", f"http://127.0.0.1:{port}").returncode == 1

    # A restarted worker counts its recovered tables and reads the last snapshots back.
    restarted = subprocess.Popen(
        [e2e.ENTSYNC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _answers(port, "/readyz"), 90, "ready again")

        def recounted() -> bool:
            again = scrape(port)
            return total(again, "entsync_snapshot_last_success_timestamp_seconds") > 0 and (
                total(again, "entsync_accounts") > 0
            )

        wait_for(recounted, 60, "accounts recounted and snapshot times read back")
        again = scrape(port)
        for name in ("entsync_accounts", "entsync_snapshot_last_success_timestamp_seconds"):
            before = {k: v for k, v in samples.items() if k[0] == name}
            assert {k: v for k, v in again.items() if k[0] == name} == before
        assert total(again, "entsync_directory_writes_total") == 0  # counters start again
    finally:
        stop_pid(restarted.pid, timeout=20)
        restarted.wait(timeout=10)


def test_a_taken_metrics_port_stops_the_worker_at_once(pipeline: Pipeline) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**pipeline.env, "ENTSYNC_METRICS_PORT": str(port)}
        env["ENTSYNC_METRICS_HOST"] = "127.0.0.1"
        done = subprocess.run(
            [e2e.ENTSYNC, "worker"], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert "ENTSYNC_METRICS_PORT" in done.stderr


def _answers(port: int, path: str) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}{path}")[0] == 200
    except OSError:
        return False

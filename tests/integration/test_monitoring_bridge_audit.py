"""The bridge's and the audit consumer's /metrics, /healthz and /readyz, on real services."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from connectors.ldap.connection import LdapParams
from connectors.services.process import free_port, stop_pid
from connectors.stream.clients import KafkaParams
from connectors.stream.topics import ensure_topics
from tests.integration import test_audit_pipeline as audit_e2e
from tests.integration import test_bridge_oidc as oidc
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.bridge_support.harness import Bridge, query
from tests.integration.bridge_support.providers import EduConnect
from tests.integration.conftest import LocalServices
from tests.integration.test_monitoring_worker import get, scrape, total, wait_for

pytestmark = pytest.mark.integration

# Fixtures shared with the bridge and pipeline tests.
bridge, ec, fc, world = oidc.bridge, oidc.ec, oidc.fc, oidc.world
fresh_broker = e2e.fresh_broker
ENTSYNC, MOTHER = e2e.ENTSYNC, oidc.MOTHER


def bridge_env(services: LocalServices, issuer: str, port: int, tmp: Path) -> dict[str, str]:
    params = services.ldap_params
    return {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "ENTSYNC_LDAP_URL": params.url,
        "ENTSYNC_LDAP_BIND_DN": params.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": params.password,
        "ENTSYNC_LDAP_BASE_DN": services.base_dn,
        "ENTSYNC_AUDIT_DIGEST_KEY": "monitoring-audit-digest-key-0123456789",
        "ENTSYNC_BRIDGE_SECRET": "monitoring-bridge-secret-0123456789-abcdef",
        "ENTSYNC_BRIDGE_PORT": str(port),
        "ENTSYNC_BRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ENTSYNC_BRIDGE_COOKIE_SECURE": "false",
        "ENTSYNC_BRIDGE_SYNC_ENABLED": "false",
        "ENTSYNC_BRIDGE_EDUCONNECT_ISSUER": issuer,
        "ENTSYNC_BRIDGE_EDUCONNECT_CLIENT_ID": "ent-bridge",
        "ENTSYNC_BRIDGE_EDUCONNECT_CLIENT_SECRET": "client-secret-for-tests-only",
        "ENTSYNC_LOG_FORMAT": "json",
    }


def serve_bridge(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [ENTSYNC, "bridge", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def answers(url: str) -> bool:
    try:
        return get(url)[0] in (200, 503)
    except OSError:
        return False


def test_the_bridge_serves_health_and_metrics_on_its_own_port(
    local_services: LocalServices,
    ec: EduConnect,
    tmp_path: Path,
) -> None:
    port = free_port()
    server = serve_bridge(bridge_env(local_services, ec.issuer, port, tmp_path), tmp_path / "b")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), 60, "the bridge's /healthz")
        status, body = get(f"{base}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"] == {"store": "ok", "provider:educonnect": "ok"}
        samples = scrape(port)
        assert total(samples, "entsync_build_info", component="bridge") == 1
        assert get(f"{base}/")[0] == 200  # the pages are still there
    finally:
        stop_pid(server.pid, timeout=15)
        server.wait(timeout=10)


def test_a_bridge_whose_provider_does_not_answer_is_not_ready(
    local_services: LocalServices, tmp_path: Path
) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    server = serve_bridge(bridge_env(local_services, dead, port, tmp_path), tmp_path / "b")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), 60, "the bridge's /healthz")
        status, body = get(f"{base}/readyz")
        assert status == 503
        checks = json.loads(body)["checks"]
        assert checks == {"store": "ok", "provider:educonnect": "provider-unreachable"}
        assert get(f"{base}/healthz")[0] == 200  # alive all the same
    finally:
        stop_pid(server.pid, timeout=15)
        server.wait(timeout=10)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sign_ins_refusals_and_answers_are_counted(
    bridge: Bridge,
    ec: EduConnect,
    ldap_params: LdapParams,
) -> None:
    name = "entsync_bridge_sign_ins_total"
    first = {"provider": "educonnect", "outcome": "first_sign_in", "reason": ""}
    refused = {"provider": "educonnect", "outcome": "refused", "reason": "state-mismatch"}
    again = {"provider": "educonnect", "outcome": "signed_in", "reason": ""}
    before = {k: _value(name, **v) for k, v in (("f", first), ("r", refused), ("a", again))}
    ec.set_user("ec-mother", MOTHER)
    url = await bridge.start("educonnect")
    callback = await bridge.authorize(url, "ec-mother")
    wrong = callback.replace(query(callback)["state"], "x" * 43)
    assert (await bridge.callback(wrong)).status_code == 400
    assert (await bridge.sign_in("educonnect", "ec-mother")).status_code == 303
    assert (await bridge.sign_in("educonnect", "ec-mother")).status_code == 303
    assert _value(name, **refused) == before["r"] + 1
    assert _value(name, **first) == before["f"] + 1
    assert _value(name, **again) == before["a"] + 1
    attached = {"outcome": "attached", "by": "parent"}
    blocked = {"outcome": "blocked", "by": "parent"}
    counts = (
        _value("entsync_bridge_attachments_total", **attached),
        _value("entsync_bridge_attachments_total", **blocked),
    )
    page = await bridge.client.get("/rattachement")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"csrf": token, "naissance-el-lea": "14/03/2017", "naissance-el-hugo": "01/01/2001"}
    assert (await bridge.client.post("/rattachement", data=form)).status_code == 303
    assert _value("entsync_bridge_attachments_total", **attached) == counts[0] + 1
    assert _value("entsync_bridge_attachments_total", **blocked) == counts[1] + 1


def test_the_audit_consumer_serves_health_and_counts_what_it_stores(
    fresh_broker: str,
    tmp_path: Path,
) -> None:
    asyncio.run(ensure_topics(KafkaParams(fresh_broker), 2))
    events = [audit_e2e._event(n) for n in range(40)]
    messages = [(e.entity_id.encode(), e.model_dump_json().encode()) for e in events]
    asyncio.run(audit_e2e._produce(fresh_broker, messages))
    port = free_port()
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": fresh_broker,
        "ENTSYNC_METRICS_PORT": str(port),
        "ENTSYNC_METRICS_HOST": "127.0.0.1",
        "ENTSYNC_LOG_FORMAT": "json",
    }
    db = str(tmp_path / "audit.sqlite3")
    with (tmp_path / "audit.log").open("w") as out:
        consumer = subprocess.Popen(
            [ENTSYNC, "audit", "consume", "--db", db], env=env, stdout=out, stderr=out
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), 60, "the audit consumer's /healthz")
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 30, "the audit consumer ready")
        assert json.loads(get(f"{base}/readyz")[1])["checks"] == {
            "store": "ok",
            "partitions": "ok",
        }

        def stored() -> bool:
            return total(scrape(port), "entsync_audit_events_total", status="stored") == 40

        wait_for(stored, 60, "40 audit events stored")
        samples = scrape(port)
        assert total(samples, "entsync_audit_events_total", status="invalid") == 0
        assert total(samples, "entsync_consumer_lag_messages") == 0
        assert total(samples, "entsync_build_info", component="audit-consumer") == 1
    finally:
        stop_pid(consumer.pid, timeout=15)
        consumer.wait(timeout=10)

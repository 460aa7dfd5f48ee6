"""Metric definitions, label hygiene, the worker's table counts and the health endpoints."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from connectors.ldap.writer import Action, OpResult
from connectors.monitoring import metrics as m
from connectors.monitoring.server import HealthServer, PortInUseError, bind, run_checks
from connectors.stream.monitor import Tally, facets, raw_facets
from connectors.stream.reconciler import count_write
from entsync.settings import Settings
from entsync.status import _samples, http_get, worker_facts
from schemas.feed import HoldReason
from schemas.state import EntityState
from sync.ops import AddEntry, DeleteEntry, ModifyEntry

FORBIDDEN = re.compile(r"name|login|ine|jointure|entity|dn|mail|birth|phone|subject|bridge_id")


def entsync_metrics() -> list[object]:
    return [c for c in REGISTRY.collect() if c.name.startswith("entsync_")]


def test_every_metric_has_only_allowed_non_personal_label_names() -> None:
    m.set_build_info("worker")  # the series known in advance exist
    metrics = entsync_metrics()
    assert len(metrics) >= 15
    for metric in metrics:
        for sample in metric.samples:  # type: ignore[attr-defined]
            names = set(sample.labels) - {"le"}  # histogram buckets
            assert names <= m.ALLOWED_LABELS, (sample.name, names)
    assert not [label for label in m.ALLOWED_LABELS if FORBIDDEN.search(label)]


def test_the_documented_metrics_exist() -> None:
    names = {c.name for c in entsync_metrics()}
    for expected in (
        "entsync_feed_records",
        "entsync_directory_writes",
        "entsync_directory_write_seconds",
        "entsync_ldap_retries",
        "entsync_batch_seconds",
        "entsync_accounts",
        "entsync_holds_pending",
        "entsync_snapshot_last_success_timestamp_seconds",
        "entsync_snapshots_decided",
        "entsync_consumer_lag_messages",
        "entsync_bridge_sign_ins",
        "entsync_bridge_attachments",
        "entsync_audit_events",
        "entsync_build",
    ):
        assert expected in names


@given(st.text(max_size=80))
def test_a_scope_label_is_a_code_or_other(text: str) -> None:
    label = m.scope_label(text)
    assert label == m.OTHER or (label == text and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", text))


def test_scopes_and_reasons_as_they_come() -> None:
    assert m.scope_label("0310100R") == "0310100R"
    assert m.scope_label("AC-TOULOUSE") == "AC-TOULOUSE"
    assert m.scope_label("Jean Dupont") == m.OTHER
    assert m.reason_label("state-mismatch") == "state-mismatch"
    assert m.reason_label(None) == ""
    assert m.reason_label("Bad <value> from provider") == m.OTHER


persons = st.builds(
    EntityState,
    entity_id=st.from_regex(r"[a-z]{2}-[a-z0-9]{1,8}", fullmatch=True),
    kind=st.sampled_from(["pupil", "guardian", "staff", "manual", "school", "group", "login"]),
    account_state=st.sampled_from([None, "active", "disappeared", "predeleted", "deleted"]),
    ine_conflict_at=st.sampled_from([None, datetime(2026, 1, 1, tzinfo=UTC)]),
    held_reason=st.sampled_from([None, HoldReason.INE_CONFLICT]),
    login=st.sampled_from([None, 'a"kind":"pupil"', "jdupont"]),
)


@given(persons)
def test_the_raw_count_agrees_with_the_parsed_state(state: EntityState) -> None:
    assert raw_facets(state.model_dump_json().encode()) == facets(state)


@given(st.lists(st.tuples(st.integers(0, 5), persons), max_size=30))
def test_counts_kept_at_each_change_equal_a_recount(changes: list[tuple[int, EntityState]]) -> None:
    kept, table = Tally(), {}
    kept.recount({}, {})
    for key, state in changes:
        k = str(key).encode()
        before = EntityState.model_validate_json(table[k]) if k in table else None
        # The worker holds a state read from the table as its JSON: counted the same.
        kept.changed([(before if key % 2 else table.get(k), state)])
        table[k] = state.model_dump_json().encode()
    counted = Tally()
    counted.recount(table, {})
    assert +kept.accounts == +counted.accounts
    assert +kept.holds == +counted.holds


def test_directory_writes_are_counted_by_op_and_outcome() -> None:
    add = AddEntry(dn="uid=x,ou=people,dc=e", attributes={"cn": ("x",)})
    modify = ModifyEntry(dn="uid=x,ou=people,dc=e", changes={"cn": ("y",)})
    delete = DeleteEntry(dn="uid=x,ou=people,dc=e")

    def value(op: str, outcome: str) -> float:
        sample = "entsync_directory_writes_total"
        return REGISTRY.get_sample_value(sample, {"op": op, "outcome": outcome}) or 0.0

    before = value("add", "healed"), value("modify", "already_done"), value("delete", "refused")
    retries = REGISTRY.get_sample_value("entsync_ldap_retries_total", {"op": "add"}) or 0.0
    count_write(add, OpResult(add, Action.HEALED, retries=2, seconds=0.01))
    count_write(modify, OpResult(modify, Action.NOOP))
    count_write(delete, None)
    assert value("add", "healed") == before[0] + 1
    assert value("modify", "already_done") == before[1] + 1
    assert value("delete", "refused") == before[2] + 1
    assert REGISTRY.get_sample_value("entsync_ldap_retries_total", {"op": "add"}) == retries + 2


def test_the_metrics_port_of_continuous_and_batch_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENTSYNC_METRICS_PORT", raising=False)  # the integration tests set it
    assert Settings().metrics_port_for(continuous=True) == 9464
    assert Settings().metrics_port_for(continuous=False) is None
    assert Settings(metrics_port=9500).metrics_port_for(continuous=False) == 9500
    assert Settings(metrics_port=0).metrics_port_for(continuous=True) is None


async def test_health_endpoints_answer_and_readyz_says_what_fails() -> None:
    state = {"ready": False}

    async def tables() -> str | None:
        return None if state["ready"] else "recovering tables"

    async def broken() -> str | None:
        raise OSError("down")

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = HealthServer(sock, {"tables": tables})
    await server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await asyncio.to_thread(http_get, f"{base}/healthz"))[0] == 200
        status, body = await asyncio.to_thread(http_get, f"{base}/readyz")
        assert status == 503 and json.loads(body)["checks"] == {"tables": "recovering tables"}
        state["ready"] = True
        status, body = await asyncio.to_thread(http_get, f"{base}/readyz")
        assert status == 200 and json.loads(body) == {"ready": True, "checks": {"tables": "ok"}}
        status, text = await asyncio.to_thread(http_get, f"{base}/metrics")
        assert status == 200 and "entsync_ready 1.0" in text
        with pytest.raises(PortInUseError, match="ENTSYNC_METRICS_PORT"):
            bind("127.0.0.1", port)
    finally:
        await server.stop()
    assert await run_checks({"broken": broken}) == (False, {"broken": "OSError"})


LAST = "entsync_snapshot_last_success_timestamp_seconds"


def test_status_sums_workers_and_keeps_the_latest_snapshot() -> None:
    text = "\n".join(
        [
            'entsync_accounts{state="active",profile="pupil"} 10',
            'entsync_accounts{state="active",profile="pupil"} 5',
            'entsync_holds_pending{kind="snapshot"} 1',
            f'{LAST}{{category="Eleve",scope="0310100R"}} 100',
            f'{LAST}{{category="Eleve",scope="0310100R"}} 86500',
            'entsync_directory_writes_total{op="add",outcome="refused"} 2',
            'entsync_directory_writes_total{op="modify",outcome="refused"} 1',
            "",
        ]
    )
    facts = worker_facts(_samples(text), datetime.fromtimestamp(86500 + 86400, UTC))
    assert facts["accounts"] == {"active": {"pupil": 15}}
    assert facts["holds_pending"] == {"snapshot": 1}
    assert facts["directory_writes"] == {"refused": 3}
    (snapshot,) = facts["snapshots"]
    assert snapshot["scope"] == "0310100R" and snapshot["age_days"] == 1.0

"""``entsync status``: the facts of the monitoring metrics, for an operator at a terminal.

It reads what Prometheus reads: the ``/metrics`` and ``/readyz`` of the running workers (and,
when given, of the audit consumer and the bridge), so the terminal and the dashboards never
disagree. Several workers are summed (each counts the partitions it holds); the snapshot
times take the latest.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT_S = 5.0
Sample = tuple[str, dict[str, str], float]


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:  # /readyz answers 503 with its checks
        return exc.code, exc.read().decode()


def _samples(text: str) -> list[Sample]:
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def endpoint(url: str) -> tuple[dict[str, Any], list[Sample]]:
    """What one process says of itself (reachable, ready, version), and its samples."""
    base = url.rstrip("/")
    info: dict[str, Any] = {"url": base, "reachable": False, "ready": False}
    try:
        status, body = http_get(f"{base}/readyz")
        info["reachable"] = True
        info["ready"] = status == 200
        try:
            info["checks"] = json.loads(body).get("checks", {})
        except (ValueError, AttributeError):
            info["checks"] = {}
        _, text = http_get(f"{base}/metrics")
    except OSError as exc:  # URLError included: not running, wrong port
        info["error"] = str(getattr(exc, "reason", exc))
        return info, []
    samples = _samples(text)
    for name, labels, _ in samples:
        if name == "entsync_build_info":
            info["version"] = labels.get("version")
            info["component"] = labels.get("component")
    return info, samples


def _by(samples: list[Sample], name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = defaultdict(float)
    for n, labels, value in samples:
        if n == name:
            found[labels.get(label, "")] += value
    return dict(sorted(found.items()))


def _ints(values: dict[str, float]) -> dict[str, int]:
    return {k: int(v) for k, v in values.items()}


def worker_facts(samples: list[Sample], now: datetime) -> dict[str, Any]:
    accounts: dict[str, dict[str, int]] = defaultdict(dict)
    latest: dict[tuple[str, str], float] = {}
    for name, labels, value in samples:
        if name == "entsync_accounts":
            row = accounts[labels["state"]]
            row[labels["profile"]] = row.get(labels["profile"], 0) + int(value)
        elif name == "entsync_snapshot_last_success_timestamp_seconds":
            key = (labels["category"], labels["scope"])
            latest[key] = max(latest.get(key, 0.0), value)
    snapshots = [
        {
            "category": category,
            "scope": scope,
            "last_success": datetime.fromtimestamp(at, UTC).isoformat(),
            "age_days": round((now.timestamp() - at) / 86400, 2),
        }
        for (category, scope), at in sorted(latest.items())
    ]
    return {
        "accounts": {state: dict(sorted(row.items())) for state, row in sorted(accounts.items())},
        "holds_pending": _ints(_by(samples, "entsync_holds_pending", "kind")),
        "snapshots": snapshots,
        "snapshot_decisions": _ints(_by(samples, "entsync_snapshots_decided_total", "outcome")),
        "feed_records": _ints(_by(samples, "entsync_feed_records_total", "outcome")),
        "directory_writes": _ints(_by(samples, "entsync_directory_writes_total", "outcome")),
        "ldap_retries": int(sum(_by(samples, "entsync_ldap_retries_total", "op").values())),
        "consumer_lag": int(sum(_by(samples, "entsync_consumer_lag_messages", "topic").values())),
    }


def collect(
    workers: list[str], audit: str | None, bridge: str | None, now: datetime
) -> dict[str, Any]:
    """Every fact ``entsync status`` shows, as JSON-ready data."""
    infos, samples = [], []
    for url in workers:
        info, found = endpoint(url)
        infos.append(info)
        samples.extend(found)
    facts: dict[str, Any] = {"workers": infos, **worker_facts(samples, now)}
    if audit is not None:
        info, found = endpoint(audit)
        info["events"] = _ints(_by(found, "entsync_audit_events_total", "status"))
        facts["audit_consumer"] = info
    if bridge is not None:
        info, found = endpoint(bridge)
        info["sign_ins"] = _ints(_by(found, "entsync_bridge_sign_ins_total", "outcome"))
        info["attachments"] = _ints(_by(found, "entsync_bridge_attachments_total", "outcome"))
        facts["bridge"] = info
    return facts


def all_reachable(facts: dict[str, Any]) -> bool:
    processes = [*facts["workers"], facts.get("audit_consumer"), facts.get("bridge")]
    return all(p["reachable"] for p in processes if p is not None)

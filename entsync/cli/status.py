"""CLI: ``entsync status``: readiness, accounts, holds, snapshots and writes at a glance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from entsync.cli.common import StateDir, console, settings_or_exit
from entsync.settings import DEFAULT_METRICS_PORT


def _print(facts: dict[str, Any]) -> None:
    for process in [*facts["workers"], facts.get("audit_consumer"), facts.get("bridge")]:
        if process is None:
            continue
        state = "ready" if process["ready"] else "NOT READY"
        if not process["reachable"]:
            state = f"UNREACHABLE ({process.get('error', '')})"
        failing = {k: v for k, v in process.get("checks", {}).items() if v != "ok"}
        extra = f" {failing}" if failing else ""
        version = f" version {process['version']}" if process.get("version") else ""
        console.print(f"{process['url']}: {state}{version}{extra}", markup=False)
    accounts = facts["accounts"]
    profiles = sorted({p for row in accounts.values() for p in row})
    table = Table(title="accounts by lifecycle state and profile")
    table.add_column("state")
    for profile in profiles:
        table.add_column(profile, justify="right")
    for state, row in accounts.items():
        table.add_row(state, *(str(row.get(p, 0)) for p in profiles))
    console.print(table)
    console.print(f"holds pending: {_pairs(facts['holds_pending'])}", markup=False)
    console.print(f"feed records: {_pairs(facts['feed_records'])}", markup=False)
    console.print(f"directory writes: {_pairs(facts['directory_writes'])}", markup=False)
    console.print(
        f"LDAP retries: {facts['ldap_retries']}, consumer lag: {facts['consumer_lag']} messages",
        markup=False,
    )
    snapshots = Table(title="last successful complete snapshot")
    for column in ("category", "scope", "at", "days ago"):
        snapshots.add_column(column)
    for s in facts["snapshots"]:
        snapshots.add_row(s["category"], s["scope"], s["last_success"], f"{s['age_days']:.1f}")
    console.print(snapshots)
    for name, key in (("audit_consumer", "events"), ("bridge", "sign_ins")):
        if name in facts:
            console.print(f"{name}: {_pairs(facts[name].get(key, {}))}", markup=False)


def _pairs(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "none"


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        worker: Annotated[
            list[str] | None,
            typer.Option(
                "--worker",
                help="a worker's metrics URL, repeatable (default http://127.0.0.1:<port of "
                "ENTSYNC_METRICS_PORT, else 9464>)",
            ),
        ] = None,
        audit: Annotated[
            str | None, typer.Option("--audit", help="the audit consumer's metrics URL")
        ] = None,
        bridge: Annotated[str | None, typer.Option("--bridge", help="the bridge's URL")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        state_dir: StateDir = None,
    ) -> None:
        """What the workers' /metrics and /readyz say: readiness, accounts by state and
        profile, pending holds, last successful snapshots, writes. Exit 1 if one does not
        answer."""
        from entsync.status import all_reachable, collect

        if not worker:
            port = settings_or_exit(state_dir).metrics_port or DEFAULT_METRICS_PORT
            worker = [f"http://127.0.0.1:{port}"]
        facts = collect(worker, audit, bridge, datetime.now(UTC))
        if as_json:
            typer.echo(json.dumps(facts, indent=2))
        else:
            _print(facts)
        raise typer.Exit(0 if all_reachable(facts) else 1)

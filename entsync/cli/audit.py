"""CLI commands: ``entsync audit consume | history | search | export | verify | gaps | prune``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from entsync.cli.common import EXIT_CONFIG, StateDir, console, err, fail, settings_or_exit
from entsync.kafka_clients import kafka_params
from entsync.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from connectors.auditstore import AuditRow, AuditStore
    from connectors.auditstore.consumer import ConsumeProgress

EXIT_TAMPERED = 1

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="postgresql://user:password@host/db or an SQLite file (default: "
        "ENTSYNC_AUDIT_DB_URL, else <state dir>/audit.sqlite3)",
        show_default=False,
    ),
]
Since = Annotated[
    str | None, typer.Option("--since", help="ISO date or time (UTC unless given), inclusive")
]
Until = Annotated[str | None, typer.Option("--until", help="ISO date or time, exclusive")]
AsJson = Annotated[bool, typer.Option("--json", help="one JSON line per event, as export")]

audit_app = typer.Typer(
    name="audit",
    help=(
        "The audit store: every directory change of the audit topic kept once, hash-chained "
        "per partition. Exit codes: 0 ok, 1 verification failed or consume error, 2 "
        "configuration error, 3 timeout."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(audit_app, name="audit")


@contextmanager
def _store(settings: Settings, db: str | None) -> Iterator[AuditStore]:
    from connectors.auditstore import StoreUrlError, open_store, redact

    url = db or (settings.audit_db_url.get_secret_value() if settings.audit_db_url else None)
    try:
        store = open_store(url, settings.state_dir)
    except StoreUrlError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    except Exception as exc:  # the driver's own errors: unreachable server, bad credentials
        where = redact(url) if url else str(settings.state_dir)
        raise fail(
            f"cannot open the audit store {where}: {type(exc).__name__}", EXIT_CONFIG
        ) from exc
    try:
        yield store
    finally:
        store.close()


def _time(text: str | None, option: str) -> str | None:
    from sync.auditindex import parse_time, utc_text

    if text is None:
        return None
    try:
        return utc_text(parse_time(text))
    except ValueError as exc:
        raise fail(f"{option} {text!r} is not an ISO 8601 date or time", EXIT_CONFIG) from exc


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@audit_app.command()
def consume(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="exit 0 once the topic is stored to its end")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="with --until-idle: give up after S s")
    ] = None,
    db: DbUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Store the audit topic's events, each once, from the store's own positions."""
    from connectors.auditstore.consumer import AuditConsumer, run_consumer
    from connectors.monitoring.metrics import set_build_info
    from connectors.monitoring.server import PortInUseError, bind

    settings = settings_or_exit(state_dir)
    port = settings.metrics_port_for(continuous=not until_idle)
    try:
        kafka = kafka_params(settings)
        health = None if port is None else bind(settings.metrics_host, port)
    except (ConfigurationError, PortInUseError) as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    set_build_info("audit-consumer")
    with _store(settings, db) as store, _progress() as on_progress:
        consumer = AuditConsumer(
            store, kafka, retention_days=settings.audit_retention_days, on_progress=on_progress
        )
        result = run_consumer(consumer, until_idle, timeout, health)
    p = result.progress
    if not result.topic_found:
        console.print("audit: the audit topic does not exist yet; nothing to store")
    console.print(
        f"audit: {p.stored} events stored, {p.duplicates} duplicates, {p.invalid} invalid, "
        f"{len(p.gaps)} gaps"
        + (f", {p.pruned} pruned" if p.pruned else "")
        + f" in {result.elapsed_s:.1f} s"
    )
    for partition, gap in p.gaps:
        err.print(f"[yellow]gap:[/] partition {partition}: {gap.describe()} never delivered")
    if result.error:
        err.print(f"[bold red]error:[/] {result.error}")
    raise typer.Exit(result.exit_code)


@contextmanager
def _progress() -> Iterator[Any]:
    """A live line on a terminal; nothing in CI or when stderr is not a terminal."""
    if not _interactive():
        yield None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as bar:
        task = bar.add_task("audit: starting")

        def update(p: ConsumeProgress) -> None:
            left = "" if p.remaining is None else f", {p.remaining} left"
            bar.update(task, description=f"audit: {p.stored} stored, {p.duplicates} dup{left}")

        yield update


@audit_app.command()
def history(
    ident: Annotated[str, typer.Argument(help="entity id (e.g. p-...) or DN", metavar="ID")],
    as_json: AsJson = False,
    db: DbUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Every stored change of one entry, oldest first."""
    with _store(settings_or_exit(state_dir), db) as store:
        _show(store.history(ident), as_json, f"history of {ident}")


@audit_app.command()
def search(
    school: Annotated[
        str | None,
        typer.Option(
            "--school",
            help="school UAI (its jointure): the school's entry and its groups; person "
            "events carry no school",
        ),
    ] = None,
    since: Since = None,
    until: Until = None,
    action: Annotated[str | None, typer.Option("--action", help="add, modify or delete")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="pupil, guardian, staff, school, group")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="event type, e.g. directory.changed")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    as_json: AsJson = False,
    db: DbUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Stored changes matching every filter given, oldest first (time of their cause)."""
    from connectors.auditstore import Search

    filters = Search(
        school=school,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        action=action,
        entity_kind=kind,
        type=event_type,
        limit=limit,
    )
    with _store(settings_or_exit(state_dir), db) as store:
        _show(store.search(filters), as_json, "audit search")


def _show(rows: list[AuditRow], as_json: bool, title: str) -> None:
    if as_json:
        for row in rows:
            sys.stdout.write(_export_line(row) + "\n")
        return
    table = Table(title=f"{title}: {len(rows)} change(s)")
    for column in ("time (UTC)", "action", "kind", "entity", "dn", "rule", "attributes"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            (row.time or "")[:19],
            row["action"] or row["type"] or "",
            row["entity_kind"] or "",
            row["entity_id"] or "",
            row["dn"] or "",
            row["rule"] or "",
            ", ".join(_attribute_names(row)),
        )
    console.print(table)


def _attribute_names(row: AuditRow) -> list[str]:
    try:
        changes = json.loads(row["raw"] or "{}").get("changes") or []
    except json.JSONDecodeError:
        return []
    return [str(c.get("name")) for c in changes if isinstance(c, dict)]


def _export_line(row: AuditRow) -> str:
    from schemas.auditstore import ExportedAuditRecord

    return ExportedAuditRecord(
        topic=row["msg_topic"],
        partition=row["msg_partition"],
        offset=row["msg_offset"],
        logged_at=row["msg_at"],
        hash=row.hash,
        event=json.loads(row["raw"]) if row["raw"] else None,
    ).model_dump_json()


@audit_app.command()
def export(
    fmt: Annotated[
        Literal["jsonl"], typer.Option("--format", help="jsonl: one stored event per line")
    ] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="file (default: stdout)")] = None,
    since: Since = None,
    until: Until = None,
    db: DbUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Every stored event, oldest first, with its topic position and chain hash."""
    since_text, until_text = _time(since, "--since"), _time(until, "--until")
    with _store(settings_or_exit(state_dir), db) as store:
        target = out.open("w", encoding="utf-8") if out else sys.stdout
        count = 0
        try:
            for row in store.export(since_text, until_text):
                target.write(_export_line(row) + "\n")
                count += 1
        finally:
            if out:
                target.close()
    if out:
        console.print(f"{count} events written to {out} ({fmt})")


@audit_app.command()
def verify(db: DbUrl = None, state_dir: StateDir = None) -> None:
    """Check every partition's hash chain; exit 1 naming what was changed or removed."""
    with _store(settings_or_exit(state_dir), db) as store:
        results = store.verify()
        counts = store.counts()
    tampered = False
    for info, check in results:
        head = "none" if info.head.offset is None else f"{info.head.offset} {info.head.hash}"
        state = "ok" if check.ok else "[bold red]FAILED[/]"
        console.print(
            f"{info.topic}[{info.partition}]: {check.records} records"
            + (f" ({info.pruned} pruned, anchor offset {info.start.offset})" if info.pruned else "")
            + f", head {head}: {state}"
        )
        for finding in check.findings:
            style = "yellow" if finding.kind == "gap" else "bold red"
            console.print(f"  [{style}]{finding.kind}[/]: {finding.detail}")
        tampered = tampered or not check.ok
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "empty"
    console.print(f"audit store: {summary}; " + ("TAMPERED" if tampered else "chain verified"))
    raise typer.Exit(EXIT_TAMPERED if tampered else 0)


@audit_app.command()
def gaps(db: DbUrl = None, state_dir: StateDir = None) -> None:
    """Offsets of the audit topic the broker never delivered, as detected when consuming."""
    with _store(settings_or_exit(state_dir), db) as store:
        found = store.gaps()
    from sync.auditchain import Gap

    for gap in found:
        span = Gap(gap.start, gap.end).describe()
        console.print(f"{gap.topic}[{gap.partition}]: {span} (detected {gap.detected_at})")
    console.print(f"{len(found)} gap(s)")


@audit_app.command()
def prune(
    days: Annotated[
        int | None,
        typer.Option(
            "--days", min=1, help="keep this many days (default ENTSYNC_AUDIT_RETENTION_DAYS)"
        ),
    ] = None,
    db: DbUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Remove records older than the retention; the chain stays verifiable from its anchor."""
    from connectors.auditstore.retention import cutoff_for
    from connectors.auditstore.retention import prune as prune_store
    from sync.auditindex import utc_text

    settings = settings_or_exit(state_dir)
    keep = days or settings.audit_retention_days
    if keep is None:
        raise fail("no retention: give --days N or set ENTSYNC_AUDIT_RETENTION_DAYS", EXIT_CONFIG)
    now = datetime.now(UTC)
    with _store(settings, db) as store:
        removed = prune_store(store, cutoff_for(keep, now), utc_text(now))
    for (topic, partition), count in sorted(removed.items()):
        console.print(f"{topic}[{partition}]: {count} records pruned")
    console.print(f"{sum(removed.values())} records older than {keep} days pruned")

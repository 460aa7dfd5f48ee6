"""CLI commands: ``entsync lifecycle sweep``, ``entsync holds list | approve | reject``,
``entsync year freeze | unfreeze | switchover``."""

from __future__ import annotations

import getpass
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from entsync.cli.common import (
    EXIT_CONFIG,
    EXIT_REFUSED,
    StateDir,
    console,
    fail,
    settings_or_exit,
)
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError

lifecycle_app = typer.Typer(
    name="lifecycle",
    help=(
        "Account lifecycle: disappeared accounts are pre-deleted after a delay (out of every "
        "group, entry and login kept), then deleted after another (ENTSYNC_LIFECYCLE_*_DAYS, "
        "default 90 and 90). The worker also sweeps nightly (ENTSYNC_LIFECYCLE_SWEEP_HOUR, "
        "Europe/Paris)."
    ),
    no_args_is_help=True,
)
holds_app = typer.Typer(
    name="holds",
    help=(
        "Snapshots held by the mass-deletion guard (a complete extract that would mark more than "
        "ENTSYNC_LIFECYCLE_GUARD_SHARE of a scope's active accounts as disappeared, and at least "
        "ENTSYNC_LIFECYCLE_GUARD_MIN_COUNT, or an empty one). Nothing is marked until approved."
    ),
    no_args_is_help=True,
)
year_app = typer.Typer(
    name="year",
    help=(
        "The school-year calendar, driven by the operator only: freeze at the end of the year "
        "(files stop; nothing disappears while frozen), switchover when ONDE moves to the new "
        "year (last year's classes and teacher-class links are retired; pupils and guardians "
        "keep their school until a new-year file places them; their absence from new-year "
        "files waits ENTSYNC_LIFECYCLE_GRACE_DAYS, default 30)."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(lifecycle_app, name="lifecycle")
    app.add_typer(holds_app, name="holds")
    app.add_typer(year_app, name="year")


FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of the operator's machine and the servers


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"not an ISO date-time: {text!r} (e.g. 2027-01-15T03:00:00Z)", 2) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _guarded(action: object) -> None:
    """Run ``action`` mapping operational failures to clear errors and exit codes."""
    from aiokafka.errors import KafkaError

    from connectors.ldap import DirectoryError
    from entsync.lifecycle_ops import LifecycleRefused

    try:
        action()  # type: ignore[operator]
    except LifecycleRefused as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc
    except (ConfigurationError, DirectoryError) as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    except (KafkaError, TimeoutError) as exc:
        raise fail(f"cannot reach the broker: {exc}", ExitCode.BROKER_UNREACHABLE) from exc


@lifecycle_app.command("sweep")
def sweep(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="print what a sweep would do (from the worker's state)"),
    ] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", help="the date to sweep at, ISO 8601 (default: now); simulations"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per transition")] = False,
    future: Annotated[
        bool,
        typer.Option(
            "--future",
            help="allow a real sweep at a --now in the future (test directories only: accounts "
            "move ahead of time and a returning person is held off until that date)",
        ),
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Move disappeared and pre-deleted accounts on when their delay is over."""
    from entsync import lifecycle_ops

    at = _instant(now)
    if not dry_run and not future and at > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise fail(
            f"--now {at.isoformat()} is in the future: a real sweep would predelete and delete "
            "accounts before their time; use --dry-run to simulate, or --future on a test "
            "directory",
            EXIT_REFUSED,
        )
    settings = settings_or_exit(state_dir)

    def run() -> None:
        if not dry_run:
            partitions = lifecycle_ops.publish_sweep(settings, at)
            console.print(
                f"published: sweep at {at.isoformat()} to {partitions} partitions; "
                "the worker applies it",
                markup=False,
            )
            return
        planned = lifecycle_ops.dry_run_sweep(settings, at)
        if as_json:
            for state, due in planned:
                line = {"entity_id": state.entity_id, "kind": state.kind, "to": due.to}
                console.print(json.dumps(line), markup=False)
            return
        counts = Counter((state.kind, due.to) for state, due in planned)
        table = Table(title=f"Dry run: a sweep at {at.isoformat()} would move")
        for column in ("profile", "to", "accounts"):
            table.add_column(column)
        for (kind, to), n in sorted(counts.items()):
            table.add_row(kind, to, str(n))
        console.print(table)
        console.print(f"{len(planned)} transitions; nothing was changed", markup=False)

    _guarded(run)


@holds_app.command("list")
def holds_list(
    show_all: Annotated[bool, typer.Option("--all", help="every snapshot decision")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per hold")] = False,
    state_dir: StateDir = None,
) -> None:
    """Open holds (id, scope, counts, reason)."""
    from entsync import lifecycle_ops
    from sync import absence

    settings = settings_or_exit(state_dir)

    def run() -> None:
        decisions = lifecycle_ops.read_decisions(settings)
        shown = (
            list(absence.latest_decisions(decisions).values())
            if show_all
            else absence.open_holds(decisions)
        )
        if as_json:
            for d in shown:
                console.print(d.model_dump_json(), markup=False)
            return
        table = Table(title="Snapshot decisions" if show_all else "Open holds")
        for column in ("id", "category", "scope", "outcome", "absent/active", "records", "at"):
            table.add_column(column)
        for d in shown:
            table.add_row(
                d.snapshot_id[:12],
                d.category.value,
                d.scope,
                d.outcome,
                f"{d.absent}/{d.active}",
                str(d.record_count),
                d.at.isoformat(timespec="seconds"),
            )
        console.print(table)
        if not shown:
            console.print("none", markup=False)

    _guarded(run)


def _decide_hold(hold_id: str, approve: bool, state_dir: Path | None) -> None:
    from entsync import lifecycle_ops

    settings = settings_or_exit(state_dir)

    def run() -> None:
        hold = lifecycle_ops.find_hold(lifecycle_ops.read_decisions(settings), hold_id)
        operator = getpass.getuser()
        lifecycle_ops.publish_hold_decision(settings, hold, approve, operator, datetime.now(UTC))
        verb = "approved" if approve else "rejected"
        console.print(
            f"published: hold {hold.snapshot_id[:12]} ({hold.category.value} {hold.scope}, "
            f"{hold.absent}/{hold.active} absent) {verb}; the worker applies it",
            markup=False,
        )

    _guarded(run)


@holds_app.command("approve")
def holds_approve(
    hold_id: Annotated[str, typer.Argument(help="the hold's id (or its start)")],
    state_dir: StateDir = None,
) -> None:
    """Apply a held snapshot: its absent accounts are marked disappeared."""
    _decide_hold(hold_id, True, state_dir)


@holds_app.command("reject")
def holds_reject(
    hold_id: Annotated[str, typer.Argument(help="the hold's id (or its start)")],
    state_dir: StateDir = None,
) -> None:
    """Drop a held snapshot: nothing is marked."""
    _decide_hold(hold_id, False, state_dir)


def _year(action: str, school_year: str | None, at: str | None, state_dir: Path | None) -> None:
    from entsync import lifecycle_ops

    settings = settings_or_exit(state_dir)
    when = _instant(at)

    def run() -> None:
        year = lifecycle_ops.parse_school_year(school_year) if school_year else None
        purged = lifecycle_ops.publish_year(settings, action, when, year)
        console.print(f"published: year {action} at {when.isoformat()}", markup=False)
        if action == "switchover":
            groups = sum(len(p.groups) for p in purged)
            with_groups = sum(1 for p in purged if p.groups)
            console.print(
                f"{groups} class groups of {with_groups} schools announced as retired on "
                "entsync.scolarity.v1; the worker retires them",
                markup=False,
            )

    _guarded(run)


AtOption = Annotated[
    str | None, typer.Option("--at", help="ISO date-time of the command (default: now)")
]


@year_app.command("freeze")
def year_freeze(at: AtOption = None, state_dir: StateDir = None) -> None:
    """End of the school year: nothing disappears until the switchover."""
    _year("freeze", None, at, state_dir)


@year_app.command("unfreeze")
def year_unfreeze(at: AtOption = None, state_dir: StateDir = None) -> None:
    """Undo a freeze without a switchover."""
    _year("unfreeze", None, at, state_dir)


@year_app.command("switchover")
def year_switchover(
    school_year: Annotated[str, typer.Argument(help="the new school year, e.g. 2027-2028")],
    at: AtOption = None,
    state_dir: StateDir = None,
) -> None:
    """ONDE switchover: retire last year's classes; the grace period starts."""
    _year("switchover", school_year, at, state_dir)

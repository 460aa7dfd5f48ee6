"""CLI commands: ``entsync services up | down | status`` for the local slapd and broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from entsync.cli.common import EXIT_REFUSED, StateDir, console, fail, settings_or_exit
from entsync.exit_codes import ExitCode

# LSB convention for "status": 3 means "not running", so scripts can test it.
EXIT_NOT_RUNNING = ExitCode.SERVICES_NOT_RUNNING

services_app = typer.Typer(
    name="services",
    help=(
        "Local OpenLDAP (slapd) and Kafka-compatible broker (tansu) for development and tests. "
        "The directory's data survives down/up; the broker keeps its topics in memory only."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""
    app.add_typer(services_app, name="services")


@services_app.command("up")
def up_command(
    state_dir: StateDir = None,
    ldap_port: Annotated[
        int | None, typer.Option(help="fixed slapd port (default: last one if free, else any)")
    ] = None,
    kafka_port: Annotated[
        int | None, typer.Option(help="fixed broker port (default: last one if free, else any)")
    ] = None,
    base_dn: Annotated[
        str | None, typer.Option(help="directory suffix (default ENTSYNC_LDAP_BASE_DN)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each service")] = 20.0,
    durable: Annotated[
        bool, typer.Option(help="sync every LDAP write to disk (slower; default: dbnosync)")
    ] = False,
) -> None:
    """Start slapd and the broker (those not already running) and write services.json."""
    from connectors.services import ServiceError, ServicesConfig, up

    settings = settings_or_exit(state_dir)
    config = ServicesConfig(
        state_dir=settings.state_dir,
        base_dn=base_dn or settings.ldap_base_dn,
        ldap_port=ldap_port,
        kafka_port=kafka_port,
        start_timeout=timeout,
        sync_writes=durable,
    )
    try:
        result = up(config)
    except ServiceError as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc
    info = result.info
    for name in ("slapd", "broker"):
        verb = "started" if name in result.started else "already running"
        console.print(f"{name}: {verb} (pid {info[name]['pid']})", highlight=False)
    if not result.started:
        console.print("nothing to start: both services were already up", highlight=False)
    console.print(f"LDAP  {info['ldap_url']}  base {info['ldap_base_dn']}", highlight=False)
    console.print(f"Kafka {info['kafka_bootstrap']}", highlight=False)
    console.print(
        f"entsync commands read these from {Path(info['state_dir']) / 'services.json'}",
        highlight=False,
    )


@services_app.command("down")
def down_command(
    state_dir: StateDir = None,
    timeout: Annotated[float, typer.Option(help="seconds before SIGKILL")] = 10.0,
) -> None:
    """Stop the processes that 'up' started. The directory's data is kept."""
    from connectors.services import ServiceError, down

    settings = settings_or_exit(state_dir)
    try:
        result = down(settings.state_dir, timeout=timeout)
    except ServiceError as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc
    for name, pid in result.stopped.items():
        console.print(f"{name}: stopped (pid {pid})", highlight=False)
    for name in result.not_running:
        console.print(f"{name}: was not running", highlight=False)


@services_app.command("status")
def status_command(
    state_dir: StateDir = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="services.json plus 'running' booleans (shows the password)"),
    ] = False,
) -> None:
    """Show the local services. Exit code 0 if both run, 3 otherwise."""
    from connectors.services import status

    settings = settings_or_exit(state_dir)  # logs go to stderr: --json output alone on stdout
    current = status(settings.state_dir)
    if as_json:
        typer.echo(json.dumps(current.as_json(), indent=2, sort_keys=True))
    else:
        _print_status(settings.state_dir, current.info, current.running)
    if not current.all_running:
        raise typer.Exit(EXIT_NOT_RUNNING)


def _print_status(state_dir: Path, info: dict[str, Any] | None, running: dict[str, bool]) -> None:
    if info is None:
        console.print(f"no services recorded in {state_dir} (run 'entsync services up')")
        return
    table = Table(title=f"entsync services in {info.get('state_dir', state_dir)}")
    for column in ("service", "state", "pid", "address", "log"):
        table.add_column(column)
    addresses = {"slapd": info.get("ldap_url", ""), "broker": info.get("kafka_bootstrap", "")}
    for name, is_running in running.items():
        service = info.get(name) or {}
        table.add_row(
            name,
            "[green]running[/]" if is_running else "[red]stopped[/]",
            str(service.get("pid") or "-"),
            str(addresses.get(name, "")),
            str(service.get("log", "")),
        )
    console.print(table)
    console.print(
        f"base DN {info.get('ldap_base_dn')}  bind DN {info.get('ldap_bind_dn')}  "
        f"password in {(info.get('slapd') or {}).get('password_file', '?')}",
        highlight=False,
    )

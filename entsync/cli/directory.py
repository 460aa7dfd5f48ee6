"""CLI commands: ``entsync directory init | check`` for a directory entsync is pointed at."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from entsync.cli import common
from entsync.cli.common import EXIT_REFUSED, StateDir, console, fail
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError

if TYPE_CHECKING:
    from connectors.ldap.connection import LdapParams

# 1: the directory does not fit (schema problems, base entry not creatable); 2: configuration.
EXIT_UNREACHABLE = ExitCode.DIRECTORY_UNREACHABLE

directory_app = typer.Typer(
    name="directory",
    help="Prepare and check the LDAP directory: base entries, schema preflight.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(directory_app, name="directory")


def _check(params: LdapParams) -> int:
    """Print the schema problems; the exit code."""
    from connectors.ldap.preflight import schema_problems
    from sync.preflight import report

    problems = schema_problems(params)
    if problems:
        common.err.print(report(problems), markup=False)
        return EXIT_REFUSED
    console.print("schema: the directory accepts every class and attribute entsync writes")
    return 0


def _run(state_dir: Path | None, *, init: bool) -> int:
    from connectors.ldap import DirectoryAuthError, DirectoryUnavailableError
    from connectors.ldap.directory import ensure_base_dit
    from connectors.ldap.errors import BaseEntryError, DirectoryError
    from entsync.ldap_clients import ldap_params

    settings = common.settings_or_exit(state_dir)
    try:
        params = ldap_params(settings)
        if init:
            created = ensure_base_dit(params, settings.ldap_base_dn)
            for dn in created:
                console.print(f"created {dn}", markup=False)
            if not created:
                console.print("base entries: nothing to do, all present", markup=False)
        return _check(params)
    except ConfigurationError as exc:
        raise fail(str(exc), common.EXIT_CONFIG) from exc
    except BaseEntryError as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc
    except (DirectoryUnavailableError, DirectoryAuthError) as exc:
        raise fail(str(exc), EXIT_UNREACHABLE) from exc
    except DirectoryError as exc:
        raise fail(str(exc), EXIT_REFUSED) from exc


@directory_app.command("init")
def init_command(state_dir: StateDir = None) -> None:
    """Create the base entries entsync writes under (ENTSYNC_LDAP_BASE_DN), then check the
    schema. Idempotent. Exit 0: ready; 1: the schema does not fit or the base entry cannot be
    created; 2: configuration; 3: directory unreachable or bind refused."""
    raise typer.Exit(_run(state_dir, init=True))


@directory_app.command("check")
def check_command(state_dir: StateDir = None) -> None:
    """List what in the directory's schema would refuse entsync's writes (missing or
    incompatible classes and attribute types). Exit 0: fits; 1: it does not; 2, 3: as init."""
    raise typer.Exit(_run(state_dir, init=False))


@directory_app.command("migrate-ldif")
def migrate_ldif_command(
    source: Annotated[Path, typer.Argument(help="LDIF export of the old directory (slapcat)")],
    target: Annotated[Path, typer.Argument(help="where to write the migrated LDIF")],
    schools: Annotated[
        list[Path] | None,
        typer.Option(
            "--schools",
            help="EtabEducNat extract(s) giving the schools' SIRENs (old entries have none)",
        ),
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Bring the LDIF of a directory written by entsync before the published SDET schema to
    today's form (README "Upgrading a directory written by an earlier entsync"). Entries entsync
    does not manage are copied as they are. Exit 0: written; 1: a school has no SIREN (nothing
    written); 2: configuration or unreadable input."""
    from connectors.aaf.config import FileRejected, ScanConfig
    from connectors.aaf.emit import read_base
    from connectors.ldap.ldif import LdifEntry, LdifError, format_ldif, read_ldif
    from schemas.feed import School
    from sync.legacy import migrate

    settings = common.settings_or_exit(state_dir)
    try:
        records = read_base(schools or [], ScanConfig())
        with source.open(encoding="utf-8") as fh:
            found = [(e.dn, e.attributes) for e in read_ldif(fh)]
    except (OSError, LdifError, FileRejected) as exc:
        raise fail(str(exc), common.EXIT_CONFIG) from exc
    sirens = {r.jointure: r.siren for r in records.values() if isinstance(r, School) and r.siren}
    result = migrate(found, settings.jointure_sources(), sirens)
    if result.schools_without_siren:
        listed = ", ".join(result.schools_without_siren)
        raise fail(
            f"no SIREN for the schools {listed}: the SDET schema requires one; pass their "
            "EtabEducNat extract with --schools (nothing written)",
            EXIT_REFUSED,
        )
    with target.open("w", encoding="utf-8") as out:
        out.writelines(format_ldif(LdifEntry(dn, entry) for dn, entry in result.entries))
    console.print(
        f"{len(result.entries)} entries written to {target}, {result.upgraded} brought to the "
        "published SDET form",
        markup=False,
    )

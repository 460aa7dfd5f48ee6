"""CLI commands: feeds (``generate`` synthetic AAF extracts, ``check`` AAF files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from entsync.cli.common import EXIT_CONFIG, console, err
from entsync.cli.scan_options import AllowDoctype, RefuseDoctype, Scope, scan_config
from entsync.exit_codes import ExitCode
from entsync.logs import configure_logging


def _logs() -> None:
    # Findings go to the summary; logs (stderr) stay quiet unless asked for.
    configure_logging("auto", os.environ.get("ENTSYNC_LOG_LEVEL", "WARNING"))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""

    @app.command()
    def generate(
        out: Annotated[Path, typer.Option("--out", help="directory to write the files into")],
        schools: Annotated[int, typer.Option("--schools", min=1)] = 3,
        pupils_per_school: Annotated[int, typer.Option("--pupils-per-school", min=1)] = 25,
        seed: Annotated[int, typer.Option("--seed", help="same seed, same bytes")] = 0,
        year: Annotated[
            int, typer.Option("--year", help="first year of the school year (2025: 2025-2026)")
        ] = 2025,
        scope: Annotated[str, typer.Option("--scope", help="scope in the file names")] = (
            "AC-TOULOUSE"
        ),
        encoding: Annotated[str, typer.Option("--encoding", help="UTF-8 or ISO-8859-1")] = (
            "UTF-8"
        ),
        faults: Annotated[
            bool, typer.Option("--faults/--no-faults", help="pupils failing admission rules etc.")
        ] = True,
        delta: Annotated[bool, typer.Option("--delta/--no-delta", help="also an Eleve delta")] = (
            True
        ),
    ) -> None:
        """Write a deterministic synthetic AAF extract (schools, pupils, guardians, staff)."""
        from connectors.aaf.generator import GeneratorConfig, generate

        _logs()
        if encoding.upper() not in ("UTF-8", "ISO-8859-1"):
            err.print("[bold red]error:[/] --encoding must be UTF-8 or ISO-8859-1")
            raise typer.Exit(EXIT_CONFIG)
        config = GeneratorConfig(
            schools=schools,
            pupils_per_school=pupils_per_school,
            seed=seed,
            year=year,
            scope=scope,
            encoding=encoding.upper(),
            faults=faults,
            delta=delta,
        )
        result = generate(out, config)
        table = Table(title=f"Synthetic extract in {out}")
        table.add_column("file")
        table.add_column("records", justify="right")
        for key, path in result.files.items():
            table.add_row(path.name, str(result.counts[key]))
        console.print(table)

    @app.command()
    def check(
        files: Annotated[list[Path], typer.Argument(help="AAF XML files")],
        report: Annotated[
            Path | None, typer.Option("--report", help="write the JSON report there")
        ] = None,
        base: Annotated[
            list[Path] | None,
            typer.Option(
                "--base", help="full extract completing the modifyRequests of deltas (repeatable)"
            ),
        ] = None,
        refuse_doctype: RefuseDoctype = False,
        scope: Scope = None,
        allow_aaf_doctype: AllowDoctype = False,
    ) -> None:
        """Scan AAF files (nothing is published): summary, JSON report, exit 9 if one is refused."""
        from connectors.aaf import (
            FileRejected,
            read_base,
            render_summary,
            scan_many,
        )

        _logs()
        config = scan_config(refuse_doctype, scope, allow_aaf_doctype, err)
        records = None
        if base:
            try:
                records = read_base(base, config)
            except FileRejected as exc:
                err.print(f"[bold red]error:[/] base file refused: {exc}")
                raise typer.Exit(ExitCode.FILES_REFUSED) from None
        result = scan_many(files, config=config, base=records)
        render_summary(result.report, console)
        if report is not None:
            report.write_text(result.report.to_json(), encoding="utf-8")
            console.print(f"report written to {report}")
        refused = [f.name for f in result.report.files if f.refused]
        if refused:
            err.print(f"[bold red]{len(refused)} file(s) refused[/]: nothing of them may be used")
            raise typer.Exit(ExitCode.FILES_REFUSED)

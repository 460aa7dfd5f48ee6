"""CLI commands: ingest, worker, run, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from connectors.aaf.config import ScanConfig
from entsync.cli.common import EXIT_CONFIG, StateDir, console, err, fail, settings_or_exit
from entsync.cli.scan_options import AllowDoctype, RefuseDoctype, Scope, scan_config
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError, Settings

Files = Annotated[list[Path], typer.Argument(help="AAF XML files", exists=False)]
BaseFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--base",
        help="full extract completing the modifyRequests of delta files (repeatable); the "
        "complete files given in the same command are used too",
    ),
]


def do_ingest(
    settings: Settings,
    files: list[Path],
    report: Path | None,
    force: bool,
    base: list[Path] | None = None,
    config: ScanConfig | None = None,
) -> int:
    from connectors.aaf import render_summary
    from entsync.ingest import ingest

    missing = [str(f) for f in [*files, *(base or [])] if not f.is_file()]
    if missing:
        raise fail(f"not a file: {', '.join(missing)}", EXIT_CONFIG)
    outcome = ingest(settings, files, force=force, base_paths=base, config=config)
    if report is not None:
        report.write_text(outcome.report.to_json())
    render_summary(outcome.report, console)
    if outcome.error:
        err.print(f"[bold red]error:[/] {outcome.error}")
    if outcome.refused:
        err.print("nothing was published: fix or remove the refused files and ingest again")
        return ExitCode.FILES_REFUSED
    for f in outcome.files:
        if f.skipped_reason:
            console.print(f"{f.path.name}: skipped ({f.skipped_reason})")
        else:
            console.print(f"{f.path.name}: {f.published} events published")
    return 0


def _actions(by_action: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_action.items()))


def do_worker(settings: Settings, until_idle: bool, timeout: float | None) -> int:
    from entsync.kafka_clients import kafka_params
    from entsync.worker import PREFLIGHT_EXIT, run_worker

    result = run_worker(settings, kafka_params(settings), until_idle=until_idle, timeout_s=timeout)
    if result.exit_code == PREFLIGHT_EXIT:  # never started: no counters to show
        err.print(f"worker refused to start: {result.error}", markup=False)
        return result.exit_code
    p = result.progress
    console.print(
        f"worker: {p.feed_events} feed events, {p.entity_inputs} entity inputs, "
        f"{p.directory_changes} directory changes "
        + (f"({_actions(p.by_action)}) " if p.by_action else "")
        # changes the directory already had (written before a crash, or by someone else)
        + (f"and {p.noop_writes} found already done " if p.noop_writes else "")
        + f"in {result.elapsed_s:.1f} s"
        # the feed held back while inputs waited (connectors.stream.intake)
        + (f"; feed paused {p.feed_pauses} times" if p.feed_pauses else "")
    )
    if result.error:
        err.print(f"[bold red]worker error:[/] {result.error}")
    return result.exit_code


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        files: Files,
        report: Annotated[
            Path | None, typer.Option("--report", help="write the JSON report here")
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="publish even if the ledger has the file")
        ] = False,
        base: BaseFiles = None,
        refuse_doctype: RefuseDoctype = False,
        scope: Scope = None,
        allow_aaf_doctype: AllowDoctype = False,
        state_dir: StateDir = None,
    ) -> None:
        """Validate AAF files whole, then publish their records on the feed topic."""
        config = scan_config(refuse_doctype, scope, allow_aaf_doctype, err)
        try:
            code = do_ingest(settings_or_exit(state_dir), files, report, force, base, config)
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        raise typer.Exit(code)

    @app.command()
    def worker(
        until_idle: Annotated[
            bool,
            typer.Option(
                "--until-idle",
                help="exit 0 once every input is consumed and every directory write acknowledged",
            ),
        ] = False,
        timeout: Annotated[
            float | None, typer.Option("--timeout", help="with --until-idle: give up after S s")
        ] = None,
        state_dir: StateDir = None,
    ) -> None:
        """Run the stream processors (continuous, or batch with --until-idle)."""
        try:
            code = do_worker(settings_or_exit(state_dir), until_idle, timeout)
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        raise typer.Exit(code)

    @app.command()
    def run(
        files: Files,
        report: Annotated[Path | None, typer.Option("--report")] = None,
        timeout: Annotated[float | None, typer.Option("--timeout")] = 900.0,
        base: BaseFiles = None,
        refuse_doctype: RefuseDoctype = False,
        scope: Scope = None,
        allow_aaf_doctype: AllowDoctype = False,
        state_dir: StateDir = None,
    ) -> None:
        """Ingest files, then work until idle."""
        config = scan_config(refuse_doctype, scope, allow_aaf_doctype, err)
        try:
            settings = settings_or_exit(state_dir)
            code = do_ingest(settings, files, report, False, base, config)
            if code == 0:
                code = do_worker(settings, True, timeout)
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        raise typer.Exit(code)

    @app.command()
    def demo(state_dir: StateDir = None) -> None:
        """Start the local services, sync the bundled sample extract, print a summary."""
        from entsync.demo import run_demo

        try:
            code = run_demo(state_dir, console)
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        sys.stdout.flush()
        raise typer.Exit(code)

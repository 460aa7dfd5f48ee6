"""CLI command: ``entsync replay (--from-beginning | --since ISO) [--until ISO] [--scope UAI]
[--dry-run] [--json]``; a real replay also ``[--check-against BASE_DN]
[--accept-incomplete-history]``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from entsync.cli.common import (
    EXIT_CONFIG,
    EXIT_REFUSED,
    StateDir,
    console,
    err,
    fail,
    settings_or_exit,
)
from entsync.exit_codes import ExitCode
from entsync.ingest import show_progress
from entsync.settings import ConfigurationError

EXIT_HISTORY_INCOMPLETE = ExitCode.HISTORY_INCOMPLETE
"""The topics' history does not explain the directory: a dry run reports that (and no deletion
of those entries); a real replay with --check-against refuses to start."""


def _instant(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(
            f"{option}: not an ISO date-time: {text!r} (e.g. 2027-01-15T03:00:00Z)", 2
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def _stage_progress() -> Iterator[Callable[[int, int], None] | None]:
    if not show_progress():
        yield None
        return
    columns = (
        TextColumn("replay stages"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("stages", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print_report(report: object, as_json: bool) -> None:
    import json

    from entsync.replay_ops import DryRunReport

    assert isinstance(report, DryRunReport)
    if not as_json:
        table = Table(title="Replay (dry run) against the directory now")
        for column in ("school", "add", "modify", "delete"):
            table.add_column(column, justify="left" if column == "school" else "right")
        for school, per in report.counts.items():
            table.add_row(school, *(str(per.get(a, 0)) for a in ("add", "modify", "delete")))
        console.print(table)
        console.print(
            f"{report.inputs} inputs in {report.stages} stages; "
            f"{len(report.changes)} entries would change"
        )
    for change in report.changes:
        console.print(change.to_json(), markup=False, soft_wrap=True)
    if as_json:
        summary = {"summary": report.counts, "inputs": report.inputs}
        console.print(json.dumps({**summary, "unexplained": report.gaps.to_json()}), markup=False)
    elif not report.gaps.complete:
        console.print(
            f"{len(report.gaps.entries)} entries of the directory are not explained by the "
            "topics' history: not compared (see the error below)"
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def replay(
        from_beginning: Annotated[
            bool, typer.Option("--from-beginning", help="every input the topics hold")
        ] = False,
        since: Annotated[
            str | None,
            typer.Option(
                "--since",
                help="with --dry-run: rebuild the state up to ISO, report only entries changed "
                "by inputs from ISO on",
            ),
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="ignore inputs after ISO (broker time)")
        ] = None,
        scope: Annotated[
            str | None,
            typer.Option("--scope", help="with --dry-run: report only this school's entries"),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="write nothing: report how a replay differs from the directory now",
            ),
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="dry run: JSON lines only (changes, then summary)")
        ] = False,
        replay_id: Annotated[
            str | None,
            typer.Option("--replay-id", help="suffix of the replay's group and topics"),
        ] = None,
        timeout: Annotated[
            float | None, typer.Option("--timeout", help="give up after S seconds")
        ] = None,
        check_against: Annotated[
            str | None,
            typer.Option(
                "--check-against",
                help="real replay: base DN (same server) of the directory this replay rebuilds; "
                "refuse to start (exit 8) if the topics' history does not explain its entries",
            ),
        ] = None,
        accept_incomplete: Annotated[
            bool,
            typer.Option(
                "--accept-incomplete-history",
                help="with --check-against: replay anyway; entries the history does not "
                "explain are not rebuilt",
            ),
        ] = False,
        state_dir: StateDir = None,
    ) -> None:
        """Rebuild the directory from the topics in a consumer group of its own (into an empty
        directory), or with --dry-run report how that would differ from the directory now.

        Exit codes: 0 done (a dry run: whatever the differences); 1 refused; 2
        configuration; the replay worker's own code when it failed (4 to 7, or 1);
        8 the topics' history does not explain the directory (inputs gone): a dry
        run reports those entries, not their deletion; a replay with
        --check-against does not start.
        """
        if from_beginning == (since is not None):
            raise fail("give exactly one of --from-beginning and --since ISO", EXIT_CONFIG)
        if not dry_run and (since is not None or scope is not None):
            raise fail(
                "--since and --scope apply to --dry-run only: a real replay rebuilds the whole "
                "directory from the beginning",
                EXIT_CONFIG,
            )
        if dry_run and (check_against is not None or accept_incomplete):
            raise fail(
                "--check-against and --accept-incomplete-history apply to a real replay: a dry "
                "run always checks the configured directory",
                EXIT_CONFIG,
            )
        if accept_incomplete and check_against is None:
            raise fail("--accept-incomplete-history applies with --check-against", EXIT_CONFIG)
        start, end = _instant("--since", since), _instant("--until", until)
        settings = settings_or_exit(state_dir)
        from aiokafka.errors import KafkaError

        from connectors.ldap import DirectoryError
        from connectors.stream.replay_topics import ReplayRefused
        from entsync import replay_ops as ops
        from sync.replay import ReplayInputError

        try:
            if dry_run:
                report = ops.dry_run(settings, since=start, until=end, scope=scope)
                _print_report(report, as_json)
                if not report.gaps.complete:
                    raise fail(report.gaps.describe(), EXIT_HISTORY_INCOMPLETE)
                raise typer.Exit(0)
            if check_against is None:
                err.print(
                    "note: the topics' history is not checked against a directory "
                    "(--check-against BASE_DN of the directory this replay rebuilds)"
                )
            with _stage_progress() as advance:
                outcome = ops.replay(
                    settings,
                    replay_id=replay_id,
                    until=end,
                    timeout_s=timeout,
                    on_stage=advance,
                    check_against=check_against,
                    accept_incomplete_history=accept_incomplete,
                )
        except ops.HistoryIncomplete as exc:
            raise fail(f"replay refused: {exc}", EXIT_HISTORY_INCOMPLETE) from exc
        except (ReplayRefused, ReplayInputError) as exc:
            raise fail(str(exc), EXIT_REFUSED) from exc
        except ConfigurationError as exc:
            raise fail(str(exc), EXIT_CONFIG) from exc
        except (KafkaError, DirectoryError, TimeoutError) as exc:
            raise fail(f"{type(exc).__name__}: {exc}", EXIT_REFUSED) from exc
        p = outcome.worker.progress
        console.print(
            f"replay {outcome.replay_id}: {outcome.inputs} inputs in {outcome.stages} stages, "
            f"{p.feed_events} feed events, {p.entity_inputs} entity inputs, "
            f"{p.directory_changes} directory changes in {outcome.worker.elapsed_s:.1f} s "
            f"(group {outcome.app_id}; topics {', '.join(outcome.topics)})"
        )
        if not outcome.gaps.complete:
            left_out = outcome.gaps.describe("not rebuilt")
            err.print(f"warning (--accept-incomplete-history): {left_out}")
        if outcome.worker.error:
            code = outcome.worker.exit_code or EXIT_REFUSED
            raise fail(f"replay worker: {outcome.worker.error}", code)
        if outcome.copied != outcome.inputs:
            raise fail(f"only {outcome.copied} of {outcome.inputs} inputs replayed", EXIT_REFUSED)
        raise typer.Exit(outcome.worker.exit_code)

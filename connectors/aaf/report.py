"""The ingest report: per file counts and items, as JSON and as a terminal summary.

Items name the file, line, record id (jointure), AAF attribute, rule and severity. Messages are
fixed texts: they never quote a value (no names, dates, INE, phones or emails).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from rich import box
from rich.console import Console
from rich.table import Table

from schemas.feed import Category


class Severity(StrEnum):
    REJECTED = "rejected"  # record not published
    HELD = "held"  # pupil or school published with held_reasons (admission, SDET values)
    WARNING = "warning"  # record published, an optional field was dropped, or a link is one-sided


class ReportItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    line: int | None = None
    record_id: str | None = Field(default=None, description="jointure of the record")
    field: str | None = Field(default=None, description="AAF attribute name")
    rule: str
    message: str
    severity: Severity


class FileReport(BaseModel):
    """One file. ``refused`` files have a ``refusal`` and nothing of them is published;
    ``skipped`` files (a category entsync does not sync) have a ``notice`` and are not read."""

    name: str
    digest: str | None = None
    category: Category | None = None
    scope: str | None = None
    scope_source: str | None = Field(
        default=None, description="where the scope came from: name, records or option"
    )
    complete: bool = False
    extract_date: date | None = None
    part: int = 0
    refused: bool = False
    refusal: str | None = None
    skipped: bool = False
    notice: str | None = None
    category_name: str | None = Field(default=None, description="as named, synced or not")
    records: int = Field(default=0, description="requests in the file")
    published: int = Field(default=0, description="record events (upserts and deletes)")
    held: int = Field(default=0, description="published pupils and schools with held reasons")
    rejected: int = Field(default=0, description="records not published")
    warnings: int = 0
    deletes: int = 0
    record_keys_digest: str | None = None
    items: list[ReportItem] = Field(default_factory=list)
    items_dropped: int = Field(default=0, description="items beyond max_report_items")


class IngestReport(BaseModel):
    files: list[FileReport] = Field(default_factory=list)
    links: list[ReportItem] = Field(
        default_factory=list, description="cross-file guardian link checks (pupils vs guardians)"
    )
    waiting: list[ReportItem] = Field(
        default_factory=list, description="held schools and the records of the call naming them"
    )
    conflicts: list[ReportItem] = Field(
        default_factory=list,
        description=(
            "records of the call sharing an INE while not the same person (ine_conflict), "
            "values the directory would confuse (case) and login conflicts"
        ),
    )

    @property
    def ok(self) -> bool:
        """True when no file was refused."""
        return not any(f.refused for f in self.files)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> IngestReport:
        return cls.model_validate_json(text)

    def items(self) -> list[ReportItem]:
        files = [item for f in self.files for item in f.items]
        return files + self.links + self.waiting + self.conflicts


def render_summary(
    report: IngestReport, console: Console | None = None, max_items: int = 40
) -> None:
    """Human summary: one row per file, then rule counts and the first items."""
    console = console or Console()
    table = Table(title="AAF files", box=box.SIMPLE_HEAD)
    table.add_column("file", overflow="fold")
    for column in (
        "recs",
        "publ",
        "held",
        "rej",
        "warn",
    ):  # records published held rejected warnings
        table.add_column(column, justify="right")
    table.add_column("status")
    for f in report.files:
        status = "[red]REFUSED[/red]" if f.refused else "[green]ok[/green]"
        if f.skipped:
            status = "[yellow]skipped[/yellow]"
        # The category and the full/delta kind are in the name: keep the row narrow.
        short = f.name.removeprefix("ENT_").removesuffix(".xml")
        if f.category is not None and f.category.value not in short:
            short += f" ({f.category.value})"
        table.add_row(
            short,
            str(f.records),
            str(f.published),
            str(f.held),
            str(f.rejected),
            str(f.warnings),
            status,
        )
    console.print(table)
    for f in report.files:
        if f.refused:
            console.print(f"[red]refused[/red] {f.name}: {f.refusal}")
        if f.skipped:
            console.print(f"[yellow]skipped[/yellow] {f.name}: {f.notice}")
        if f.items_dropped:
            console.print(f"{f.name}: {f.items_dropped} more findings not kept (max_report_items)")
    items = report.items()
    if not items:
        return
    counts = Counter((i.severity.value, i.rule) for i in items)
    rules = Table(title="Findings by rule", box=box.SIMPLE_HEAD)
    rules.add_column("severity")
    rules.add_column("rule")
    rules.add_column("count", justify="right")
    for (severity, rule), count in sorted(counts.items()):
        rules.add_row(severity, rule, str(count))
    console.print(rules)
    detail = Table(
        title=f"First {min(max_items, len(items))} of {len(items)} findings", box=box.SIMPLE_HEAD
    )
    detail.add_column("file:line", overflow="fold", ratio=1)
    detail.add_column("record", overflow="fold")
    detail.add_column("severity")
    detail.add_column("message", overflow="fold", ratio=2)
    for item in items[:max_items]:
        where = f"{item.file}:{item.line}" if item.line else item.file
        detail.add_row(where, item.record_id or "", item.severity.value, item.message)
    console.print(detail)

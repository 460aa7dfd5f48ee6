"""The ingest report: per file counts and items, as JSON and as a terminal summary.

Items name the file, line, record id (jointure), AAF attribute, rule and severity. Messages are
fixed texts: they never quote a value (no names, dates, INE, phones or emails).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from schemas.feed import Category


class Severity(StrEnum):
    REJECTED = "rejected"  # record not published
    HELD = "held"  # pupil published with held_reasons (admission rules)
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
    """One file. ``refused`` files have a ``refusal`` and nothing of them is published."""

    name: str
    digest: str | None = None
    category: Category | None = None
    scope: str | None = None
    complete: bool = False
    extract_date: date | None = None
    part: int = 0
    refused: bool = False
    refusal: str | None = None
    records: int = Field(default=0, description="requests in the file")
    published: int = Field(default=0, description="record events (upserts and deletes)")
    held: int = Field(default=0, description="published pupils with held reasons")
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
        return [item for f in self.files for item in f.items] + list(self.links)


def render_summary(
    report: IngestReport, console: Console | None = None, max_items: int = 40
) -> None:
    """Human summary: one row per file, then rule counts and the first items."""
    console = console or Console()
    table = Table(title="AAF files", show_lines=False)
    for column in (
        "file",
        "category",
        "scope",
        "kind",
        "records",
        "published",
        "held",
        "rejected",
        "warnings",
        "status",
    ):
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    for f in report.files:
        status = "[red]REFUSED[/red]" if f.refused else "[green]ok[/green]"
        table.add_row(
            f.name,
            f.category.value if f.category else "?",
            f.scope or "-",
            "full" if f.complete else "delta",
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
    items = report.items()
    if not items:
        return
    counts = Counter((i.severity.value, i.rule) for i in items)
    rules = Table(title="Findings by rule")
    rules.add_column("severity")
    rules.add_column("rule")
    rules.add_column("count", justify="right")
    for (severity, rule), count in sorted(counts.items()):
        rules.add_row(severity, rule, str(count))
    console.print(rules)
    detail = Table(title=f"First {min(max_items, len(items))} of {len(items)} findings")
    for column in ("file", "line", "record", "field", "severity", "message"):
        detail.add_column(column)
    for item in items[:max_items]:
        detail.add_row(
            item.file,
            str(item.line or ""),
            item.record_id or "",
            item.field or "",
            item.severity.value,
            item.message,
        )
    console.print(detail)


_NUMERIC = frozenset({"records", "published", "held", "rejected", "warnings"})

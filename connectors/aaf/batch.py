"""Several files at once: scan them all, then check guardian links across pupils and guardians,
and INEs carried by records that are not the same person (:mod:`connectors.aaf.ine_check`)
and the values the directory would confuse (:mod:`connectors.aaf.conflicts`).

``scan_many`` never raises for a bad file: a refused file appears in the report with its reason
and is left out of ``scans``; so does a skipped file (a category entsync does not sync), with a
notice, which does not make the report fail. The ingest caller publishes
``events_many(result.scans)`` only when ``result.report.ok`` (or publishes the accepted files, as
its policy says).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.aaf.attrs import Record
from connectors.aaf.config import FileRejected, FileSkipped, ScanConfig
from connectors.aaf.conflicts import conflict_items
from connectors.aaf.filename import parse_file_name
from connectors.aaf.held_schools import waiting_items
from connectors.aaf.ine_check import IneSide, check_ine_sides
from connectors.aaf.links import LinkSide, check_link_sides
from connectors.aaf.report import FileReport, IngestReport
from connectors.aaf.scan import FileScan, name_report, scan


@dataclass
class ScanResult:
    scans: list[FileScan] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)


def scan_many(
    paths: Iterable[str | os.PathLike[str]],
    *,
    config: ScanConfig | None = None,
    base: Mapping[str, Record] | None = None,
    link_check: bool = True,
) -> ScanResult:
    """Pass 1 over several files, plus the guardian link check (:mod:`connectors.aaf.links`).

    The link check compares the accepted pupils files with the accepted guardians files; with one
    side alone there is nothing to compare. It keeps the links on disk: memory stays flat.
    """
    result = ScanResult()
    sides: list[LinkSide] = []
    ines: list[IneSide] = []
    try:
        for raw in paths:
            path = Path(raw)
            try:
                file_scan = scan(path, config=config, base=base, collect_links=link_check)
            except FileRejected as exc:
                result.report.files.append(_unread(path, exc))
                continue
            if file_scan.links is not None:
                sides.append(file_scan.links)
                file_scan = dataclasses.replace(file_scan, links=None)
            if file_scan.ines is not None:
                ines.append(file_scan.ines)
                file_scan = dataclasses.replace(file_scan, ines=None)
            result.scans.append(file_scan)
            result.report.files.append(file_scan.report)
        max_items = (config or ScanConfig()).max_report_items
        result.report.links = check_link_sides(sides, max_items)
        result.report.waiting = waiting_items(
            (s.report.name, s.held_schools) for s in result.scans if s.held_schools is not None
        )
        result.report.conflicts = check_ine_sides(ines, max_items) + conflict_items(
            s.conflicts for s in result.scans if s.conflicts is not None
        )
    finally:
        for side in sides:
            side.close()
        for ine_side in ines:
            ine_side.close()
    return result


def _unread(path: Path, exc: FileRejected) -> FileReport:
    """The report of a file refused, or skipped (a category not synced: the call goes on)."""
    if isinstance(exc, FileSkipped):
        return name_report(parse_file_name(path.name), skipped=True, notice=exc.reason)
    return name_report(parse_file_name(path.name), refused=True, refusal=exc.reason)

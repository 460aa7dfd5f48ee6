"""Several files at once: scan them all, then check guardian links across pupils and guardians.

``scan_many`` never raises for a bad file: a refused file appears in the report with its reason
and is left out of ``scans``. The ingest caller publishes ``events_many(result.scans)`` only when
``result.report.ok`` (or publishes the accepted files, as its policy says).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.aaf.attrs import Record
from connectors.aaf.config import FileRejected, ScanConfig
from connectors.aaf.filename import parse_file_name
from connectors.aaf.links import check_links
from connectors.aaf.report import FileReport, IngestReport
from connectors.aaf.scan import FileScan, LinkSide, scan
from schemas.feed import Category


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
    """Pass 1 over several files, plus :func:`check_links` when pupils and guardians are present.

    The link check runs only when at least one pupils file and one guardians file were accepted;
    with one side alone there is nothing to compare.
    """
    result = ScanResult()
    pupils: LinkSide = {}
    guardians: LinkSide = {}
    pupil_files: list[str] = []
    guardian_files: list[str] = []
    for raw in paths:
        path = Path(raw)
        try:
            file_scan = scan(path, config=config, base=base, collect_links=link_check)
        except FileRejected as exc:
            name = parse_file_name(path.name)
            result.report.files.append(
                FileReport(
                    name=path.name,
                    category=name.category,
                    scope=name.scope,
                    complete=name.complete,
                    extract_date=name.extract_date,
                    part=name.part,
                    refused=True,
                    refusal=exc.reason,
                )
            )
            continue
        if file_scan.links is not None:
            if file_scan.category is Category.PUPILS:
                pupils.update(file_scan.links)
                pupil_files.append(path.name)
            elif file_scan.category is Category.GUARDIANS:
                guardians.update(file_scan.links)
                guardian_files.append(path.name)
            file_scan = dataclasses.replace(file_scan, links=None)
        result.scans.append(file_scan)
        result.report.files.append(file_scan.report)
    if pupils and guardians:
        result.report.links = check_links(
            pupils,
            guardians,
            pupils_file=",".join(pupil_files),
            guardians_file=",".join(guardian_files),
        )
    return result

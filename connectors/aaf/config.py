"""Scan limits and options, and the exception that refuses a whole file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

MiB = 1024 * 1024


class FileRejected(Exception):
    """A file refused whole: nothing from it may be published.

    The message is one line, names the file and the reason, and never quotes record content.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class FileSkipped(FileRejected):
    """A file of a category entsync does not sync (``MefEducNat``...): not read, not published.

    ``scan_many`` reports it as skipped and goes on with the other files. It is a FileRejected so
    that a caller that does not know about skipping refuses it rather than use it.
    """


@dataclass(frozen=True)
class ScanConfig:
    """Limits (a file beyond any of them is refused) and options of a scan.

    ``refuse_doctype``: real AAF extracts start with
    ``<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">``, which is tolerated by default (that
    exact declaration: no internal subset, that system id; the DTD is never loaded). With this
    option every DOCTYPE is refused. Any other DOCTYPE is refused either way.
    ``allow_aaf_doctype`` is kept for compatibility and does nothing (deprecated).

    ``current_school_year`` (``YYYY-YYYY``) overrides the school year the admission rules compare
    against; by default it is the school year of the extract date in the file name (or of the
    reference date for names without a date).

    ``reference_date`` is "today" for birth-date plausibility; default: the day of the scan. It is
    kept in the scan so that pass 2 decides exactly as pass 1 did.

    ``scope`` is the absence scope of files whose name and records give none (``--scope``; see
    :mod:`connectors.aaf.scope`).

    ``max_report_items`` caps the findings kept per file (about 1 KB each); the counts stay exact
    and ``items_dropped`` says how many were not kept. Memory is otherwise flat in the file size.
    """

    max_file_bytes: int = 4096 * MiB
    max_records: int = 5_000_000
    max_depth: int = 5
    max_values_per_attr: int = 1000
    max_value_chars: int = 4096
    max_attrs_per_record: int = 200
    max_prolog_bytes: int = 64 * 1024
    max_report_items: int = 50_000
    refuse_doctype: bool = False
    allow_aaf_doctype: bool = False  # deprecated: the AAF DOCTYPE is accepted by default
    allow_empty_complete: bool = False
    current_school_year: str | None = None
    scope: str | None = None
    reference_date: date | None = None

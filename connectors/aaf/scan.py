"""Pass 1: ``scan(path) -> FileScan``. Reads and validates the whole file, publishes nothing.

A file that is not XML, has the wrong root, is truncated, declares a DTD or entities, exceeds a
limit, or whose content disagrees with its name's category raises :class:`FileRejected`. A file
that passes yields a :class:`FileScan`: digest, counts, the report, and what pass 2 must find again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from connectors.aaf.attrs import Record
from connectors.aaf.config import FileRejected, FileSkipped, ScanConfig
from connectors.aaf.conflicts import ConflictsSeen
from connectors.aaf.fields import BuildContext
from connectors.aaf.filename import FileName, parse_file_name
from connectors.aaf.held_schools import HeldSchools
from connectors.aaf.ine_check import IneSide
from connectors.aaf.keyset import KeySorter
from connectors.aaf.links import LinkSide
from connectors.aaf.process import Outcome, category_of, process, refuse_2d
from connectors.aaf.reader import RequestReader
from connectors.aaf.report import FileReport, ReportItem, Severity
from connectors.aaf.scope import NO_SCOPE, SchoolsSeen, resolve_scope
from schemas.feed import Category, Guardian, HoldReason, Pupil, School
from sync.admission import HOLD_MESSAGES, school_year_of
from sync.validation import parse_school_year

log = structlog.get_logger(__name__)

_BAD_COMPLETE_NAME = (
    "the name says Complet but does not fit <prefix>_Complet_<yyyymmdd>_<Category>_<nnnn>.xml "
    "(a valid date, a 4-digit part): a complete extract is never read as a delta"
)

_HOLD_FIELDS: dict[HoldReason, str] = {
    HoldReason.INE_MISSING: "ENTEleveINE",
    HoldReason.INE_INVALID: "ENTEleveINE",
    HoldReason.INE_CONFLICT: "ENTEleveINE",
    HoldReason.NOT_ADMITTED_DEFINITIVELY: "ENTEleveAdmissionDefinitive",
    HoldReason.NO_CLASS: "ENTPersonClasses",
    HoldReason.NOT_CURRENT_SCHOOL_YEAR: "ENTEleveDateSortieStructRattach",
    HoldReason.NO_PARENTAL_AUTHORITY: "ENTEleveAutoriteParentale",
    HoldReason.SIREN_MISSING: "ENTStructureSIREN",
    HoldReason.SIREN_INVALID: "ENTStructureSIREN",
}


@dataclass(frozen=True)
class FileScan:
    """The result of pass 1 for one accepted file (what :func:`events` needs)."""

    path: Path
    name: FileName
    category: Category
    digest: str
    size: int
    records: int  # requests in the file
    record_count: int  # record events pass 2 will yield (upserts, held pupils, deletes)
    record_keys_digest: str
    events_digest: str
    report: FileReport
    config: ScanConfig
    context: BuildContext
    base: Mapping[str, Record] | None = None
    links: LinkSide | None = None
    rejected_count: int = 0  # presence-only events of rejected records (complete files)
    scope: str | None = None  # see connectors.aaf.scope
    held_schools: HeldSchools | None = None  # see connectors.aaf.held_schools
    ines: IneSide | None = None  # see connectors.aaf.ine_check
    conflicts: ConflictsSeen | None = None  # see connectors.aaf.conflicts

    @property
    def event_count(self) -> int:
        """Every event pass 2 yields for this file, snapshot markers included."""
        return self.record_count + self.rejected_count + (2 if self.complete else 0)

    @property
    def complete(self) -> bool:
        return self.name.complete

    @property
    def extract_date(self) -> date | None:
        return self.name.extract_date


def name_report(name: FileName, **outcome: Any) -> FileReport:
    """A file's report as its name describes it (``outcome``: refused, skipped...)."""
    return FileReport(
        name=name.name,
        category=name.category,
        category_name=name.category_name,
        scope=name.scope,
        complete=name.complete,
        extract_date=name.extract_date,
        part=name.part,
        **outcome,
    )


def make_context(name: FileName, config: ScanConfig) -> BuildContext:
    reference = config.reference_date or date.today()
    extract = name.extract_date or reference
    current = school_year_of(extract)
    if config.current_school_year is not None:
        parsed = parse_school_year(config.current_school_year)
        if parsed is None:
            raise ValueError("current_school_year must look like 2025-2026")
        current = parsed
    return BuildContext(reference_date=reference, extract_date=extract, current_school_year=current)


class EventsHasher:
    """Running digest of the published (index, key, fingerprint) sequence, same in both passes."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._pending: list[str] = []
        self.count = 0
        self.rejected = 0

    def add(self, outcome: Outcome) -> None:
        self._pending.append(f"{outcome.request.index}\t{outcome.key}\t{outcome.fingerprint}\n")
        self.count += 1
        self._maybe_flush()

    def add_rejected(self, outcome: Outcome, key: str) -> None:
        """A presence-only event of a complete extract (see ``RecordRejected``)."""
        self._pending.append(f"{outcome.request.index}\trejected\t{key}\n")
        self.rejected += 1
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._pending) >= 4096:  # hash in batches: one update per line is slower
            self._flush()

    def _flush(self) -> None:
        self._h.update("".join(self._pending).encode())
        self._pending.clear()

    def hexdigest(self) -> str:
        self._flush()
        return self._h.hexdigest()


def run(
    reader: RequestReader,
    path: Path,
    category: Category | None,
    context: BuildContext,
    base: Mapping[str, Record] | None,
) -> Iterator[tuple[Category, Outcome]]:
    """Process every request in file order; the first one fixes the category of unnamed files.
    Any request with 2D attribute names refuses the file (never half read)."""
    seen: tuple[str, str] | None = None  # (category value, attribute name) already checked
    for request in reader:
        if category is None or (request.category, request.category_attr) != seen:
            category = category_of(request, category, path)
            seen = (request.category, request.category_attr)
        refuse_2d(request, category, path)
        yield category, process(request, category, context, base)


class _Collector:
    """Pass-1 bookkeeping: counts and items of the report, capped to ``max_report_items``."""

    def __init__(self, report: FileReport, max_items: int) -> None:
        self.report = report
        self.max_items = max_items

    def item(
        self,
        line: int | None,
        record_id: str | None,
        field: str | None,
        rule: str,
        message: str,
        severity: Severity,
    ) -> None:
        if severity is Severity.WARNING:
            self.report.warnings += 1
        if len(self.report.items) >= self.max_items:
            self.report.items_dropped += 1
            return
        self.report.items.append(
            ReportItem(
                file=self.report.name,
                line=line,
                record_id=record_id,
                field=field,
                rule=rule,
                message=message,
                severity=severity,
            )
        )

    def outcome(self, o: Outcome) -> None:
        line = o.request.line
        for issue in o.issues:
            self.item(line, o.jointure, issue.field, issue.rule, issue.message, issue.severity)
        if not o.published:
            self.report.rejected += 1
            return
        self.report.published += 1
        if o.deleted:
            self.report.deletes += 1
        if isinstance(o.record, Pupil | School) and o.record.held_reasons:
            self.report.held += 1
            for reason in o.record.held_reasons:
                self.item(
                    line,
                    o.jointure,
                    _HOLD_FIELDS[reason],
                    reason.value,
                    HOLD_MESSAGES[reason],
                    Severity.HELD,
                )


def scan(
    path: str | os.PathLike[str],
    *,
    config: ScanConfig | None = None,
    base: Mapping[str, Record] | None = None,
    collect_links: bool = False,
    require_scope: bool = True,
) -> FileScan:
    """Pass 1: validate the whole file and build its report; raise FileRejected to refuse it.

    ``base`` completes ``modifyRequest`` records (see :mod:`connectors.aaf.process`).
    ``collect_links`` keeps the file's side of the guardian links (on disk) in ``links``, for
    :func:`check_link_sides`, and its pupils' INEs in ``ines``, for :func:`check_ine_sides`; the
    caller closes them (``scan_many`` does).
    ``require_scope=False`` lets a complete extract without a scope through, for base records
    only (:func:`connectors.aaf.collect_records`): its events must not be published.
    """
    path = Path(path)
    config = config or ScanConfig()
    name = parse_file_name(path.name)
    if name.unsynced:
        raise FileSkipped(path, f"{name.unsynced}: category not synced (file skipped)")
    if name.claims_complete:
        raise FileRejected(path, _BAD_COMPLETE_NAME)
    context = make_context(name, config)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileRejected(path, f"cannot read file ({exc.strerror})") from None
    if size > config.max_file_bytes:
        raise FileRejected(path, f"file larger than {config.max_file_bytes} bytes")
    report = name_report(name)
    collector = _Collector(report, config.max_report_items)
    sorter = KeySorter()
    hasher = EventsHasher()
    schools = SchoolsSeen()
    held_schools = HeldSchools()
    conflicts = ConflictsSeen(path.name)
    links: LinkSide | None = None
    ines: IneSide | None = None
    category = name.category
    try:
        with path.open("rb") as fh:
            reader = RequestReader(fh, path, config)
            for found, outcome in run(reader, path, name.category, context, base):
                category = found
                collector.outcome(outcome)
                schools.add(outcome.record, outcome.request)
                if outcome.key is not None:
                    held_schools.add(outcome.record)
                    conflicts.add(outcome.record, outcome.request.line)
                if outcome.key is None:
                    rejected = outcome.rejected_key
                    if name.complete and rejected is not None:
                        hasher.add_rejected(outcome, rejected)
                    continue
                hasher.add(outcome)
                sorter.add(outcome.key, outcome.request.index, outcome.request.line)
                if collect_links and isinstance(outcome.record, Pupil | Guardian):
                    if links is None:
                        links = LinkSide(path.name, pupils=category is Category.PUPILS)
                    _add_links(links, outcome.record)
                if collect_links and isinstance(outcome.record, Pupil):
                    if ines is None:
                        ines = IneSide(path.name)
                    ines.add(outcome.record, outcome.request.line)
            digest, records = reader.digest, reader.count
        if category is None:
            raise FileRejected(path, "no record and no category in the file name")
        if name.complete and records == 0 and not config.allow_empty_complete:
            # An empty full extract would read downstream as "everyone left".
            raise FileRejected(path, "complete extract without any record")
        scope, scope_source = resolve_scope(name, schools, config.scope)
        if name.complete and scope is None and require_scope:
            raise FileRejected(path, NO_SCOPE)
    except (OSError, FileRejected) as exc:
        sorter.close()
        if links is not None:
            links.close()
        if ines is not None:
            ines.close()
        if isinstance(exc, OSError):
            raise FileRejected(path, f"cannot read file ({exc.strerror})") from None
        log.warning("aaf.scan.refused", file=path.name, reason=exc.reason)
        raise
    summary = sorter.finish()
    if name.complete:
        for key, occurrences in summary.duplicates:
            jointure = key.split(":", 1)[1]
            for _index, line in occurrences[:-1]:
                collector.item(
                    line or None,
                    jointure,
                    None,
                    "duplicate_record",
                    f"record occurs {len(occurrences)} times; the last one wins",
                    Severity.WARNING,
                )
    report.digest = digest
    report.category = category
    report.category_name = report.category_name or category.value
    report.records = records
    report.record_keys_digest = summary.digest
    report.scope, report.scope_source = scope, scope_source
    log.info(
        "aaf.scan.done",
        file=path.name,
        digest=digest,
        category=category.value,
        records=records,
        published=report.published,
        held=report.held,
        rejected=report.rejected,
        warnings=report.warnings,
    )
    return FileScan(
        path=path,
        name=name,
        category=category,
        digest=digest,
        size=size,
        records=records,
        record_count=hasher.count,
        rejected_count=hasher.rejected,
        record_keys_digest=summary.digest,
        events_digest=hasher.hexdigest(),
        report=report,
        config=config,
        context=context,
        base=base,
        links=links,
        ines=ines,
        scope=scope,
        held_schools=held_schools,
        conflicts=conflicts,
    )


def _add_links(links: LinkSide, record: Pupil | Guardian) -> None:
    if isinstance(record, Pupil):
        links.add(record.jointure, record.guardian_jointures)
    else:
        links.add(record.jointure, record.pupil_jointures)

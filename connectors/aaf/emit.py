"""Pass 2: ``events(scan)`` re-reads a scanned file and yields its feed events.

Order: ``SnapshotStarted`` (complete files only), one event per published record in file order
(upserts, held pupils, deletes; in a complete extract, a ``RecordRejected`` for each record
refused although its jointure is known, so that it does not read as absent), then
``SnapshotCompleted`` with ``record_count`` and
``record_keys_digest``. Before the first event the file's bytes are hashed again and compared with
pass 1; while reading, the bytes handed to the parser are hashed, and the published sequence is
compared with pass 1's before ``SnapshotCompleted``. Any difference raises :class:`FileRejected`:
a consumer must treat a snapshot without its ``SnapshotCompleted`` as abandoned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path

import structlog

from connectors.aaf.attrs import Record
from connectors.aaf.config import FileRejected, ScanConfig
from connectors.aaf.keyset import KeySorter
from connectors.aaf.process import Outcome, content_digest
from connectors.aaf.reader import RequestReader
from connectors.aaf.scan import EventsHasher, FileScan, run
from connectors.aaf.scan import scan as scan_file
from schemas.feed import (
    Category,
    FeedEvent,
    Guardian,
    GuardianUpserted,
    Pupil,
    PupilUpserted,
    RecordDeleted,
    RecordRejected,
    School,
    SchoolUpserted,
    SnapshotCompleted,
    SnapshotStarted,
    SourceRef,
    Staff,
    StaffUpserted,
)

log = structlog.get_logger(__name__)


def snapshot_key(category: Category, scope: str) -> str:
    return f"snapshot:{category.value}:{scope}"


def _source(
    scan: FileScan, index: int, line: int | None, snapshot_id: str | None = None
) -> SourceRef:
    return SourceRef(
        file_name=scan.path.name,
        file_digest=scan.digest,
        category=scan.category,
        record_index=index,
        line=line,
        extract_date=scan.extract_date,
        complete=scan.complete,
        scope=scan.scope or None,
        snapshot_id=snapshot_id if scan.complete else None,
    )


def _record_event(scan: FileScan, outcome: Outcome, snapshot_id: str | None) -> FeedEvent:
    assert outcome.key is not None
    src = _source(scan, outcome.request.index, outcome.request.line, snapshot_id)
    key, version, record = outcome.key, outcome.version(), outcome.record
    if isinstance(record, Pupil):
        return PupilUpserted(key=key, version=version, source=src, pupil=record)
    if isinstance(record, Guardian):
        return GuardianUpserted(key=key, version=version, source=src, guardian=record)
    if isinstance(record, Staff):
        return StaffUpserted(key=key, version=version, source=src, staff=record)
    if isinstance(record, School):
        return SchoolUpserted(key=key, version=version, source=src, school=record)
    return RecordDeleted(
        key=key, version=version, source=src, kind=outcome.kind, jointure=outcome.jointure or ""
    )


def _rejected_event(
    scan: FileScan, outcome: Outcome, key: str, snapshot_id: str | None
) -> RecordRejected:
    assert outcome.jointure is not None
    rules = outcome.rejection_rules()
    return RecordRejected(
        key=key,
        version=content_digest(
            {"op": "rejected", "kind": outcome.kind, "jointure": outcome.jointure, "rules": rules}
        ),
        source=_source(scan, outcome.request.index, outcome.request.line, snapshot_id),
        kind=outcome.kind,
        jointure=outcome.jointure,
        rules=rules,
    )


def _started(scan: FileScan, snapshot_id: str) -> SnapshotStarted:
    scope = scan.scope or ""
    content = {
        "type": "snapshot.started",
        "snapshot_id": snapshot_id,
        "scope": scope,
        "category": scan.category.value,
        "extract_date": scan.extract_date,
    }
    return SnapshotStarted(
        key=snapshot_key(scan.category, scope),
        version=content_digest(content),
        source=_source(scan, 0, None, snapshot_id),
        snapshot_id=snapshot_id,
        scope=scope,
        category=scan.category,
        extract_date=scan.extract_date,
    )


def _completed(
    scan: FileScan, snapshot_id: str, index: int, count: int, digest: str
) -> SnapshotCompleted:
    scope = scan.scope or ""
    content = {
        "type": "snapshot.completed",
        "snapshot_id": snapshot_id,
        "scope": scope,
        "category": scan.category.value,
        "extract_date": scan.extract_date,
        "record_count": count,
        "record_keys_digest": digest,
    }
    return SnapshotCompleted(
        key=snapshot_key(scan.category, scope),
        version=content_digest(content),
        source=_source(scan, index, None, snapshot_id),
        snapshot_id=snapshot_id,
        scope=scope,
        category=scan.category,
        extract_date=scan.extract_date,
        record_count=count,
        record_keys_digest=digest,
    )


def _verify(scan: FileScan) -> None:
    """Refuse, before any event, a file whose bytes are no longer those of pass 1."""
    h = hashlib.sha256()
    try:
        with scan.path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise FileRejected(scan.path, f"cannot read file ({exc.strerror})") from None
    if h.hexdigest() != scan.digest:
        raise FileRejected(scan.path, "file changed since it was scanned")


def _record_events(
    scan: FileScan, snapshot_id: str | None = None
) -> Iterator[tuple[Outcome, FeedEvent]]:
    """The record events of one file; the bytes parsed are hashed and checked at the end."""
    path = scan.path
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise FileRejected(path, f"cannot read file ({exc.strerror})") from None
    with fh:
        reader = RequestReader(fh, path, scan.config)
        hasher = EventsHasher()
        for _category, outcome in run(reader, path, scan.category, scan.context, scan.base):
            if outcome.key is None:
                rejected = outcome.rejected_key
                if scan.complete and rejected is not None:
                    hasher.add_rejected(outcome, rejected)
                    yield outcome, _rejected_event(scan, outcome, rejected, snapshot_id)
                continue
            hasher.add(outcome)
            yield outcome, _record_event(scan, outcome, snapshot_id)
        if reader.digest != scan.digest:
            raise FileRejected(path, "file changed while it was read")
        if (
            hasher.hexdigest() != scan.events_digest
            or hasher.count != scan.record_count
            or hasher.rejected != scan.rejected_count
        ):
            raise FileRejected(path, "records differ from the scan (did the modify base change?)")
    log.info("aaf.events.done", file=path.name, digest=scan.digest, events=hasher.count)


def events(scan: FileScan) -> Iterator[FeedEvent]:
    """Pass 2 for one file: exactly the events pass 1 validated (see the module docstring).

    A complete extract split in several parts must go through :func:`events_many` instead, so
    that the snapshot spans all its parts.
    """
    _verify(scan)
    if scan.complete:
        yield _started(scan, scan.digest)
    for _outcome, event in _record_events(scan, scan.digest if scan.complete else None):
        yield event
    if scan.complete:
        yield _completed(
            scan, scan.digest, scan.records, scan.record_count, scan.record_keys_digest
        )


def events_many(scans: Sequence[FileScan]) -> Iterator[FeedEvent]:
    """Pass 2 for several files, in order; the parts of one complete extract form one snapshot.

    Complete files sharing category, scope and extract date are parts ``_0000``.. of one extract:
    one ``SnapshotStarted`` (``snapshot_id`` = sha256 of the parts' digests in part order), the
    records of every part, one ``SnapshotCompleted`` over all of them. Parts must be contiguous
    from 0, else the first file of the group is refused (a missing part would read as departures).
    """
    groups: dict[tuple[Category, str, date | None], list[FileScan]] = {}
    order: list[FileScan | tuple[Category, str, date | None]] = []
    for scan in scans:
        if not scan.complete:
            order.append(scan)
            continue
        group_key = (scan.category, scan.scope or "", scan.extract_date)
        if group_key not in groups:
            groups[group_key] = []
            order.append(group_key)
        groups[group_key].append(scan)
    for entry in order:
        if isinstance(entry, FileScan):
            yield from events(entry)
        else:
            yield from _snapshot_events(groups[entry])


def _snapshot_events(parts: list[FileScan]) -> Iterator[FeedEvent]:
    parts = sorted(parts, key=lambda s: s.name.part)
    numbers = [s.name.part for s in parts]
    if numbers != list(range(len(parts))):
        raise FileRejected(parts[0].path, f"parts of the complete extract are not 0..n: {numbers}")
    if len(parts) == 1:
        yield from events(parts[0])
        return
    snapshot_id = hashlib.sha256("".join(s.digest for s in parts).encode()).hexdigest()
    first, last = parts[0], parts[-1]
    for part in parts:
        _verify(part)
    yield _started(first, snapshot_id)
    sorter = KeySorter()
    count = 0
    try:
        for scan in parts:
            for outcome, event in _record_events(scan, snapshot_id):
                sorter.add(event.key, outcome.request.index, outcome.request.line)
                count += 1
                yield event
    except BaseException:
        sorter.close()
        raise
    summary = sorter.finish()
    yield _completed(last, snapshot_id, last.records, count, summary.digest)


def collect_records(scans: Iterable[FileScan]) -> dict[str, Record]:
    """``record_key → record`` of the upserts of some scans (a base for modifyRequests).

    Holds every record in memory: meant for tests, demos and per-school extracts.
    """
    records: dict[str, Record] = {}
    for scan in scans:
        for outcome, _event in _record_events(scan):
            if outcome.key is not None:
                if outcome.record is None:
                    records.pop(outcome.key, None)
                else:
                    records[outcome.key] = outcome.record
    return records


def read_base(paths: Iterable[Path], config: ScanConfig) -> dict[str, Record]:
    """The records of full extracts completing the ``modifyRequest`` records of deltas.

    Only their records matter, not their scope: they are read, never published from here."""
    return collect_records([scan_file(p, config=config, require_scope=False) for p in paths])

"""AAF (ONDE / AAF1D and staff) feed files → feed events, in two passes.

Typical use (what ``entsync ingest`` does)::

    from connectors.aaf import scan_many, events_many, render_summary

    result = scan_many(paths)                 # pass 1: validate every file, publish nothing
    render_summary(result.report)
    if result.report.ok:
        for event in events_many(result.scans):   # pass 2: re-read, yield the feed events
            publish(event)

One file: ``file_scan = scan(path)`` (raises :class:`FileRejected`) then ``events(file_scan)``.

- ``base`` (``record_key → record``) completes the ``modifyRequest`` records of deltas; without it
  they are reported as rejected (``modify_unknown_record``), never published half-filled.
- Pass 2 may still raise :class:`FileRejected` (file changed since pass 1): treat a snapshot
  without its ``SnapshotCompleted`` as abandoned and do not record the file as ingested.
- Real extracts carry ``<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">``: accepted by
  default (the DTD is never loaded), refused with ``ScanConfig(refuse_doctype=True)``.
"""

from connectors.aaf.attrs import Record, record_to_attrs
from connectors.aaf.batch import ScanResult, scan_many
from connectors.aaf.config import FileRejected, FileSkipped, ScanConfig
from connectors.aaf.emit import collect_records, events, events_many, read_base, snapshot_key
from connectors.aaf.filename import FileName, format_file_name, parse_file_name
from connectors.aaf.keyset import keys_digest
from connectors.aaf.links import LinkSide, check_link_sides, check_links
from connectors.aaf.load_order import load_events
from connectors.aaf.report import FileReport, IngestReport, ReportItem, Severity, render_summary
from connectors.aaf.scan import FileScan, scan

__all__ = [
    "FileName",
    "FileRejected",
    "FileReport",
    "FileScan",
    "FileSkipped",
    "IngestReport",
    "LinkSide",
    "Record",
    "ReportItem",
    "ScanConfig",
    "ScanResult",
    "Severity",
    "check_link_sides",
    "check_links",
    "collect_records",
    "events",
    "events_many",
    "format_file_name",
    "keys_digest",
    "load_events",
    "parse_file_name",
    "read_base",
    "record_to_attrs",
    "render_summary",
    "scan",
    "scan_many",
    "snapshot_key",
]

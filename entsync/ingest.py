"""``entsync ingest``: validate files whole, then publish their events once.

Every file is scanned completely before anything is published; if one is refused, nothing is
published at all. A file whose digest is in the ingest ledger was already fully published and
is skipped (unless forced), so ingesting the same file twice publishes nothing new.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.aaf import (
    FileRejected,
    FileScan,
    IngestReport,
    ScanConfig,
    load_events,
    parse_file_name,
    read_base,
    scan_many,
)
from connectors.aaf.attrs import Record
from connectors.stream.clients import KafkaParams
from connectors.stream.ledger import append_ledger, read_ledger
from connectors.stream.publisher import FeedPublisher
from connectors.stream.topics import ensure_topics
from entsync.kafka_clients import kafka_params
from entsync.logs import get_logger
from entsync.settings import Settings
from schemas.ledger import FileIngested

log = get_logger(__name__)


@dataclass
class FileOutcome:
    path: Path
    digest: str
    published: int = 0
    skipped_reason: str | None = None


@dataclass
class IngestOutcome:
    report: IngestReport
    files: list[FileOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def refused(self) -> bool:
        return not self.report.ok or self.error is not None

    @property
    def published(self) -> int:
        return sum(f.published for f in self.files)


def show_progress() -> bool:
    """A progress bar on a terminal; nothing in CI or when stderr is not a terminal."""
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def _progress(total: int) -> Iterator[Progress | None]:
    if not show_progress():
        yield None
        return
    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        bar.add_task("events", total=total)
        yield bar


async def _publish(
    settings: Settings, kafka: KafkaParams, scans: list[FileScan], force: bool
) -> list[FileOutcome]:
    await ensure_topics(kafka, settings.topic_partitions)
    ledger = {} if force else await read_ledger(kafka)
    outcomes: list[FileOutcome] = []
    fresh: list[FileScan] = []
    for file_scan in scans:
        outcome = FileOutcome(path=file_scan.path, digest=file_scan.digest)
        outcomes.append(outcome)
        if file_scan.digest in ledger:
            outcome.skipped_reason = "already ingested"
            log.info("ingest.skipped", file=file_scan.path.name, digest=file_scan.digest[:12])
        else:
            fresh.append(file_scan)
    if not fresh:
        return outcomes
    by_digest = {o.digest: o for o in outcomes}
    expected = sum(s.event_count for s in fresh)
    async with FeedPublisher(kafka) as publisher:
        with _progress(expected) as bar:
            # The parts of one complete extract in one snapshot (events_many); a load of complete
            # extracts school by school (load_order: a family's round trips then fit in one of
            # the worker's write windows more often, see connectors/stream/intake.py).
            for event in load_events(fresh):
                await publisher.publish(event)
                digest = event.source.file_digest
                if digest in by_digest:
                    by_digest[digest].published += 1
                if bar is not None:
                    bar.advance(bar.task_ids[0])
            await publisher.flush()
    # Only after every event is acknowledged does a file enter the ledger.
    for file_scan in fresh:
        outcome = by_digest[file_scan.digest]
        await append_ledger(
            kafka,
            FileIngested(
                file_digest=file_scan.digest,
                file_name=file_scan.path.name,
                category=str(file_scan.category),
                scope=file_scan.scope,
                complete=file_scan.complete,
                events_published=outcome.published,
                at=datetime.now(UTC),
            ),
        )
        log.info("ingest.published", file=file_scan.path.name, events=outcome.published)
    return outcomes


def _base_records(
    paths: list[Path], base_paths: list[Path], config: ScanConfig
) -> dict[str, Record] | None:
    """Records completing the modifyRequests of delta files: the ``--base`` files, then the
    complete files of the same call. None when no delta file is ingested."""
    names = [parse_file_name(p.name) for p in paths]
    if all(n.complete for n in names):
        return None
    # Files of categories entsync does not sync are skipped by the scan, not read as a base.
    complete = [p for p, n in zip(paths, names, strict=True) if n.complete and n.category]
    return read_base([*base_paths, *complete], config)


def ingest(
    settings: Settings,
    paths: list[Path],
    *,
    force: bool = False,
    base_paths: list[Path] | None = None,
    config: ScanConfig | None = None,
) -> IngestOutcome:
    config = config or ScanConfig()
    kafka = kafka_params(settings)  # wrong Kafka settings fail before the files are read
    try:
        base = _base_records(paths, base_paths or [], config)
    except FileRejected as exc:
        return IngestOutcome(report=IngestReport(), error=f"base file refused: {exc}")
    result = scan_many(paths, config=config, base=base)
    outcome = IngestOutcome(report=result.report)
    if outcome.refused:
        return outcome
    try:
        outcome.files = asyncio.run(_publish(settings, kafka, result.scans, force))
    except FileRejected as exc:
        # The file changed between the two passes: what was published is idempotent, and the
        # file is not in the ledger, so ingesting it again publishes it whole.
        outcome.error = f"{exc} (ingest it again once the file is stable)"
    return outcome

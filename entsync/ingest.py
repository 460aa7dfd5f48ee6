"""``entsync ingest``: validate files whole, then publish their events once.

Every file is scanned completely before anything is published; if one is refused, nothing is
published at all. A file whose digest is in the ingest ledger was already fully published and
is skipped (unless forced), so ingesting the same file twice publishes nothing new.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.aaf import FileRejected, FileScan, IngestReport, events, scan
from connectors.stream.ledger import append_ledger, read_ledger
from connectors.stream.publisher import FeedPublisher
from connectors.stream.topics import ensure_topics
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
    refused: list[FileRejected] = field(default_factory=list)

    @property
    def published(self) -> int:
        return sum(f.published for f in self.files)


def scan_all(paths: list[Path]) -> tuple[list[FileScan], IngestReport, list[FileRejected]]:
    """Pass 1 over every file; nothing is published here."""
    scans: list[FileScan] = []
    refused: list[FileRejected] = []
    for path in paths:
        try:
            scans.append(scan(path))
        except FileRejected as exc:
            refused.append(exc)
    report = IngestReport.merge([s.report for s in scans])
    return scans, report, refused


async def _publish(settings: Settings, scans: list[FileScan], force: bool) -> list[FileOutcome]:
    bootstrap = settings.require_kafka()
    await ensure_topics(bootstrap, settings.topic_partitions)
    ledger = {} if force else await read_ledger(bootstrap)
    outcomes: list[FileOutcome] = []
    async with FeedPublisher(bootstrap) as publisher:
        for file_scan in scans:
            info = file_scan.info
            outcome = FileOutcome(path=Path(info.path), digest=info.digest)
            outcomes.append(outcome)
            if info.digest in ledger:
                outcome.skipped_reason = "already ingested"
                log.info("ingest.skipped", file=info.name, digest=info.digest[:12])
                continue
            outcome.published = await publisher.publish_all(events(file_scan))
            await append_ledger(
                bootstrap,
                FileIngested(
                    file_digest=info.digest,
                    file_name=info.name,
                    category=str(info.category),
                    scope=info.scope,
                    complete=info.complete,
                    events_published=outcome.published,
                    at=datetime.now(UTC),
                ),
            )
            log.info("ingest.published", file=info.name, events=outcome.published)
    return outcomes


def ingest(settings: Settings, paths: list[Path], *, force: bool = False) -> IngestOutcome:
    scans, report, refused = scan_all(paths)
    outcome = IngestOutcome(report=report, refused=refused)
    if refused:
        return outcome
    outcome.files = asyncio.run(_publish(settings, scans, force))
    return outcome

"""A load's records published school by school: each school with its pupils, their guardians
and its staff, so that the worker's write window holds whole families.

Why: the worker writes an entry once for all the inputs one write window holds
(:mod:`connectors.stream.write_window`). A pupil's entry is complete only when its guardians
have answered (``ENTEleveParents``), a school's groups when their members have. In file order
(every pupil of the academy, then every guardian) a load longer than one window adds each pupil
in one window and modifies it in a later one. In family order, and taken in by the worker no
faster than it decides (:mod:`connectors.stream.intake`), a window holds whole schools.

Rules (:func:`family_order`):

1. Only a load is reordered: every event from a complete extract. A delta's order is part of
   its meaning (an add then a delete of one record); the caller keeps it (:func:`load_events`),
   and :func:`family_order` refuses a delta event.
2. Every ``SnapshotStarted`` first and every ``SnapshotCompleted`` last, each in its own order:
   a snapshot still spans all of its records (absence is reasoned on complete snapshots only).
3. A record's place is its school: a school's own record; a pupil's school of attachment; a
   guardian's, the school of the first of its pupils already placed; a staff member's school of
   attachment, else its first school of exercise. Schools are ranked as they first appear and
   come bucket by bucket (rank modulo ``buckets``), by rank within a bucket.
   A record key keeps the place its first record got, so two records of one key keep their
   order. Records with no school (a guardian whose pupils come later or not at all, a rejected
   record) come after every school, in their order.
4. Within a school, records keep their order (pupils before guardians, as the files come).
5. Bounded memory: records wait in temporary files (``buckets`` of them, schools spread by
   rank); one bucket at a time is read back and sorted. What stays in memory: the snapshot
   events, and each record key's school rank (about 100 bytes a record).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, cast

from connectors.aaf.emit import events_many
from connectors.aaf.scan import FileScan
from schemas.feed import (
    FeedEvent,
    GuardianUpserted,
    PupilUpserted,
    SchoolUpserted,
    SnapshotCompleted,
    SnapshotStarted,
    StaffUpserted,
    record_key,
)

BUCKETS = 64


def load_events(scans: Sequence[FileScan]) -> Iterator[FeedEvent]:
    """The events of ``scans`` as they are published: in family order for a load (every file
    complete), in file order otherwise (see :func:`connectors.aaf.emit.events_many`)."""
    if scans and all(scan.complete for scan in scans):
        return family_order(events_many(scans))
    return events_many(scans)


def family_order(events: Iterable[FeedEvent], *, buckets: int = BUCKETS) -> Iterator[FeedEvent]:
    """``events`` of complete extracts, school by school (the module's rules)."""
    started: list[FeedEvent] = []
    completed: list[FeedEvent] = []
    places = _Places()
    files: dict[int, IO[bytes]] = {}
    homeless = tempfile.TemporaryFile()  # noqa: SIM115  (closed below, after it is read back)
    try:
        for position, event in enumerate(events):
            if not event.source.complete:
                raise ValueError(f"a delta event in a load: {event.source.file_name}")
            if isinstance(event, SnapshotStarted):
                started.append(event)
                continue
            if isinstance(event, SnapshotCompleted):
                completed.append(event)
                continue
            rank = places.rank(event)
            if rank is None:
                pickle.dump(event, homeless)
                continue
            bucket = files.get(rank % buckets)
            if bucket is None:
                bucket = files[rank % buckets] = tempfile.TemporaryFile()  # noqa: SIM115
            pickle.dump((rank, position, event), bucket)
        del places
        yield from started
        for index in sorted(files):
            placed = cast(list[tuple[int, int, FeedEvent]], list(_read_back(files.pop(index))))
            placed.sort(key=lambda item: (item[0], item[1]))
            for _rank, _position, event in placed:
                yield event
        yield from cast(Iterator[FeedEvent], _read_back(homeless))
        yield from completed
    finally:
        for file in (*files.values(), homeless):
            file.close()


class _Places:
    """Each school's rank (first appearance) and each record key's place (rule 3)."""

    def __init__(self) -> None:
        self.schools: dict[str, int] = {}
        self.keys: dict[str, int | None] = {}

    def rank(self, event: FeedEvent) -> int | None:
        if event.key in self.keys:
            return self.keys[event.key]
        rank = self._place(event)
        self.keys[event.key] = rank
        return rank

    def _school(self, jointure: str | None) -> int | None:
        if not jointure:
            return None
        return self.schools.setdefault(jointure, len(self.schools))

    def _place(self, event: FeedEvent) -> int | None:
        match event:
            case SchoolUpserted():
                return self._school(event.school.jointure)
            case PupilUpserted():
                return self._school(event.pupil.school_jointure)
            case GuardianUpserted():
                for pupil in event.guardian.pupil_jointures:
                    rank = self.keys.get(record_key("pupil", pupil))
                    if rank is not None:
                        return rank
                return None
            case StaffUpserted():
                staff = event.staff
                return self._school(
                    staff.attachment_school_jointure or next(iter(staff.school_jointures), None)
                )
        return None  # a rejected or deleted record: its place does not matter


def _read_back(file: IO[bytes]) -> Iterator[object]:
    file.seek(0)
    while True:
        try:
            yield pickle.load(file)
        except EOFError:
            return

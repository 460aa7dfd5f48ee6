"""Builders for lifecycle tests: complete snapshots, year commands, a world to step through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from schemas.entities import Cause
from schemas.feed import (
    Category,
    FeedEvent,
    GuardianUpserted,
    PupilUpserted,
    SnapshotCompleted,
    SnapshotStarted,
    StaffUpserted,
)
from schemas.lifecycle import HoldDecided, YearCommand
from sync import dit, ids
from sync.reconcile import Context
from sync.simulator import Directory, FeedOrControl, RunResult, World, run_to_quiescence
from tests.unit.core_factories import BASE, NS, T0, source

CTX = Context(base_dn=BASE, namespace=NS)
KIND_OF = {Category.PUPILS: "pupil", Category.GUARDIANS: "guardian", Category.STAFF: "staff"}


def snapshot(
    category: Category,
    scope: str,
    snapshot_id: str,
    records: Sequence[FeedEvent],
    extract_date: date | None = None,
) -> list[FeedEvent]:
    """A complete extract of ``scope``: its markers around ``records`` restamped as its own."""
    kind = KIND_OF[category]
    key = f"snapshot:{category.value}:{scope}"
    marker_source = source(kind, scope=scope, snapshot_id=snapshot_id, extract_date=extract_date)
    started = SnapshotStarted(
        key=key,
        version=f"started-{snapshot_id}",
        source=marker_source,
        snapshot_id=snapshot_id,
        scope=scope,
        category=category,
        extract_date=extract_date,
    )
    restamped = [
        r.model_copy(
            update={
                "source": source(
                    kind, i, scope=scope, snapshot_id=snapshot_id, extract_date=extract_date
                )
            }
        )
        for i, r in enumerate(records)
    ]
    completed = SnapshotCompleted(
        key=key,
        version=f"completed-{snapshot_id}",
        source=marker_source,
        snapshot_id=snapshot_id,
        scope=scope,
        category=category,
        extract_date=extract_date,
        record_count=len(records),
        record_keys_digest="0" * 64,
    )
    return [started, *restamped, completed]


def delta(kind: str, scope: str, records: Sequence[FeedEvent]) -> list[FeedEvent]:
    """Records of a delta file of ``scope`` (no snapshot)."""
    return [
        r.model_copy(update={"source": source(kind, i, scope=scope, snapshot_id="")})
        for i, r in enumerate(records)
    ]


def year(action: str, at: datetime, school_year: str | None = None) -> YearCommand:
    return YearCommand(
        key="year",
        action=action,  # type: ignore[arg-type]
        school_year=school_year,
        partition=0,
        at=at,
    )


def hold_decision(category: Category, scope: str, snapshot_id: str, approve: bool) -> HoldDecided:
    return HoldDecided(
        key=f"snapshot:{category.value}:{scope}",
        snapshot_id=snapshot_id,
        approve=approve,
        operator="tester",
        at=T0,
    )


class Clock:
    """Feeds a world day after day: each message gets a cause time after the previous one."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.offset = 0
        self.world = World()

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def cause(self, rule: str) -> Cause:
        self.offset += 1
        self.now += timedelta(seconds=1)
        return Cause(
            topic="entsync.feed.v1", partition=0, offset=self.offset, rule=rule, at=self.now
        )

    def feed(self, events: Sequence[FeedOrControl]) -> RunResult:
        timed = [(e, self.cause(f"feed.{e.type}")) for e in events]
        return run_to_quiescence(timed, ctx=CTX, world=self.world)


def person(directory: Directory, entity_id: str) -> dict[str, tuple[str, ...]] | None:
    return directory.get(dit.people_dn(entity_id, BASE))


def state_of(directory: Directory, entity_id: str) -> str | None:
    entry = person(directory, entity_id)
    return None if entry is None else entry["entsyncAccountState"][0]


def pupil_key_id(event: PupilUpserted) -> str:
    return ids.pupil_id(NS, event.pupil)


def guardian_key_id(event: GuardianUpserted) -> str:
    return ids.guardian_id(NS, event.guardian.jointure)


def staff_key_id(event: StaffUpserted) -> str:
    return ids.staff_id(NS, event.staff.jointure)

"""Which record describes an entity now: the effective record and the account state.

A person can be known from several source keys (a pupil moving school keeps one INE-keyed
identity while both schools' jointures still exist). The *effective* record is the latest present
one by cause time, ties broken by source key, so it does not depend on arrival order.

Pupils: the entry is driven by the effective record when it is admitted. When it is held
(``held_reasons`` not empty) the entry is driven by the latest admitted record ever received:
a pupil once admitted keeps its entry and links as they were, because a late or partial record
(a class not yet assigned, an admission being re-checked at the year change) must not strip a
child of their account, groups and guardians. Keying this on "ever admitted" rather than on
"already written" makes the outcome independent of when the login arrived. A pupil never
admitted has no driver: nothing is written and no link is made.

When every record is removed, the last known content still drives the entry and the account is
``disappeared``, then ``predeleted`` and ``deleted`` as the sweeper moves it on (see
:mod:`sync.lifecycle`); a record coming back makes it active again.

After a school-year switchover, a pupil record older than the switchover describes last year: its
classes are retired (the pupil keeps its school until a new-year record places it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.entities import ManualAccount
from schemas.feed import Guardian, Pupil, School, Staff
from schemas.state import AccountState, EntityState, SourceRecord

Record = School | Pupil | Guardian | Staff | ManualAccount


def utc(value: datetime) -> datetime:
    """Comparable instants: naive datetimes are taken as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _order(item: tuple[str, SourceRecord]) -> tuple[datetime, str]:
    return utc(item[1].at), item[0]


def content(record: SourceRecord) -> Record | None:
    return record.school or record.pupil or record.guardian or record.staff


def latest_present(state: EntityState) -> SourceRecord | None:
    present = [(k, r) for k, r in state.records.items() if r.present and content(r) is not None]
    return max(present, key=_order)[1] if present else None


def latest_known(state: EntityState) -> SourceRecord | None:
    known = [(k, r) for k, r in state.records.items() if content(r) is not None]
    return max(known, key=_order)[1] if known else None


@dataclass(frozen=True)
class View:
    """What drives an entity's entry now."""

    record: Record | None
    account_state: AccountState | None
    disappeared_at: datetime | None


def view(state: EntityState) -> View:
    if state.kind == "manual":
        return _manual_view(state)
    present = latest_present(state)
    known = present or latest_known(state)
    if known is None:
        return View(None, None, None)
    record = content(known)
    if state.kind == "pupil":
        pupil = record if isinstance(record, Pupil) else None
        at = known.at
        if pupil is None or pupil.held_reasons:
            pupil = state.admitted.pupil if state.admitted is not None else None
            at = state.admitted.at if state.admitted is not None else at
        retired = state.classes_retired_at
        if pupil is not None and pupil.classes and retired and utc(at) < utc(retired):
            pupil = pupil.model_copy(update={"classes": ()})
        record = pupil
    if isinstance(record, Staff) and state.detached_schools:
        # Schools of exercise a director detached the teacher from (never the attachment one).
        kept = tuple(s for s in record.school_jointures if s not in state.detached_schools)
        record = record.model_copy(update={"school_jointures": kept})
    if present is not None:
        return View(record, "active", None)
    # Every key removed: the last removal time, whatever order the removals arrived in.
    gone_at = max(utc(r.at) for r in state.records.values())
    if state.deleted_at is not None:
        return View(record, "deleted", gone_at)
    if state.predeleted_at is not None:
        return View(record, "predeleted", gone_at)
    return View(record, "disappeared", gone_at)


def _manual_view(state: EntityState) -> View:
    """A manual account is active until an operator deletes it (no feed makes it disappear)."""
    if state.manual is None:
        return View(None, None, None)
    if state.deleted_at is not None:
        return View(state.manual, "deleted", state.deleted_at)
    if state.predeleted_at is not None:
        return View(state.manual, "predeleted", state.predeleted_at)
    return View(state.manual, "active", None)

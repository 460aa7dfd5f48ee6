"""Small factories of feed events and causes for the reconciliation-core tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from schemas.entities import Cause, GroupSpec, LinkSet
from schemas.feed import (
    Category,
    ClassAssignment,
    FeedEvent,
    Guardian,
    GuardianUpserted,
    HoldReason,
    Pupil,
    PupilUpserted,
    RecordDeleted,
    School,
    SchoolUpserted,
    SourceRef,
    Staff,
    StaffUpserted,
    payload_version,
    record_key,
)
from sync import ids

T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
NS = "test"
BASE = "dc=ent,dc=example"

_CATEGORIES = {
    "school": Category.SCHOOLS,
    "pupil": Category.PUPILS,
    "guardian": Category.GUARDIANS,
    "staff": Category.STAFF,
}


def letters(i: int) -> str:
    """A distinct capitalised word per integer, letters only (logins drop digits)."""
    word = ""
    i += 26
    while i:
        i, r = divmod(i, 26)
        word = chr(ord("a") + r) + word
    return word.capitalize()


def source(
    kind: str,
    index: int = 0,
    *,
    scope: str = "0000000X",
    snapshot_id: str | None = None,
    extract_date: date | None = None,
) -> SourceRef:
    """A record's origin: a complete extract of ``scope`` (a delta when ``snapshot_id`` is '')."""
    complete = snapshot_id != ""
    return SourceRef(
        file_name=f"ENT_{scope}_{'Complet' if complete else 'Delta'}_20260901_"
        f"{_CATEGORIES[kind].value}_0000.xml",
        file_digest="0" * 64,
        category=_CATEGORIES[kind],
        record_index=index,
        complete=complete,
        scope=scope,
        snapshot_id=(snapshot_id or "s" * 64) if complete else None,
        extract_date=extract_date,
    )


def cause(offset: int, rule: str = "feed.test", at: datetime | None = None) -> Cause:
    return Cause(
        topic="entsync.feed.v1",
        partition=0,
        offset=offset,
        rule=rule,
        at=at or T0 + timedelta(seconds=offset),
    )


def school(
    jointure: str,
    uai: str = "0750001A",
    name: str = "Ecole",
    commune: str | None = None,
    siren: str | None = "213105554",
) -> SchoolUpserted:
    record = School(jointure=jointure, uai=uai, name=name, commune=commune, siren=siren)
    return SchoolUpserted(
        key=record_key("school", jointure),
        version=payload_version(record),
        source=source("school"),
        school=record,
    )


def pupil_record(
    jointure: str,
    *,
    first: str,
    last: str = "Martin",
    ine: str | None = None,
    school_jointure: str | None = "S1",
    classes: Sequence[tuple[str, str]] = (("CP-A", "CP A"),),
    guardians: Sequence[str] = (),
    held: Sequence[HoldReason] = (),
    birth: date | None = date(2019, 3, 14),
) -> Pupil:
    return Pupil(
        jointure=jointure,
        ine=ine,
        first_name=first,
        last_name=last,
        birth_date=birth,
        school_jointure=school_jointure,
        classes=tuple(
            ClassAssignment(school_jointure=school_jointure or "", code=code, label=label)
            for code, label in classes
        ),
        level="CP",
        guardian_jointures=tuple(guardians),
        held_reasons=tuple(held),
    )


def pupil(jointure: str, **kwargs: Any) -> PupilUpserted:
    record = pupil_record(jointure, **kwargs)
    return pupil_event(record)


def pupil_event(record: Pupil) -> PupilUpserted:
    return PupilUpserted(
        key=record_key("pupil", record.jointure),
        version=payload_version(record),
        source=source("pupil"),
        pupil=record,
    )


def guardian(
    jointure: str,
    *,
    first: str,
    last: str = "Martin",
    mobile: str | None = "+33612345678",
    pupils: Sequence[str] = (),
) -> GuardianUpserted:
    record = Guardian(
        jointure=jointure,
        first_name=first,
        last_name=last,
        phone_mobile=mobile,
        pupil_jointures=tuple(pupils),
    )
    return GuardianUpserted(
        key=record_key("guardian", jointure),
        version=payload_version(record),
        source=source("guardian"),
        guardian=record,
    )


def member_link(spec: GroupSpec, member: str, offset: int, present: bool = True) -> LinkSet:
    """``member`` joins (or leaves) the group ``spec``, as its link message says."""
    return LinkSet(
        entity_id=ids.group_id(NS, spec),
        cause=cause(offset),
        relation="member",
        member_id=member,
        present=present,
        group=spec if present else None,
    )


def staff(
    jointure: str,
    *,
    first: str,
    last: str = "Bernard",
    teacher: bool = True,
    director: bool = False,
    attachment: str | None = "S1",
    schools: Sequence[str] = (),
    academic_login: str | None = None,
) -> StaffUpserted:
    record = Staff(
        jointure=jointure,
        first_name=first,
        last_name=last,
        is_teacher=teacher,
        is_director=director,
        attachment_school_jointure=attachment,
        school_jointures=tuple(schools),
        academic_login=academic_login,
    )
    return StaffUpserted(
        key=record_key("staff", jointure),
        version=payload_version(record),
        source=source("staff"),
        staff=record,
    )


def deleted(kind: Literal["school", "pupil", "guardian", "staff"], jointure: str) -> RecordDeleted:
    return RecordDeleted(
        key=record_key(kind, jointure),
        version=f"deleted-{kind}-{jointure}",
        source=source(kind),
        kind=kind,
        jointure=jointure,
    )


def with_causes(events: Iterable[FeedEvent], start: int = 0) -> list[tuple[FeedEvent, Cause]]:
    """Number the events like offsets of one partition; cause times follow the offsets."""
    return [(e, cause(start + i, rule=f"feed.{e.type}")) for i, e in enumerate(events)]

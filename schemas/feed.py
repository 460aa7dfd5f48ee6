"""Feed events: what the ONDE (AAF1D) and staff (AAF) feeds say, one event per record.

Topic ``entsync.feed.v1`` carries exactly one schema, :data:`FeedEvent` (a union discriminated by
``type``). Every event has a stable ``key`` (the Kafka message key: the record's kind and source
jointure, or the snapshot's scope) and a ``version`` (a digest of the payload), so that applying it
twice, or replaying the topic, changes nothing.

The records are already validated and normalized by the parser (names in NFC, phones in E.164,
dates as ``date``); the core never re-parses raw AAF text.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

FEED_SCHEMA_VERSION: Literal[1] = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Category(StrEnum):
    """AAF file categories (the ``<Category>`` part of the file name)."""

    SCHOOLS = "EtabEducNat"
    PUPILS = "Eleve"
    GUARDIANS = "PersRelEleve"
    STAFF = "PersEducNat"


class SourceRef(_Frozen):
    """Where a record came from: enough to name the cause of any directory change."""

    file_name: str
    file_digest: str = Field(description="sha256 hex of the whole file")
    category: Category
    record_index: int = Field(ge=0, description="0-based position of the record in the file")
    line: int | None = Field(default=None, description="line of the record's opening tag")
    extract_date: date | None = None
    complete: bool = Field(description="True for a full ('Complet') extract, False for a delta")
    scope: str | None = Field(
        default=None, description="UAI or academy scope from the file name (absence is per scope)"
    )
    snapshot_id: str | None = Field(
        default=None, description="complete extracts: the snapshot the record belongs to"
    )


class HoldReason(StrEnum):
    """Why a record is not (yet) brought into the ENT: a pupil by the admission rules (seed 003)
    or because its INE is carried by another person (``ine_conflict``: held by the core and
    reported by the scan, never set on a published record), a school lacking a value the SDET
    schema makes mandatory, a staff member whose academic login another person has."""

    INE_MISSING = "ine_missing"
    INE_INVALID = "ine_invalid"
    NOT_ADMITTED_DEFINITIVELY = "not_admitted_definitively"
    NO_CLASS = "no_class"
    NOT_CURRENT_SCHOOL_YEAR = "not_current_school_year"
    NO_PARENTAL_AUTHORITY = "no_parental_authority"
    INE_CONFLICT = "ine_conflict"
    SIREN_MISSING = "siren_missing"
    SIREN_INVALID = "siren_invalid"
    # Staff whose academic login the directory cannot take (decided by the login allocator,
    # never carried by a feed record): see sync.claims.
    ACADEMIC_LOGIN_SHARED = "academic_login_shared"
    ACADEMIC_LOGIN_TAKEN = "academic_login_taken"


class ClassAssignment(_Frozen):
    """One ``ENTPersonClasses`` value: ``school$...$...$code$label``."""

    school_jointure: str
    code: str
    label: str


class School(_Frozen):
    """An EtabEducNat record (école)."""

    jointure: str
    uai: str = Field(pattern=r"^[0-9]{7}[A-Z]$")
    name: str
    commune: str | None = None
    circonscription: str | None = None
    academy: str | None = None
    siren: str | None = Field(
        default=None, description="ENTStructureSIREN: SIREN (9 digits) or SIRET (14 digits)"
    )
    held_reasons: tuple[HoldReason, ...] = Field(
        default=(), description="empty when the school has every value SDET makes mandatory"
    )


class Pupil(_Frozen):
    """An Eleve record (élève)."""

    jointure: str
    ine: str | None = None
    last_name: str
    first_name: str
    other_first_names: tuple[str, ...] = ()
    birth_name: str | None = None
    civility: str | None = None
    birth_date: date | None = None
    email: str | None = None
    school_jointure: str | None = Field(default=None, description="ENTPersonStructRattach")
    classes: tuple[ClassAssignment, ...] = ()
    level: str | None = Field(default=None, description="ENTEleveNiveau, e.g. CP, CE2, CM2")
    cycle: str | None = None
    guardian_jointures: tuple[str, ...] = Field(
        default=(), description="first $-field of each ENTEleveAutoriteParentale value"
    )
    admitted_definitively: bool | None = Field(
        default=None,
        description="ONDE admission state when the feed carries it; None when absent",
    )
    school_year: str | None = Field(default=None, description="e.g. '2026-2027' when known")
    held_reasons: tuple[HoldReason, ...] = Field(
        default=(), description="empty when the pupil satisfies every admission rule"
    )


class Guardian(_Frozen):
    """A PersRelEleve record (responsable légal)."""

    jointure: str
    last_name: str
    first_name: str
    civility: str | None = None
    email: str | None = None
    phone_home: str | None = Field(default=None, description="E.164")
    phone_mobile: str | None = Field(default=None, description="E.164")
    phone_work: str | None = Field(default=None, description="E.164")
    address: str | None = None
    postal_code: str | None = None
    town: str | None = None
    country: str | None = None
    pupil_jointures: tuple[str, ...] = Field(default=(), description="ENTPersRelEleveEleve")


class Staff(_Frozen):
    """A PersEducNat record (enseignant ou personnel)."""

    jointure: str
    last_name: str
    first_name: str
    civility: str | None = None
    birth_date: date | None = None
    email: str | None = None
    academic_login: str | None = Field(default=None, description="academic credentials login")
    attachment_school_jointure: str | None = Field(
        default=None, description="ENTPersonStructRattach: the school they belong to"
    )
    school_jointures: tuple[str, ...] = Field(default=(), description="schools of exercise")
    functions: tuple[str, ...] = ()
    is_teacher: bool = False
    is_director: bool = False
    is_replacement: bool = Field(default=False, description="remplaçant, PES")


def payload_version(payload: BaseModel) -> str:
    """Stable digest of a record's content: its version for idempotence."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class _FeedEventBase(_Frozen):
    schema_version: Literal[1] = FEED_SCHEMA_VERSION
    key: str = Field(description="Kafka key: '<kind>:<jointure>' or 'snapshot:<scope>'")
    version: str = Field(description="digest of the payload; equal versions are no-ops")
    source: SourceRef


class SchoolUpserted(_FeedEventBase):
    type: Literal["school.upserted"] = "school.upserted"
    school: School


class PupilUpserted(_FeedEventBase):
    type: Literal["pupil.upserted"] = "pupil.upserted"
    pupil: Pupil


class GuardianUpserted(_FeedEventBase):
    type: Literal["guardian.upserted"] = "guardian.upserted"
    guardian: Guardian


class StaffUpserted(_FeedEventBase):
    type: Literal["staff.upserted"] = "staff.upserted"
    staff: Staff


class RecordDeleted(_FeedEventBase):
    """A ``deleteRequest``: the source says this record is gone."""

    type: Literal["record.deleted"] = "record.deleted"
    kind: Literal["school", "pupil", "guardian", "staff"]
    jointure: str


class RecordRejected(_FeedEventBase):
    """A record of a complete extract that failed validation (its reasons are in the report).

    Its content is not taken: the person stays as the last valid record made them. But the file
    does name the person, so they are not absent from the snapshot: a data-quality fault in a
    full extract never makes anyone disappear. ``rules``: the rejection codes, no values.
    """

    type: Literal["record.rejected"] = "record.rejected"
    kind: Literal["school", "pupil", "guardian", "staff"]
    jointure: str
    rules: tuple[str, ...] = ()


class SnapshotStarted(_FeedEventBase):
    """A full extract of ``scope`` for ``category`` begins (published before its records)."""

    type: Literal["snapshot.started"] = "snapshot.started"
    snapshot_id: str = Field(description="the file digest")
    scope: str = Field(description="UAI or academy scope from the file name")
    category: Category
    extract_date: date | None


class SnapshotCompleted(_FeedEventBase):
    """A full extract is entirely published: downstream may reason about absence from it."""

    type: Literal["snapshot.completed"] = "snapshot.completed"
    snapshot_id: str
    scope: str
    category: Category
    extract_date: date | None
    record_count: int = Field(ge=0, description="records published for this snapshot")
    record_keys_digest: str = Field(description="sha256 of the sorted record keys")


FeedEventModels = (
    SchoolUpserted
    | PupilUpserted
    | GuardianUpserted
    | StaffUpserted
    | RecordDeleted
    | RecordRejected
    | SnapshotStarted
    | SnapshotCompleted
)
FeedEvent = Annotated[FeedEventModels, Field(discriminator="type")]


class FeedMessage(RootModel[FeedEvent]):
    """Wire form of one message on ``entsync.feed.v1``."""


def record_key(kind: str, jointure: str) -> str:
    """The Kafka key of a source record."""
    return f"{kind}:{jointure}"

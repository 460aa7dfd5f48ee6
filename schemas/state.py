"""States kept in faust tables by the reconciler (they travel on changelog topics: contracts).

Two tables:

- ``SourceState`` per feed key (``<kind>:<jointure>``): which entity the key feeds and which
  version was last routed, so replays are no-ops and an entity change (a pupil who got an INE) can
  retract the record from the old entity;
- ``EntityState`` per entity id: everything :func:`sync.reconcile.decide` needs to decide the next
  directory write and the next link messages, without reading the directory.

JSON-serializable (``model_dump_json`` / ``model_validate_json``), frozen, versioned by
``schema_version``. Attribute maps are ``{name: [values...]}`` in JSON, tuples in Python.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.entities import (
    BlockSpec,
    ChildInfo,
    EntityKind,
    GroupSpec,
    LoginStatus,
    ManualAccount,
)
from schemas.feed import Category, Guardian, HoldReason, Pupil, School, Staff

STATE_SCHEMA_VERSION: Literal[1] = 1

AccountState = Literal["active", "disappeared", "predeleted", "deleted"]
RecordKind = Literal["school", "pupil", "guardian", "staff"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceState(_Frozen):
    """Routing memory of one feed key."""

    schema_version: Literal[1] = STATE_SCHEMA_VERSION
    key: str = Field(description="feed key '<kind>:<jointure>'")
    kind: RecordKind
    entity_id: str = Field(description="entity this key last fed")
    version: str | None = Field(description="last routed version; None: the source deleted it")
    scope: str | None = Field(
        default=None, description="scope (UAI or academy) of the file that last fed this key"
    )
    category: Category | None = None
    snapshot_id: str | None = Field(
        default=None, description="the last complete snapshot that contained this key"
    )
    at: datetime | None = Field(default=None, description="when a file last fed this key")
    extract_date: date | None = Field(
        default=None, description="extract date of the newest file that fed this key"
    )
    restored_uais: tuple[str, ...] | None = Field(
        default=None,
        description=(
            "rebuilt from the directory (sync.rebuild), the file that fed it unknown: the UAIs "
            "of the schools its entry names; None once a file feeds it again"
        ),
    )


class SourceRecord(_Frozen):
    """One source key's record as an entity knows it.

    ``version`` None means the source removed it; the last known content is kept (the entity
    stays describable: a person whose records are all gone keeps its entry as 'disappeared').
    """

    version: str | None
    at: datetime = Field(description="cause time of the last change from this key")
    school: School | None = None
    pupil: Pupil | None = None
    guardian: Guardian | None = None
    staff: Staff | None = None

    @property
    def present(self) -> bool:
        return self.version is not None

    @property
    def has_content(self) -> bool:
        return any(r is not None for r in (self.school, self.pupil, self.guardian, self.staff))


class AdmittedPupil(_Frozen):
    """The latest (by cause time, then source key) admitted pupil record ever received."""

    source_key: str
    at: datetime
    pupil: Pupil


class PupilIdentity(_Frozen):
    """Who a pupil record describes, as the INE-conflict rule compares records
    (:mod:`sync.sameperson`): folded name words and birth date."""

    names: str = Field(description="first and last name words, folded and sorted")
    birth_date: date | None = None


class LinkPayload(_Frozen):
    """What a linking entity says about a link (``child`` or ``group``) and when it said it."""

    at: datetime
    child: ChildInfo | None = None
    group: GroupSpec | None = None
    blocks: tuple[BlockSpec, ...] = ()
    login: str | None = Field(default=None, description="'claim' and 'grant' links")
    login_status: LoginStatus | None = Field(default=None, description="'grant' links")


class EntityState(_Frozen):
    """Everything the reconciler keeps about one entity (person, school, group, allocator)."""

    schema_version: Literal[1] = STATE_SCHEMA_VERSION
    entity_id: str
    kind: EntityKind
    records: dict[str, SourceRecord] = Field(
        default_factory=dict, description="by source key (persons and schools)"
    )
    admitted: AdmittedPupil | None = Field(
        default=None, description="pupils: the latest admitted record, drives a held pupil's entry"
    )
    ine_persons: tuple[PupilIdentity, ...] = Field(
        default=(),
        description=(
            "pupils: who the INE belongs to (sync.sameperson), set by the first record, following "
            "that person's own corrections, set by 'admin resolve-ine'; empty before any record. "
            "Several only after an operator said records with other identities are one person"
        ),
    )
    ine_held: dict[str, SourceRecord] = Field(
        default_factory=dict,
        description=(
            "pupils: records held for ine_conflict, by source key (not the INE's person); never "
            "in 'records', so they drive no entry and make no link. A key leaves when its "
            "record becomes the INE's person, is removed (its INE changed in the source) or by "
            "'admin resolve-ine'"
        ),
    )
    ine_conflict_at: datetime | None = Field(
        default=None,
        description=(
            "pupils: an unresolved INE conflict since this cause time: the entry keeps its last "
            "content and login, links are kept (withdrawn when there is no entry), no login is "
            "asked. Cleared by 'admin resolve-ine' or once no record is held"
        ),
    )
    links: dict[str, dict[str, LinkPayload]] = Field(
        default_factory=dict, description="incoming links: relation → member id → payload"
    )
    named_guardians: tuple[str, ...] = Field(
        default=(),
        description=(
            "pupils: guardian ids its driver record has ever named (sorted), so that a guardian "
            "named only before the pupil's entry existed still gets its 'child' link, as 'former'"
        ),
    )
    had_child: bool = Field(
        default=False, description="guardians: has had a child link once (keeps the account)"
    )
    login: str | None = Field(default=None, description="allocated login; never changes once set")
    held_reason: HoldReason | None = Field(
        default=None,
        description=(
            "staff: why the academic login is not theirs (academic_login_shared, "
            "academic_login_taken); no new entry meanwhile, an entry written before is kept as is"
        ),
    )
    login_requested: bool = False
    refused_login: str | None = Field(
        default=None,
        description=(
            "persons: the login the directory refused (another entry holds it), named in the "
            "next request so that the allocator never hands it out again"
        ),
    )
    allocations: dict[str, str] = Field(
        default_factory=dict, description="login allocators: person id → login"
    )
    group: GroupSpec | None = Field(default=None, description="groups: what the group is")
    class_teachers: dict[str, datetime] = Field(
        default_factory=dict,
        description=(
            "class pupils groups: teachers attached by admin command (teacher id -> command "
            "time); cleared when the class disappears (last pupil gone)"
        ),
    )
    gar_managers: dict[str, datetime] = Field(
        default_factory=dict,
        description=(
            "school teachers groups: the school's Resp-Affect-GAR members (teacher id -> command "
            "time); this entity is the authority on that group"
        ),
    )
    manual: ManualAccount | None = Field(
        default=None, description="manual accounts: what the operator created"
    )
    blocks: dict[str, BlockSpec] = Field(
        default_factory=dict,
        description="school profile groups: bulk blocks by id, until the sweeper lifts them",
    )
    detached_schools: dict[str, datetime] = Field(
        default_factory=dict,
        description=(
            "staff: schools of exercise the teacher was detached from by admin command (school "
            "jointure -> command time); never the attachment school"
        ),
    )
    applied: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="attributes last written to LDAP; None: no entry"
    )
    outgoing: dict[str, str] = Field(
        default_factory=dict,
        description="links this entity emitted: '<relation>|<target id>' → payload digest",
    )
    account_state: AccountState | None = Field(
        default=None, description="persons: None until the entity has a record"
    )
    disappeared_at: datetime | None = None
    predeleted_at: datetime | None = Field(
        default=None, description="set by the sweeper; cleared when the person comes back"
    )
    deleted_at: datetime | None = Field(
        default=None,
        description=(
            "tombstone: the entry was deleted by the sweeper; records older than this are "
            "ignored, so a replayed old event cannot bring the account back"
        ),
    )
    classes_retired_at: datetime | None = Field(
        default=None,
        description=(
            "pupils: school-year switchover time; classes of records older than this are last "
            "year's and retired (the pupil keeps its school until a new-year file places it)"
        ),
    )

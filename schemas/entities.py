"""Entity inputs: what the reconciler consumes, keyed by directory entity.

Topic ``entsync.entities.v1`` carries one schema, :data:`EntityInput`. Its Kafka key is
``entity_id``: every input about one directory entry (a person, a school, a group, a login
allocation) lands on one partition, so the entity's state and its LDAP entry have one writer.

Entity ids are opaque and pseudonymous (see ``sync.ids``): they may appear in logs and audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.feed import Guardian, Pupil, School, Staff

ENTITIES_SCHEMA_VERSION: Literal[1] = 1

EntityKind = Literal["pupil", "guardian", "staff", "school", "group", "login"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cause(_Frozen):
    """Why a change happens: the feed message behind it and the rule that fired."""

    topic: str
    partition: int | None = None
    offset: int | None = None
    source_file: str | None = None
    source_file_digest: str | None = None
    record_index: int | None = None
    rule: str = Field(description="e.g. 'feed.pupil.upserted', 'link.guardian-child'")
    at: datetime = Field(description="time of the originating feed message (UTC)")


class GroupSpec(_Frozen):
    """A feed-managed group, described by whoever first links a member to it."""

    school_jointure: str
    profile: Literal["pupils", "guardians", "teachers", "staff"]
    class_code: str | None = Field(default=None, description="None for school-wide groups")
    class_label: str | None = None


class _InputBase(_Frozen):
    schema_version: Literal[1] = ENTITIES_SCHEMA_VERSION
    entity_id: str
    cause: Cause


class RecordSet(_InputBase):
    """The current source record of an entity from one source key (None: the source removed it)."""

    type: Literal["record.set"] = "record.set"
    entity_kind: Literal["pupil", "guardian", "staff", "school"]
    source_key: str
    version: str | None = None
    school: School | None = None
    pupil: Pupil | None = None
    guardian: Guardian | None = None
    staff: Staff | None = None


class ChildInfo(_Frozen):
    """What a guardian needs to know of a child to place itself in groups."""

    school_jointure: str | None = None
    classes: tuple[tuple[str, str, str], ...] = Field(
        default=(), description="(school_jointure, class_code, class_label) of the child"
    )
    admitted: bool = True


class LinkSet(_InputBase):
    """A link from ``member_id`` to this entity appears (present) or disappears.

    relation 'child': a pupil under this guardian's legal responsibility.
    relation 'member': a person in this group (``group`` describes the group).
    """

    type: Literal["link.set"] = "link.set"
    relation: Literal["child", "member"]
    member_id: str
    present: bool
    child: ChildInfo | None = None
    group: GroupSpec | None = None


class LoginRequested(_InputBase):
    """Sent to a login allocator (entity ``login:<base>``) by a person with no login yet."""

    type: Literal["login.requested"] = "login.requested"
    person_id: str
    base: str


class LoginAssigned(_InputBase):
    """The allocator's answer, sent back to the person."""

    type: Literal["login.assigned"] = "login.assigned"
    login: str


EntityInput = Annotated[
    RecordSet | LinkSet | LoginRequested | LoginAssigned,
    Field(discriminator="type"),
]


class EntityMessage(RootModel[EntityInput]):
    """Wire form of one message on ``entsync.entities.v1``."""

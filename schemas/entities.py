"""Entity inputs: what the reconciler consumes, keyed by directory entity.

Topic ``entsync.entities.v1`` carries one schema, :data:`EntityInput`. Its Kafka key is
``entity_id``: every input about one directory entry (a person, a school, a group, a login
allocation) lands on one partition, so the entity's state and its LDAP entry have one writer.

Besides the feed's records and the links entities send each other, the topic carries admin
commands (``admin.*`` types, published by ``entsync admin``), addressed to the entity that is the
authority on the command at apply time.

Entity ids are opaque and pseudonymous (see ``sync.ids``): they may appear in logs and audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.feed import Guardian, Pupil, School, Staff

ENTITIES_SCHEMA_VERSION: Literal[1] = 1

EntityKind = Literal["pupil", "guardian", "staff", "school", "group", "login", "manual"]


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


GroupProfile = Literal["pupils", "guardians", "teachers", "staff", "gar"]


LoginStatus = Literal["granted", "shared", "taken"]
"""An academic login claim's answer: the staff member's own, another staff member claims it too
(held ``academic_login_shared``), or it is another person's allocated login (held
``academic_login_taken``)."""


class GroupSpec(_Frozen):
    """A synchronizer-managed group, described by whoever links a member to it.

    Profile ``gar`` is the school's ``Resp-Affect-GAR`` group (GAR assignment managers): its
    members are set by admin commands only, never by the feeds, and it is never deleted.
    """

    school_jointure: str
    profile: GroupProfile
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


class BlockSpec(_Frozen):
    """A bulk block of a school's accounts of one profile (``entsync admin block``).

    Shown on each account as ``entsyncBlockedFrom`` / ``entsyncBlockedUntil`` /
    ``entsyncBlockedMessage``; the ENT refuses logins in that window and shows the message.
    """

    block_id: str = Field(description="digest of school, profile, window and message")
    school_jointure: str
    profile: GroupProfile
    start: datetime
    end: datetime
    message: str = Field(max_length=2048)


class ChildInfo(_Frozen):
    """What a guardian needs to know of a child to place itself in groups."""

    school_jointure: str | None = None
    classes: tuple[tuple[str, str, str], ...] = Field(
        default=(), description="(school_jointure, class_code, class_label) of the child"
    )
    admitted: bool = True
    former: bool = Field(
        default=False,
        description=(
            "a guardian the pupil's records named before, not now: it keeps the account it got "
            "(a guardian once linked keeps it), but names no child and joins no group for it"
        ),
    )


class LinkSet(_InputBase):
    """A link from ``member_id`` to this entity appears (present) or disappears.

    relation 'child': a pupil under this guardian's legal responsibility (the pupil has an entry).
    relation 'parent': the guardian ``member_id`` of this pupil has an entry (the answer to
    'child': the pupil names only such guardians in ``ENTEleveParents``).
    relation 'member': a person in this group (``group`` describes the group); a person sends it
    only while it has an entry.
    relation 'block': the school's profile group ``member_id`` blocks this person (``blocks``,
    empty when no block is left); any person kind.
    relation 'class': this teacher is attached to a class; ``member_id`` is the class (its pupils
    group entity, the authority on the attachment) and ``group`` describes that pupils group.
    relation 'claim': the staff member ``member_id`` claims its academic ``login`` at this login
    allocator (the one of the login's base, see :mod:`sync.claims`).
    relation 'grant': the login allocator ``member_id`` answers this staff member's claim of
    ``login`` with ``login_status``.
    """

    type: Literal["link.set"] = "link.set"
    relation: Literal["child", "parent", "member", "class", "block", "claim", "grant"]
    member_id: str
    present: bool
    child: ChildInfo | None = None
    group: GroupSpec | None = None
    blocks: tuple[BlockSpec, ...] = ()
    login: str | None = Field(default=None, description="'claim' and 'grant': the academic login")
    login_status: LoginStatus | None = Field(default=None, description="'grant' only")


LINK_BATCH_MAX = 200
"""At most this many links in one ``LinkBatch`` (keeps a message far below Kafka's 1 MB)."""


class LinkBatch(_InputBase):
    """Several ``LinkSet`` inputs to this entity, in their order, as one message.

    The shell packs the links an entity receives from one batch of decisions (a group gains
    hundreds of members at an initial load) so that they travel, and are decided, at once: the
    target applies them one after the other and settles once (``sync.reconcile.decide``), which
    ends in the same state and entry as deciding them one by one. ``cause`` is the last link's.
    """

    type: Literal["link.batch"] = "link.batch"
    links: tuple[LinkSet, ...] = Field(min_length=1, max_length=LINK_BATCH_MAX)


class LoginRequested(_InputBase):
    """Sent to a login allocator (entity ``login:<base>``) by a person with no login yet."""

    type: Literal["login.requested"] = "login.requested"
    person_id: str
    base: str
    refused: str | None = Field(
        default=None,
        description=(
            "the login the allocator gave this person, which the directory refused: another "
            "entry holds it (a manual account, another tool); never handed out again"
        ),
    )


class LoginAssigned(_InputBase):
    """The allocator's answer, sent back to the person."""

    type: Literal["login.assigned"] = "login.assigned"
    login: str


class LoginRefused(_InputBase):
    """The shell's news to a person: the directory refused to add its entry because another
    entry already holds its login. A person that has no entry asks its allocator for another."""

    type: Literal["login.refused"] = "login.refused"
    login: str


class TeacherClassRequested(_InputBase):
    """Admin command (``entsync admin attach-teacher``): attach a teacher to a class, or detach.

    Addressed to the class, i.e. to its pupils group entity (``entity_id`` = the group id of
    ``(school_jointure, 'pupils', class_code)``), which decides at apply time: a class exists only
    while a pupil is in it, so attaching to a class without pupils is refused. The cause's rule
    names the command (``admin.attach-teacher`` / ``admin.detach-teacher``).
    """

    type: Literal["admin.teacher-class"] = "admin.teacher-class"
    teacher_id: str = Field(description="entity id of the teacher (staff)")
    school_jointure: str
    class_code: str
    present: bool = Field(description="True: attach; False: detach")


class GarManagerRequested(_InputBase):
    """Admin command (``entsync admin gar-manager``): put a teacher in or out of the school's
    ``Resp-Affect-GAR`` group.

    Addressed to the school's teachers group entity (``entity_id`` = the group id of
    ``(school_jointure, 'teachers')``): it knows at apply time which teachers the school has, and
    it holds the list of GAR managers, so it can refuse a teacher of another school and refuse to
    remove the last manager (the GAR group is never deleted). The cause's rule names the command
    (``admin.gar-manager-add`` / ``admin.gar-manager-remove``).
    """

    type: Literal["admin.gar-manager"] = "admin.gar-manager"
    teacher_id: str = Field(description="entity id of the teacher (staff)")
    school_jointure: str
    present: bool = Field(description="True: add to the group; False: remove")


class BlockRequested(_InputBase):
    """Admin command (``entsync admin block``): block, or unblock, a school's accounts of one
    profile over a time window. Addressed to the school's group of that profile (``entity_id`` =
    the group id of ``(school_jointure, profile)``), which knows its members at apply time and
    passes the block to each of them, newcomers included, until the sweeper lifts it at its end.
    """

    type: Literal["admin.block"] = "admin.block"
    block: BlockSpec
    present: bool = Field(description="True: block; False: cancel the block")


class ManualAccount(_Frozen):
    """A person created by hand (``entsync admin create-manual``): a foster family (a parent
    account, profile National_2) or a guest. Never fed by ONDE or the staff feed."""

    profile: Literal["guardian", "guest"]
    first_name: str = Field(min_length=1, max_length=128)
    last_name: str = Field(min_length=1, max_length=128)
    school_jointure: str
    email: str | None = None


class ManualAccountRequested(_InputBase):
    """Admin command: create (or update) a manual account, or delete it.

    Addressed to the account (``entity_id`` = a ``manual`` entity id drawn by the CLI). Deleting
    removes the entry at once when it was never activated, else pre-deletes it (the sweeper
    deletes it after the delay; a guest at the next sweep). ``activated`` is what the directory
    showed (``entsyncActivated``) when the command was issued.
    """

    type: Literal["admin.manual-account"] = "admin.manual-account"
    account: ManualAccount | None = Field(default=None, description="None when deleting")
    present: bool
    activated: bool = False


class TeacherSchoolRequested(_InputBase):
    """Admin command (``entsync admin detach-teacher``): detach a teacher from a school they
    exercise in (they left it), or undo that.

    Addressed to the teacher (``entity_id`` = the staff entity id), who knows its attachment
    school at apply time: detaching a teacher from their attachment school (ENTPersonStructRattach:
    replacement teachers and trainees, "remplaçant, PES", included) is refused. The cause's rule
    names the command (``admin.detach-from-school`` / ``admin.reattach-to-school``).
    """

    type: Literal["admin.teacher-school"] = "admin.teacher-school"
    teacher_id: str = Field(description="entity id of the teacher (= entity_id)")
    school_jointure: str
    present: bool = Field(description="False: detach; True: undo a detachment")


class IneResolutionRequested(_InputBase):
    """Admin command (``entsync admin resolve-ine``): settle an INE conflict (records carrying
    one INE that are not the same person, see ``sync.sameperson``).

    Addressed to the pupil entity of that INE, which holds the records. ``holder`` names the
    source key (``pupil:<jointure>``) of the record the INE belongs to: records that are not the
    same person as it stay held until their INE changes in the source. ``same_person``: the
    records are one person after all; every held record is taken. Exactly one of the two.
    """

    type: Literal["admin.ine-resolution"] = "admin.ine-resolution"
    holder: str | None = Field(default=None, description="source key 'pupil:<jointure>'")
    same_person: bool = False


AdminCommand = (
    TeacherClassRequested
    | GarManagerRequested
    | TeacherSchoolRequested
    | BlockRequested
    | ManualAccountRequested
    | IneResolutionRequested
)

LIFECYCLE_ENTITY = "lifecycle"
"""The ``entity_id`` (Kafka key) of partition-wide lifecycle requests: they address no entity."""


class SweepRequested(_InputBase):
    """The sweeper, one copy per partition of the topic (``entsync lifecycle sweep`` or the
    worker's nightly schedule): every entity of ``partition`` moves on if a transition is due at
    ``now`` (disappeared → predeleted → deleted)."""

    type: Literal["lifecycle.sweep"] = "lifecycle.sweep"
    now: datetime
    partition: int = Field(ge=0)


class SwitchoverRequested(_InputBase):
    """``entsync year switchover``, one copy per partition: last year's classes are retired."""

    type: Literal["lifecycle.switchover"] = "lifecycle.switchover"
    school_year: str
    at: datetime
    partition: int = Field(ge=0)


PartitionRequest = SweepRequested | SwitchoverRequested

EntityInput = Annotated[
    RecordSet
    | LinkSet
    | LinkBatch
    | LoginRequested
    | LoginAssigned
    | LoginRefused
    | TeacherClassRequested
    | GarManagerRequested
    | TeacherSchoolRequested
    | BlockRequested
    | ManualAccountRequested
    | IneResolutionRequested
    | SweepRequested
    | SwitchoverRequested,
    Field(discriminator="type"),
]


class EntityMessage(RootModel[EntityInput]):
    """Wire form of one message on ``entsync.entities.v1``."""

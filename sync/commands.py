"""Admin commands: teacher–class attachment and the school's ``Resp-Affect-GAR`` group.

Pure. The CLI (``entsync admin``) reads the directory to refuse early with a clear message, then
publishes one command on ``entsync.entities.v1``, keyed by the entity that is the **authority** on
it at apply time; :func:`sync.reconcile.decide` hands the command to the functions below.

Teacher–class attachment (``admin.attach-teacher`` / ``admin.detach-teacher``)
    Addressed to the class, i.e. its pupils group entity. A class exists only while a pupil is in
    it (the group's entry is deleted at 0 members), and teachers can only be attached to a class
    that exists: the class accepts an attachment while it has pupils and refuses it otherwise
    (``class-missing``). Accepted attachments are kept in the class's state
    (``class_teachers``); while the class has pupils it sends each attached teacher a ``class``
    link (:mod:`sync.links`), from which the teacher's entry gets ``ENTAuxEnsClasses`` =
    ``<school DN>$<class code>`` and the teacher joins the class's teachers group. When the last
    pupil leaves, the attachments are dropped and the links withdrawn: the teacher loses the
    value, the class's teachers group goes. A class that comes back later has no teacher until
    one is attached again.

    Teacher–class links do not persist from one school year to the next: each attachment keeps
    the time of its command, so the switchover can retire those older than the switchover (or
    detach them) through the class entity; a class emptied by the switchover drops them anyway.

School GAR managers (``admin.gar-manager-add`` / ``admin.gar-manager-remove``)
    Addressed to the school's teachers group entity: it knows at apply time which teachers the
    school has (its members) and holds the list of GAR managers (``gar_managers``), so adding a
    teacher who is not a teacher of the school is refused (``teacher-not-in-school``) and so is
    removing the last manager (``last-gar-manager``): the ``Resp-Affect-GAR`` group must never be
    deleted, and a groupOfNames cannot be empty, so its last manager can only leave once another
    one is in. The teachers group sends the GAR group entity a ``member`` link per change; the GAR
    group is created at its first member. A manager who leaves the school's teachers (moved by
    the staff feed, pre-deleted: out of every group) leaves the GAR group too, by the same link
    (:func:`managers_gone`): the group never names an entry that does not exist, and once its
    last manager is gone it is removed, until an operator names a new one.

Teacher detached from a school (``admin.detach-from-school`` / ``admin.reattach-to-school``)
    Addressed to the teacher (staff entity): a director detaches a teacher who left a school of
    exercise; the teacher leaves that school's teachers group and ``ENTAuxEnsEtablissements``,
    and loses its classes there. Refused (``attachment-school``) for the teacher's attachment
    school, and (``teacher-not-in-school``) for a school the feed does not give the teacher. The
    detachment lasts until undone (``--undo``), whatever the next staff files say.

Bulk blocks (``admin.block`` / ``admin.unblock``)
    Addressed to the school's group of the profile (pupils, guardians...): the group keeps its
    blocks (``blocks``) and sends them to each member with a ``block`` link, newcomers included;
    each account shows the current or next block (``entsyncBlocked*``). The sweeper lifts a block
    once its end has passed (see :mod:`sync.lifecycle`).

INE conflicts (``admin.resolve-ine``)
    Addressed to the pupil entity of the INE (it holds the records in conflict): the operator
    names the record the INE belongs to, or says the records are one person; see
    :mod:`sync.ineconflict` for the rules.

Every command yields one :class:`~schemas.admin.AdminCommandDecided` (accepted, unchanged or
refused). A command applied twice changes nothing the second time (``unchanged``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from schemas.admin import AdminCommandDecided, AdminCommandName, AdminOutcome, RefusalReason
from schemas.entities import (
    AdminCommand,
    BlockRequested,
    BlockSpec,
    Cause,
    GarManagerRequested,
    GroupProfile,
    GroupSpec,
    IneResolutionRequested,
    LinkSet,
    ManualAccount,
    ManualAccountRequested,
    TeacherClassRequested,
    TeacherSchoolRequested,
)
from schemas.feed import Staff
from schemas.state import EntityState
from schemas.topics import ENTITIES
from sync import dit, ids
from sync.links import is_class_group

RULE_ATTACH = "admin.attach-teacher"
RULE_DETACH = "admin.detach-teacher"
RULE_GAR_ADD = "admin.gar-manager-add"
RULE_GAR_REMOVE = "admin.gar-manager-remove"
RULE_SCHOOL_DETACH = "admin.detach-from-school"
RULE_SCHOOL_REATTACH = "admin.reattach-to-school"
RULE_CREATE_MANUAL = "admin.create-manual"
RULE_DELETE_MANUAL = "admin.delete-manual"
RULE_BLOCK = "admin.block"
RULE_UNBLOCK = "admin.unblock"
RULE_RESOLVE_INE = "admin.resolve-ine"

CLASS_REF_SEPARATOR = "/"


class CommandError(ValueError):
    """An operator's argument that cannot name anything (the message says what to pass)."""


# ----------------------------------------------------------------------------- building commands


def parse_class_ref(text: str) -> tuple[str, str]:
    """``<school jointure or UAI>/<class code>`` → (school, class code).

    Split at the first ``/``: jointures and UAIs never contain one, class codes may
    (``CE1/CE2``).
    """
    school, sep, code = text.strip().partition(CLASS_REF_SEPARATOR)
    if not sep or not school.strip() or not code.strip():
        raise CommandError(
            "a class is named '<school jointure or UAI>/<class code>', e.g. 0750001A/CP-A"
        )
    return school.strip(), code.strip()


def class_spec(school_jointure: str, class_code: str) -> GroupSpec:
    """The class's pupils group: the entity that is the class."""
    return GroupSpec(school_jointure=school_jointure, profile="pupils", class_code=class_code)


def school_teachers_spec(school_jointure: str) -> GroupSpec:
    return GroupSpec(school_jointure=school_jointure, profile="teachers")


def command_cause(rule: str, at: datetime) -> Cause:
    """The cause of a command published by the CLI (no feed message behind it)."""
    return Cause(topic=ENTITIES.name, rule=rule, at=at)


def teacher_class_request(
    namespace: str,
    *,
    teacher_id: str,
    school_jointure: str,
    class_code: str,
    attach: bool,
    at: datetime,
) -> TeacherClassRequested:
    return TeacherClassRequested(
        entity_id=ids.group_id(namespace, class_spec(school_jointure, class_code)),
        cause=command_cause(RULE_ATTACH if attach else RULE_DETACH, at),
        teacher_id=teacher_id,
        school_jointure=school_jointure,
        class_code=class_code,
        present=attach,
    )


def gar_manager_request(
    namespace: str, *, teacher_id: str, school_jointure: str, add: bool, at: datetime
) -> GarManagerRequested:
    return GarManagerRequested(
        entity_id=ids.group_id(namespace, school_teachers_spec(school_jointure)),
        cause=command_cause(RULE_GAR_ADD if add else RULE_GAR_REMOVE, at),
        teacher_id=teacher_id,
        school_jointure=school_jointure,
        present=add,
    )


# ----------------------------------------------------------------------------- deciding commands


@dataclass(frozen=True)
class Applied:
    """A command's effect on its authority entity: next state, decision, messages to send."""

    state: EntityState
    decided: AdminCommandDecided
    emits: tuple[LinkSet, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.decided.outcome == "accepted"


def decided_event(
    inp: AdminCommand,
    command: AdminCommandName,
    outcome: AdminOutcome,
    reason: RefusalReason | None = None,
) -> AdminCommandDecided:
    cause = inp.cause
    class_code = inp.class_code if isinstance(inp, TeacherClassRequested) else None
    teacher_id = getattr(inp, "teacher_id", None)
    block_id = inp.block.block_id if isinstance(inp, BlockRequested) else None
    holder = inp.holder if isinstance(inp, IneResolutionRequested) else None
    if isinstance(inp, BlockRequested):
        school = inp.block.school_jointure
    elif isinstance(inp, ManualAccountRequested):
        school = inp.account.school_jointure if inp.account else ""
    elif isinstance(inp, IneResolutionRequested):
        school = ""  # an INE is not a school's: the pupil entity decides
    else:
        school = inp.school_jointure
    parts = [
        cause.topic,
        str(cause.partition),
        str(cause.offset),
        cause.at.isoformat(),
        cause.rule,
        inp.entity_id,
        teacher_id or block_id or holder or "",
        command,
        outcome,
    ]
    return AdminCommandDecided(
        event_id=hashlib.sha256("\x1f".join(parts).encode()).hexdigest(),
        command=command,
        outcome=outcome,
        reason=reason,
        entity_id=inp.entity_id,
        teacher_id=teacher_id,
        block_id=block_id,
        holder=holder,
        school_jointure=school,
        class_code=class_code,
        cause=cause,
    )


def class_exists(state: EntityState) -> bool:
    """A class exists while its pupils group has a member."""
    return is_class_group(state.group) and bool(state.links.get("member"))


def apply_teacher_class(state: EntityState, inp: TeacherClassRequested) -> Applied:
    """Attach or detach a teacher: the class is the authority (it must have pupils to attach)."""
    teachers = state.class_teachers
    if inp.present:
        if not class_exists(state):
            return Applied(state, decided_event(inp, "attach-teacher", "refused", "class-missing"))
        if inp.teacher_id in teachers:
            return Applied(state, decided_event(inp, "attach-teacher", "unchanged"))
        updated = {**teachers, inp.teacher_id: inp.cause.at}
        return Applied(
            state.model_copy(update={"class_teachers": dict(sorted(updated.items()))}),
            decided_event(inp, "attach-teacher", "accepted"),
        )
    if inp.teacher_id not in teachers:
        return Applied(state, decided_event(inp, "detach-teacher", "unchanged"))
    remaining = {t: at for t, at in teachers.items() if t != inp.teacher_id}
    return Applied(
        state.model_copy(update={"class_teachers": remaining}),
        decided_event(inp, "detach-teacher", "accepted"),
    )


def apply_gar_manager(state: EntityState, inp: GarManagerRequested, namespace: str) -> Applied:
    """Add or remove a GAR manager: the school's teachers group is the authority."""
    managers = state.gar_managers
    command: AdminCommandName = "gar-manager-add" if inp.present else "gar-manager-remove"
    if inp.present:
        if inp.teacher_id in managers:
            return Applied(state, decided_event(inp, command, "unchanged"))
        if inp.teacher_id not in state.links.get("member", {}):
            return Applied(state, decided_event(inp, command, "refused", "teacher-not-in-school"))
        updated = dict(sorted({**managers, inp.teacher_id: inp.cause.at}.items()))
    else:
        if inp.teacher_id not in managers:
            return Applied(state, decided_event(inp, command, "unchanged"))
        if len(managers) == 1:
            return Applied(state, decided_event(inp, command, "refused", "last-gar-manager"))
        updated = {t: at for t, at in managers.items() if t != inp.teacher_id}
    spec = dit.gar_group_spec(inp.school_jointure)
    link = LinkSet(
        entity_id=ids.group_id(namespace, spec),
        cause=inp.cause,
        relation="member",
        member_id=inp.teacher_id,
        present=inp.present,
        group=spec if inp.present else None,
    )
    return Applied(
        state.model_copy(update={"gar_managers": updated}),
        decided_event(inp, command, "accepted"),
        (link,),
    )


def managers_gone(
    state: EntityState, namespace: str, cause: Cause
) -> tuple[EntityState, tuple[LinkSet, ...]]:
    """GAR managers no longer among the school's teachers (``state`` is the school's teachers
    group): dropped, each with a ``member`` removal to the GAR group."""
    members = state.links.get("member", {})
    gone = [t for t in state.gar_managers if t not in members]
    if not gone or state.group is None:
        return state, ()
    gar = ids.group_id(namespace, dit.gar_group_spec(state.group.school_jointure))
    links = tuple(
        LinkSet(entity_id=gar, cause=cause, relation="member", member_id=t, present=False)
        for t in gone
    )
    kept = {t: at for t, at in state.gar_managers.items() if t in members}
    return state.model_copy(update={"gar_managers": kept}), links


def teacher_school_request(
    *, teacher_id: str, school_jointure: str, detach: bool, at: datetime
) -> TeacherSchoolRequested:
    return TeacherSchoolRequested(
        entity_id=teacher_id,
        cause=command_cause(RULE_SCHOOL_DETACH if detach else RULE_SCHOOL_REATTACH, at),
        teacher_id=teacher_id,
        school_jointure=school_jointure,
        present=not detach,
    )


def apply_teacher_school(
    state: EntityState, record: Staff | None, inp: TeacherSchoolRequested
) -> Applied:
    """Detach a teacher from a school of exercise, or undo: the teacher is the authority."""
    detached = state.detached_schools
    school = inp.school_jointure
    if inp.present:
        if school not in detached:
            return Applied(state, decided_event(inp, "reattach-to-school", "unchanged"))
        remaining = {s: at for s, at in detached.items() if s != school}
        return Applied(
            state.model_copy(update={"detached_schools": remaining}),
            decided_event(inp, "reattach-to-school", "accepted"),
        )
    if record is not None and school == record.attachment_school_jointure:
        return Applied(
            state, decided_event(inp, "detach-from-school", "refused", "attachment-school")
        )
    if school in detached:
        return Applied(state, decided_event(inp, "detach-from-school", "unchanged"))
    if record is None or school not in record.school_jointures:
        return Applied(
            state, decided_event(inp, "detach-from-school", "refused", "teacher-not-in-school")
        )
    updated = dict(sorted({**detached, school: inp.cause.at}.items()))
    return Applied(
        state.model_copy(update={"detached_schools": updated}),
        decided_event(inp, "detach-from-school", "accepted"),
    )


def block_spec(
    school_jointure: str, profile: GroupProfile, start: datetime, end: datetime, message: str
) -> BlockSpec:
    """A block, its id the digest of what it is."""
    digest = hashlib.sha256(
        "\x1f".join(
            (school_jointure, profile, start.isoformat(), end.isoformat(), message)
        ).encode()
    ).hexdigest()[:16]
    return BlockSpec(
        block_id=f"bl-{digest}",
        school_jointure=school_jointure,
        profile=profile,
        start=start,
        end=end,
        message=message,
    )


def block_request(
    namespace: str,
    *,
    school_jointure: str,
    profile: GroupProfile,
    start: datetime,
    end: datetime,
    message: str,
    cancel: bool,
    at: datetime,
) -> BlockRequested:
    """A block (or its cancellation) for the school's accounts of ``profile``."""
    if end <= start:
        raise CommandError("the block must end after it starts")
    spec = block_spec(school_jointure, profile, start, end, message)
    group = GroupSpec(school_jointure=school_jointure, profile=profile)
    return BlockRequested(
        entity_id=ids.group_id(namespace, group),
        cause=command_cause(RULE_UNBLOCK if cancel else RULE_BLOCK, at),
        block=spec,
        present=not cancel,
    )


def _same_block(a: BlockSpec, b: BlockSpec) -> bool:
    return (a.profile, a.start, a.end, a.message) == (b.profile, b.start, b.end, b.message)


def apply_block(state: EntityState, inp: BlockRequested) -> Applied:
    """Add or cancel a block: the school's profile group is the authority."""
    blocks = state.blocks
    block = inp.block
    command: AdminCommandName = "block" if inp.present else "unblock"
    # The same window and message, whatever the time zone it was written in (a block rebuilt
    # from the directory was read in UTC: sync.rebuild).
    same = {k for k, b in blocks.items() if k == block.block_id or _same_block(b, block)}
    if inp.present == bool(same):
        return Applied(state, decided_event(inp, command, "unchanged"))
    if inp.present:
        updated = dict(sorted({**blocks, block.block_id: block}.items()))
    else:
        updated = {k: b for k, b in blocks.items() if k not in same}
    return Applied(
        state.model_copy(update={"blocks": updated}), decided_event(inp, command, "accepted")
    )


def manual_account_request(
    namespace: str, *, token: str, account: ManualAccount, at: datetime
) -> ManualAccountRequested:
    """Create a manual account; ``token`` (random, drawn once) makes its entity id."""
    return ManualAccountRequested(
        entity_id=ids.entity_id(namespace, "manual", token),
        cause=command_cause(RULE_CREATE_MANUAL, at),
        account=account,
        present=True,
    )


def manual_deletion(entity_id: str, *, activated: bool, at: datetime) -> ManualAccountRequested:
    return ManualAccountRequested(
        entity_id=entity_id,
        cause=command_cause(RULE_DELETE_MANUAL, at),
        present=False,
        activated=activated,
    )


def apply_manual(state: EntityState, inp: ManualAccountRequested) -> Applied:
    """Create, update or delete a manual account: the account is its own authority.

    Deleting: removed at once if never activated, else pre-deleted (the sweeper finishes).
    """
    if inp.present:
        if inp.account is None:
            raise CommandError("creating a manual account needs its description")
        if state.manual == inp.account and state.deleted_at is None and not state.predeleted_at:
            return Applied(state, decided_event(inp, "create-manual", "unchanged"))
        revived = state.model_copy(
            update={"manual": inp.account, "predeleted_at": None, "deleted_at": None}
        )
        return Applied(revived, decided_event(inp, "create-manual", "accepted"))
    if state.manual is None or state.deleted_at is not None:
        return Applied(state, decided_event(inp, "delete-manual", "unchanged"))
    if inp.activated:
        if state.predeleted_at is not None:
            return Applied(state, decided_event(inp, "delete-manual", "unchanged"))
        update = {"predeleted_at": inp.cause.at}
    else:
        update = {"deleted_at": inp.cause.at}
    return Applied(state.model_copy(update=update), decided_event(inp, "delete-manual", "accepted"))

"""The reconciliation core: ``decide(state, input, context) -> Decision``.

Functional core of the entity agent (sans-I/O, like h11): given an entity's state and one input
from ``entsync.entities.v1``, it returns the entity's next state, the directory ops to carry out
(at most one: one entity has one entry), the entity inputs to publish, and one audit event per op.
No clock, no randomness, no I/O: the same state and input always give the same decision, and an
input applied twice changes nothing the second time.

Per kind:

- persons (pupil, guardian, staff) need a login before their entry is written: a person with no
  login sends one ``LoginRequested`` to the allocator of its login base and waits for
  ``LoginAssigned``; a login never changes afterwards. Staff with an academic login use it instead
  (and follow it if the academy changes it);
- pupils are written once admitted (see :mod:`sync.effective` for held pupils);
- guardians are written once they have a record, a login and have had at least one child link
  (a guardian of held pupils only, or of pupils without an entry yet, gets no account); losing
  every child drops ``ENTAuxPersRelEleve`` but keeps the entry;
- no dangling reference: a person sends links (which put its DN in other entries) only while it
  has an entry (:mod:`sync.links`), and a pupil names in ``ENTEleveParents`` only the guardians
  that answered its ``child`` link with ``parent`` (they have an entry);
- staff are written with a record and a login; schools with a record (not while held for a
  value SDET requires);
- groups exist while they have at least one member (a class exists only while a pupil is in it),
  except the school's ``Resp-Affect-GAR`` group, which is never deleted;
- a person whose records are all removed is kept, ``entsyncAccountState=disappeared``, links kept;
  the sweeper (:mod:`sync.lifecycle`) then pre-deletes it (out of every group and perimeter, entry
  and login kept) and deletes it (a tombstone stays in the state); a record coming back restores
  it, and a record older than the deletion is ignored;
- login allocators answer every request, a repeated one with the same login, and a person with no
  login asks again at each input until it has one: a lost request or answer cannot leave a person
  without a login;
- a person whose add the directory refused because another entry holds its login (made by hand
  or by another tool) is told so (``LoginRefused``, by the shell); while it has no entry it asks
  again naming that login, which its allocator then holds for the directory and never hands out;
- admin commands (teacher–class attachment, GAR managers) are decided by the entity that is their
  authority (:mod:`sync.commands`); each yields one ``AdminCommandDecided`` in
  ``Decision.outcomes``;
- an entry remembered in the form written before the published SDET schema is first brought to
  today's form (:mod:`sync.legacy`), so an upgrade neither rewrites unchanged entries nor removes
  names the schema no longer has.
"""

from __future__ import annotations

from dataclasses import replace

from schemas.entities import (
    BlockRequested,
    Cause,
    EntityInput,
    GarManagerRequested,
    GroupSpec,
    IneResolutionRequested,
    LinkBatch,
    LinkSet,
    LoginAssigned,
    LoginRefused,
    LoginRequested,
    ManualAccountRequested,
    RecordSet,
    SweepRequested,
    SwitchoverRequested,
    TeacherClassRequested,
    TeacherSchoolRequested,
)
from schemas.state import EntityState, LinkPayload, SourceRecord
from sync import claims, commands, equality, ids, ineconflict, logins
from sync.desired import Context, ContractError
from sync.effective import latest_present, utc
from sync.links import (
    is_class_group,
)
from sync.settle import Decision, chained, settle

__all__ = ["Context", "ContractError", "Decision", "decide", "new_state", "settle"]

RULE_LOGIN_ASSIGN = "login.assign"
RULE_GAR_LEFT = "link.gar-manager-left"


def new_state(entity_id: str) -> EntityState:
    return EntityState(entity_id=entity_id, kind=ids.kind_of(entity_id))


def decide(state: EntityState | None, inp: EntityInput, ctx: Context) -> Decision:
    """Apply one entity input to the entity's state and decide what follows."""
    if isinstance(inp, SweepRequested | SwitchoverRequested):
        raise ContractError("partition-wide requests are not entity inputs (see sync.lifecycle)")
    current = state if state is not None else new_state(inp.entity_id)
    if current.entity_id != inp.entity_id:
        raise ContractError("input addressed to another entity")
    decision = _decide(current, inp, ctx)
    held = ineconflict.notice(state, decision.state, inp.cause)
    return decision if held is None else replace(decision, notices=(held,))


def _decide(current: EntityState, inp: EntityInput, ctx: Context) -> Decision:
    match inp:
        case LoginRequested():
            return _allocate(current, inp, ctx)
        case TeacherClassRequested():
            return _teacher_class(current, inp, ctx)
        case GarManagerRequested():
            return _gar_manager(current, inp, ctx)
        case TeacherSchoolRequested():
            return _teacher_school(current, inp, ctx)
        case BlockRequested():
            return _block(current, inp, ctx)
        case ManualAccountRequested():
            return _manual(current, inp, ctx)
        case IneResolutionRequested():
            return _resolve_ine(current, inp, ctx)
        case RecordSet():
            updated = _with_record(current, inp)
        case LinkSet():
            return _links_decided(current, _with_link(current, inp, ctx), inp.cause, ctx)
        case LinkBatch():
            return _link_batch(current, inp, ctx)
        case LoginAssigned():
            updated = _with_login(current, inp)
        case LoginRefused():
            updated = _with_login_refused(current, inp)
            if updated is current:
                # Not a login it can give back (an academic one, an entry written): nothing to
                # decide again (settling would try the refused add again, and again).
                return Decision(current)
    return settle(updated, inp.cause, ctx)


# ----------------------------------------------------------------------------- state updates


def _with_record(state: EntityState, inp: RecordSet) -> EntityState:
    if inp.entity_kind != state.kind:
        raise ContractError("record kind does not match the entity kind")
    old = state.records.get(inp.source_key)
    if old is not None and utc(inp.cause.at) < utc(old.at):
        return state  # stale (a replay of an older message from this source key)
    if state.deleted_at is not None and utc(inp.cause.at) <= utc(state.deleted_at):
        return state  # tombstone: an event from before the deletion cannot resurrect the account
    held = state.ine_held.get(inp.source_key)
    if held is not None and utc(inp.cause.at) < utc(held.at):
        return state  # stale, for the record held at this key
    if inp.version is None:
        state = ineconflict.without_held(state, inp.source_key)
        if old is not None and not old.present:
            return state
        removed = (old or SourceRecord(version=None, at=inp.cause.at)).model_copy(
            update={"version": None, "at": inp.cause.at}
        )
        return state.model_copy(update={"records": {**state.records, inp.source_key: removed}})
    last = held or old
    if last is not None and last.version == inp.version:
        return state
    carried = {
        "school": inp.school,
        "pupil": inp.pupil,
        "guardian": inp.guardian,
        "staff": inp.staff,
    }
    if carried.get(state.kind) is None or sum(r is not None for r in carried.values()) != 1:
        raise ContractError("a record set must carry exactly the entity kind's record")
    new = SourceRecord(
        version=inp.version,
        at=inp.cause.at,
        school=inp.school,
        pupil=inp.pupil,
        guardian=inp.guardian,
        staff=inp.staff,
    )
    if inp.pupil is not None:
        return ineconflict.with_pupil_record(state, inp.source_key, new)
    return state.model_copy(update={"records": {**state.records, inp.source_key: new}})


_LINK_TARGET_KINDS: dict[str, frozenset[str]] = {
    "child": frozenset({"guardian"}),
    "parent": frozenset({"pupil"}),
    "member": frozenset({"group"}),
    "class": frozenset({"staff"}),
    "block": frozenset(ids.PERSON_KINDS),
    "claim": frozenset({"login"}),
    "grant": frozenset({"staff"}),
}


def _with_link(state: EntityState, inp: LinkSet, ctx: Context) -> EntityState:
    if state.kind not in _LINK_TARGET_KINDS[inp.relation]:
        raise ContractError("link relation does not fit the entity kind")
    if (
        inp.relation == "member"
        and inp.present
        and (inp.group is None or ids.group_id(ctx.namespace, inp.group) != state.entity_id)
    ):
        raise ContractError("member link does not describe this group")
    if (
        inp.relation == "class"
        and inp.present
        and (
            not is_class_group(inp.group)
            or inp.group is None
            or ids.group_id(ctx.namespace, inp.group) != inp.member_id
        )
    ):
        raise ContractError("class link does not describe the sending class")
    if inp.relation == "claim" and inp.present and not _claims_here(inp, state, ctx):
        raise ContractError("login claim sent to the wrong allocator")
    if inp.relation == "grant" and not _kind_is(inp.member_id, "login"):
        raise ContractError("login grant from another entity than an allocator")
    current = state.links.get(inp.relation, {})
    if inp.present:
        payload = LinkPayload(
            at=inp.cause.at,
            child=inp.child,
            group=inp.group,
            blocks=inp.blocks,
            login=inp.login,
            login_status=inp.login_status,
        )
        old = current.get(inp.member_id)
        if old is not None and old.model_copy(update={"at": payload.at}) == payload:
            return state
        members = {**current, inp.member_id: payload}
    else:
        if inp.member_id not in current:
            return state
        members = {m: p for m, p in current.items() if m != inp.member_id}
    links = {r: m for r, m in state.links.items() if r != inp.relation}
    if members:
        links[inp.relation] = members
    update: dict[str, object] = {"links": links}
    if inp.relation == "child" and inp.present:
        update["had_child"] = True
    if inp.relation == "member" and members:
        update["group"] = _group_spec(members)
    elif inp.relation == "member" and state.group is not None:
        # Nobody describes an empty group any more: only what names it stays (its DN), so
        # that its state does not depend on which link came last (replays end the same).
        update["group"] = state.group.model_copy(update={"class_label": None})
    if inp.relation == "member" and not members and state.class_teachers:
        # The class is gone (last pupil left): its teacher attachments go with it.
        update["class_teachers"] = {}
    return state.model_copy(update=update)


def _link_batch(state: EntityState, inp: LinkBatch, ctx: Context) -> Decision:
    """The links applied one after the other, then one settle: the state and entry that deciding
    them one by one ends in. The change is caused by the last link that changed the state (its
    cause on the emits and the audit event); the audit event names the earlier ones in
    ``merged_causes``, as merging their directory ops would (:mod:`sync.coalesce`)."""
    causes: list[Cause] = []
    updated = state
    for link in inp.links:
        if link.entity_id != state.entity_id:
            raise ContractError("input addressed to another entity")
        after = _with_link(updated, link, ctx)
        if after is not updated:
            causes.append(link.cause)
        updated = after
    decision = _links_decided(state, updated, causes[-1] if causes else inp.cause, ctx)
    if len(causes) < 2 or not decision.audits:
        return decision
    audits = tuple(
        a.model_copy(update={"merged_causes": (*causes[:-1], *a.merged_causes)})
        for a in decision.audits
    )
    return replace(decision, audits=audits)


def _links_decided(before: EntityState, after: EntityState, cause: Cause, ctx: Context) -> Decision:
    """Settled after its links changed; a school's teachers group also lets go of the GAR
    managers no longer among its members (:func:`sync.commands.managers_gone`)."""
    if after is before or not after.gar_managers:
        return settle(after, cause, ctx)
    after, gone = commands.managers_gone(after, ctx.namespace, chained(cause, RULE_GAR_LEFT))
    decision = settle(after, cause, ctx)
    return replace(decision, emits=(*decision.emits, *gone)) if gone else decision


def _claims_here(inp: LinkSet, state: EntityState, ctx: Context) -> bool:
    if inp.login is None or not _kind_is(inp.member_id, "staff"):
        return False
    base = logins.academic_base(inp.login)
    return ids.login_allocator_id(ctx.namespace, base) == state.entity_id


def _group_spec(members: dict[str, LinkPayload]) -> GroupSpec | None:
    """The description given by the latest link (ties by member id): labels follow renames.

    Members may spell the school or the class code in ways the directory holds equal (``C02``,
    ``c02``: one group, see :mod:`sync.ids`): the smallest spelling names the group, whatever
    order the links came in."""
    described = [(utc(p.at), m, p.group) for m, p in members.items() if p.group is not None]
    if not described:
        return None
    latest = max(described, key=lambda d: (d[0], d[1]))[2]
    codes = [g.class_code for _, _, g in described if g.class_code]
    return latest.model_copy(
        update={
            "school_jointure": min(g.school_jointure for _, _, g in described),
            "class_code": min(codes) if codes else latest.class_code,
        }
    )


def _with_login(state: EntityState, inp: LoginAssigned) -> EntityState:
    if state.kind not in ids.PERSON_KINDS:
        raise ContractError("only persons get logins")
    if state.login is not None or inp.login == state.refused_login:
        return state  # a login never changes (an answer to an earlier request is stale)
    return state.model_copy(update={"login": inp.login, "refused_login": None})


def _with_login_refused(state: EntityState, inp: LoginRefused) -> EntityState:
    """The directory holds this person's login on another entry: while the person has no entry
    (nobody ever saw the login as theirs), it asks for another one, naming the refused one."""
    if state.kind not in ids.PERSON_KINDS:
        raise ContractError("only persons get logins")
    if state.applied is not None or state.login is None:
        return state
    if not equality.equal(state.login, inp.login):
        return state
    return state.model_copy(
        update={"login": None, "login_requested": False, "refused_login": state.login}
    )


def _allocate(state: EntityState, inp: LoginRequested, ctx: Context) -> Decision:
    if state.kind != "login" or ids.login_allocator_id(ctx.namespace, inp.base) != state.entity_id:
        raise ContractError("login request sent to the wrong allocator")
    allocations = state.allocations
    if inp.refused is not None and allocations.get(inp.person_id) == inp.refused:
        # The directory has that login on another entry: held by it, never handed out again.
        allocations = {k: v for k, v in allocations.items() if k != inp.person_id}
        allocations[f"directory:{inp.refused}"] = inp.refused
        state = state.model_copy(update={"allocations": allocations})
    login = logins.allocate(allocations, inp.person_id, inp.base, claims.claimed(state))
    answer = LoginAssigned(
        entity_id=inp.person_id,
        cause=chained(inp.cause, RULE_LOGIN_ASSIGN),
        login=login,
    )
    if inp.person_id in state.allocations:
        # A repeated request (redelivered, or the person asking again because an answer was
        # lost): the same login again. The person ignores it if it already has one.
        return Decision(state, emits=(answer,))
    allocations = {**state.allocations, inp.person_id: login}
    return Decision(state.model_copy(update={"allocations": allocations}), emits=(answer,))


def _kind_is(entity_id: str, kind: str) -> bool:
    try:
        return ids.kind_of(entity_id) == kind
    except ValueError:
        return False


def _is_staff(entity_id: str) -> bool:
    return _kind_is(entity_id, "staff")


def _settled(state: EntityState, applied: commands.Applied, cause: Cause, ctx: Context) -> Decision:
    """An admin command's decision: nothing but the outcome when not accepted, else settled."""
    if not applied.accepted:
        return Decision(state, outcomes=(applied.decided,))
    decision = settle(applied.state, cause, ctx)
    return replace(decision, outcomes=(applied.decided,))


def _teacher_class(state: EntityState, inp: TeacherClassRequested, ctx: Context) -> Decision:
    spec = commands.class_spec(inp.school_jointure, inp.class_code)
    if state.kind != "group" or ids.group_id(ctx.namespace, spec) != state.entity_id:
        raise ContractError("teacher-class command sent to another entity than the class")
    if not _is_staff(inp.teacher_id):
        raise ContractError("teacher-class command names a non-staff entity")
    applied = commands.apply_teacher_class(state, inp)
    return _settled(state, applied, inp.cause, ctx)


def _gar_manager(state: EntityState, inp: GarManagerRequested, ctx: Context) -> Decision:
    spec = commands.school_teachers_spec(inp.school_jointure)
    if state.kind != "group" or ids.group_id(ctx.namespace, spec) != state.entity_id:
        raise ContractError("GAR command sent to another entity than the school's teachers group")
    if not _is_staff(inp.teacher_id):
        raise ContractError("GAR command names a non-staff entity")
    applied = commands.apply_gar_manager(state, inp, ctx.namespace)
    return Decision(applied.state, emits=applied.emits, outcomes=(applied.decided,))


def _block(state: EntityState, inp: BlockRequested, ctx: Context) -> Decision:
    spec = GroupSpec(school_jointure=inp.block.school_jointure, profile=inp.block.profile)
    if state.kind != "group" or ids.group_id(ctx.namespace, spec) != state.entity_id:
        raise ContractError("block command sent to another entity than the school's group")
    applied = commands.apply_block(state.model_copy(update={"group": state.group or spec}), inp)
    return _settled(state, applied, inp.cause, ctx)


def _manual(state: EntityState, inp: ManualAccountRequested, ctx: Context) -> Decision:
    if state.kind != "manual":
        raise ContractError("manual-account command sent to another entity than the account")
    applied = commands.apply_manual(state, inp)
    return _settled(state, applied, inp.cause, ctx)


def _resolve_ine(state: EntityState, inp: IneResolutionRequested, ctx: Context) -> Decision:
    if state.kind != "pupil":
        raise ContractError("INE resolution sent to another entity than a pupil")
    after, decided = ineconflict.resolve(state, inp, ctx.namespace)
    return _settled(state, commands.Applied(after, decided), inp.cause, ctx)


def _teacher_school(state: EntityState, inp: TeacherSchoolRequested, ctx: Context) -> Decision:
    if state.kind != "staff" or inp.teacher_id != state.entity_id:
        raise ContractError("teacher-school command sent to another entity than the teacher")
    record = latest_present(state)
    staff = record.staff if record is not None else None
    applied = commands.apply_teacher_school(state, staff, inp)
    return _settled(state, applied, inp.cause, ctx)


# ----------------------------------------------------------------------------- decisions

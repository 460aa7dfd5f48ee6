"""The last step of every decision: an entity's state brought to its login request, outgoing
links and entry (the rules per kind are in :mod:`sync.reconcile`'s docstring).

Pure. :func:`settle` is shared by the entity agent's inputs (:mod:`sync.reconcile`), the
lifecycle (:mod:`sync.lifecycle`) and the rebuild from the directory (:mod:`sync.rebuild`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from schemas.admin import AdminCommandDecided
from schemas.audit import DirectoryChanged, IdentityHeld, RecordsHeld
from schemas.entities import Cause, EntityInput, LoginRequested, ManualAccount
from schemas.feed import Guardian, Pupil, School, Staff
from schemas.state import EntityState
from sync import claims, ids, ineconflict, legacy, logins
from sync.desired import Context, desired_entry, entity_dn
from sync.diff import audit, diff
from sync.effective import Record, view
from sync.links import KEPT_RULE_PREFIXES, desired_links, link_emits, named_guardians
from sync.ops import DirectoryOp
from sync.schools import entry_schools

RULE_LOGIN_REQUEST = "login.request"


@dataclass(frozen=True)
class Decision:
    """The entity's next state and what to do: ops on LDAP, inputs to publish, audit events.

    ``audits`` has exactly one event per op. ``outcomes`` has one event per admin command
    decided (for ``entsync.admin-decisions.v1``), whether or not it changes the directory.
    ``notices``: records held or released for an INE conflict (audit topic, no op).
    """

    state: EntityState
    ops: tuple[DirectoryOp, ...] = ()
    emits: tuple[EntityInput, ...] = ()
    audits: tuple[DirectoryChanged, ...] = ()
    outcomes: tuple[AdminCommandDecided, ...] = ()
    notices: tuple[RecordsHeld, ...] = ()
    holds: tuple[IdentityHeld, ...] = ()


def chained(cause: Cause, rule: str) -> Cause:
    """The cause of a message sent on: its own rule, unless an admin command or the lifecycle
    started the chain (then every change it leads to is audited as that command)."""
    if cause.rule.startswith(KEPT_RULE_PREFIXES):
        return cause
    return cause.model_copy(update={"rule": rule})


def settle(state: EntityState, cause: Cause, ctx: Context) -> Decision:
    """Bring the entity's login request, outgoing links and entry in line with its state."""
    state = legacy.upgrade_state(state, ctx.sources)  # an entry remembered in the earlier form
    if ineconflict.frozen(state):
        return _frozen(state, cause)
    seen = view(state)
    update: dict[str, object] = {}
    if state.kind in ids.PERSON_KINDS:
        update |= {"account_state": seen.account_state, "disappeared_at": seen.disappeared_at}
        if seen.account_state == "active":  # came back: restored with the same DN and login
            update |= {"predeleted_at": None, "deleted_at": None}
    emits: list[EntityInput] = []
    if _needs_login(state, seen.record):
        assert seen.record is not None and not isinstance(seen.record, School)
        base = logins.login_base(seen.record.first_name, seen.record.last_name, state.entity_id)
        emits.append(
            LoginRequested(
                entity_id=ids.login_allocator_id(ctx.namespace, base),
                cause=chained(cause, RULE_LOGIN_REQUEST),
                person_id=state.entity_id,
                base=base,
                refused=state.refused_login,
            )
        )
        update["login_requested"] = True
    desired = desired_entry(state, seen, ctx)
    # A link writes this entity's DN into the target's entry: none while there is no entry
    # (no login yet, a guardian without a child, deleted), nor once pre-deleted (out of every
    # perimeter). Groups link to persons that linked to them (they exist).
    linkless = seen.account_state in ("predeleted", "deleted") or (
        state.kind in ids.PERSON_KINDS and desired is None
    )
    if state.kind == "pupil" and seen.account_state not in ("predeleted", "deleted"):
        # Whether or not its entry exists yet: see named_guardians.
        named = named_guardians(state, seen.record, ctx.namespace)
        if named != state.named_guardians:
            state = state.model_copy(update={"named_guardians": named})
    links = {} if linkless else desired_links(state, seen.record, ctx.namespace)
    # Claims go out before the entry exists: a staff member's entry waits for its grant.
    links |= claims.claim_links(state, seen.record, seen.account_state, ctx.namespace)
    if state.kind == "login":
        links |= claims.grant_links(state)
    outgoing, link_messages = link_emits(state.entity_id, state.outgoing, links, cause)
    emits.extend(link_messages)
    update["outgoing"] = outgoing
    ops: tuple[DirectoryOp, ...] = ()
    audits: tuple[DirectoryChanged, ...] = ()
    if desired is not None or state.applied is not None:
        dn = entity_dn(state, seen.record, ctx)
        op = diff(dn, desired, state.applied)
        if op is not None:
            ops = (op,)
            audits = (
                audit(
                    op,
                    before=state.applied,
                    after=desired,
                    entity_id=state.entity_id,
                    entity_kind=state.kind,
                    cause=cause,
                    digest_key=ctx.digest_key,
                    schools=entry_schools(dn, (state.applied, desired), links.values()),
                ),
            )
        update["applied"] = desired
    holds: tuple[IdentityHeld, ...] = ()
    if state.kind == "staff":
        held = claims.academic_grant(state, seen.record)[1]
        update["held_reason"] = held
        if held != state.held_reason:
            holds = (held_event(state, held, cause),)
    return Decision(state.model_copy(update=update), ops, tuple(emits), audits, holds=holds)


def held_event(state: EntityState, reason: str | None, cause: Cause) -> IdentityHeld:
    parts = [state.entity_id, reason or "", state.held_reason or "", cause.topic]
    parts += [str(cause.partition), str(cause.offset), cause.rule, cause.at.isoformat()]
    return IdentityHeld(
        event_id=hashlib.sha256("\x1f".join(parts).encode()).hexdigest(),
        entity_id=state.entity_id,
        entity_kind=state.kind,
        reason=reason,
        previous=state.held_reason,
        cause=cause,
    )


def _frozen(state: EntityState, cause: Cause) -> Decision:
    """An unresolved INE conflict (:mod:`sync.ineconflict`): the entry and its login stay as last
    written, and so do its links; an entity with no entry withdraws the links it made (a held
    pupil gets no account, nor do guardians through it)."""
    if state.applied is not None or not state.outgoing:
        return Decision(state)
    outgoing, withdrawn = link_emits(state.entity_id, state.outgoing, {}, cause)
    return Decision(state.model_copy(update={"outgoing": outgoing}), emits=withdrawn)


def _needs_login(state: EntityState, record: Record | None) -> bool:
    """Whether to (re)send a login request: at every input while the person has none."""
    if state.login is not None or record is None:
        return False
    match record:
        case Pupil():
            return True
        case Guardian():
            return state.had_child
        case Staff():
            return not record.academic_login
        case ManualAccount():
            return True
        case School():
            return False

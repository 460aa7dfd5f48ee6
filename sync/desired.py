"""The entry an entity should have now, and its DN: the last step of every decision.

Pure, like :mod:`sync.reconcile` (which re-exports :class:`Context` and :class:`ContractError`).
Persons: their record's SDET entry with their login, then, by account state, the pre-deleted form
(out of every perimeter) or nothing once deleted; a bulk block adds ``entsyncBlocked*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.entities import ManualAccount
from schemas.feed import Guardian, Pupil, School, Staff
from schemas.state import AccountState, EntityState
from sync import claims, dit, entries, ids
from sync.effective import Record, View, utc
from sync.links import children, teacher_classes


@dataclass(frozen=True)
class Context:
    """Deployment constants the decisions depend on."""

    base_dn: str = dit.DEFAULT_BASE_DN
    namespace: str = "entsync"
    # keys the value digests of audit events (ENTSYNC_AUDIT_DIGEST_KEY); empty only in tests
    digest_key: bytes = b""
    sources: entries.JointureSources = field(default_factory=entries.JointureSources)


class ContractError(ValueError):
    """An input that cannot be meant for this entity. The message never carries personal data."""


def person_login(state: EntityState, record: Record | None) -> str | None:
    """Staff use their academic login when the feed gives one, once the login allocation granted
    it (:mod:`sync.claims`); everyone else their allocated one."""
    if isinstance(record, Staff) and record.academic_login:
        return claims.academic_grant(state, record)[0]
    return state.login


def desired_entry(state: EntityState, seen: View, ctx: Context) -> entries.Entry | None:
    """The entry this entity should have now; None: no entry."""
    record = seen.record
    if state.kind == "group":
        members = state.links.get("member", {})
        if state.group is None:
            return None
        if not members:
            # A groupOfNames needs a member: a GAR group whose last manager left the school goes
            # (an operator cannot remove the last one: sync.commands).
            return None
        return entries.group_entry(state.entity_id, state.group, members, base_dn=ctx.base_dn)
    if isinstance(record, School):
        if record.held_reasons or record.siren is None:
            # Held for a value SDET makes mandatory (its SIREN; a record read before entsync
            # read SIRENs has none either): never a new entry, and an entry written before keeps
            # its last content rather than being deleted by a bad record.
            return state.applied
        return entries.school_entry(state.entity_id, record, sources=ctx.sources)
    login = person_login(state, record)
    account = seen.account_state
    if account is None or account == "deleted":
        return None
    if login is None:
        # Staff waiting for their academic login, or held for it: an entry written before stays
        # as it is (the login in it is theirs; sync.claims).
        return state.applied if isinstance(record, Staff) else None
    entry = _person_entry(state, seen, login, account, ctx)
    if entry is not None and account == "predeleted" and state.predeleted_at is not None:
        return entries.predeleted(entry, state.predeleted_at)
    blocks = [b for p in state.links.get("block", {}).values() for b in p.blocks]
    if entry is not None and blocks:
        return entries.blocked(entry, min(blocks, key=lambda b: (utc(b.start), b.block_id)))
    return entry


def _person_entry(
    state: EntityState, seen: View, login: str, account: AccountState, ctx: Context
) -> entries.Entry | None:
    record = seen.record
    gone_at = seen.disappeared_at
    match record:
        case Pupil():
            return entries.pupil_entry(
                state.entity_id,
                record,
                login=login,
                account_state=account,
                disappeared_at=gone_at,
                parents=state.links.get("parent", {}),
                base_dn=ctx.base_dn,
                namespace=ctx.namespace,
                sources=ctx.sources,
            )
        case Guardian() if state.had_child:
            return entries.guardian_entry(
                state.entity_id,
                record,
                login=login,
                children=children(state),
                account_state=account,
                disappeared_at=gone_at,
                base_dn=ctx.base_dn,
                sources=ctx.sources,
            )
        case Staff():
            return entries.staff_entry(
                state.entity_id,
                record,
                login=login,
                account_state=account,
                disappeared_at=gone_at,
                classes=[
                    (c.school_jointure, c.class_code or "") for c in teacher_classes(state, record)
                ],
                base_dn=ctx.base_dn,
                sources=ctx.sources,
            )
        case ManualAccount():
            return entries.manual_entry(
                state.entity_id, record, login=login, account_state=account, base_dn=ctx.base_dn
            )
    return None


def entity_dn(state: EntityState, record: Record | None, ctx: Context) -> str:
    if state.kind in ids.PERSON_KINDS:
        return dit.people_dn(state.entity_id, ctx.base_dn)
    if isinstance(record, School):
        return dit.school_dn(record.jointure, ctx.base_dn)
    if state.kind == "group" and state.group is not None:
        return dit.group_dn(state.group, ctx.base_dn)
    raise ContractError("entity has no DN yet")

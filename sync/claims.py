"""Academic logins: staff claim theirs from the login allocation, which answers by rule.

The directory refuses a second entry with a login it already has (a unique overlay on
``ENTPersonLogin``, compared with ``caseIgnoreMatch``). Staff with an academic login do not get
an allocated login, so the allocation must know theirs, or a pupil namesake would be given the
same one and one of the two writes would be refused. Rules:

- a staff member with an academic login ``L`` states a ``claim`` link to the login allocator of
  :func:`sync.logins.academic_base` ``(L)``, the only allocator whose logins (``base``,
  ``base2``...) can equal ``L``; the claim stays while the record is present or the entry
  exists (a pre-deleted entry keeps its login), and is withdrawn when ``L`` changes or goes;
- the allocator never allocates a login a claim names (:func:`claimed`): a pupil or guardian
  whose generated login would be ``L`` gets the next suffixed one;
- the allocator answers each claim with a ``grant`` link whose status is, comparing logins as the
  directory does (:mod:`sync.equality`): ``taken`` when ``L`` is already allocated to another
  person (logins never change once given: the staff member is held,
  ``academic_login_taken``); else ``shared`` when another staff member claims it too (both
  held, ``academic_login_shared``, whatever the order they came in); else ``granted``;
- a staff member uses ``L`` once granted for exactly that spelling. Until then, and while held,
  it gets no new entry; an entry written before stays as last written (its login is its own and
  the other claimant is not written), like a school held for its SIREN.

Both holds clear by themselves when the data is fixed: a claim withdrawn or changed changes the
other claimants' answers.
"""

from __future__ import annotations

from schemas.entities import LoginStatus
from schemas.feed import HoldReason, Staff
from schemas.state import AccountState, EntityState
from sync import equality, ids, logins
from sync.effective import Record
from sync.links import Link

_HELD: dict[str, HoldReason] = {
    "shared": HoldReason.ACADEMIC_LOGIN_SHARED,
    "taken": HoldReason.ACADEMIC_LOGIN_TAKEN,
}


def claim_links(
    state: EntityState, record: Record | None, account: AccountState | None, namespace: str
) -> dict[str, Link]:
    """A staff member's claim of its academic login, while its record is there or its entry is
    (a pre-deleted entry keeps its login); none once deleted."""
    if not isinstance(record, Staff) or not record.academic_login:
        return {}
    if account == "deleted" or (account != "active" and state.applied is None):
        return {}
    target = ids.login_allocator_id(namespace, logins.academic_base(record.academic_login))
    link = Link("claim", target, login=record.academic_login)
    return {link.key: link}


def claimed(state: EntityState) -> list[str]:
    """The academic logins claimed at this allocator: never allocated to anyone."""
    return [p.login for p in state.links.get("claim", {}).values() if p.login is not None]


def grant_links(state: EntityState) -> dict[str, Link]:
    """An allocator's answer to each claim (see the module docstring)."""
    claims = {
        staff: equality.prepare(p.login)
        for staff, p in state.links.get("claim", {}).items()
        if p.login is not None
    }
    allocated = {equality.prepare(login): person for person, login in state.allocations.items()}
    out: dict[str, Link] = {}
    for staff, login in claims.items():
        status: LoginStatus
        holder = allocated.get(login)
        if holder is not None and holder != staff:
            status = "taken"
        elif any(other != staff and lg == login for other, lg in claims.items()):
            status = "shared"
        else:
            status = "granted"
        link = Link("grant", staff, login=state.links["claim"][staff].login, login_status=status)
        out[link.key] = link
    return out


def academic_grant(
    state: EntityState, record: Record | None
) -> tuple[str | None, HoldReason | None]:
    """A staff member's academic login once granted, else None and, when held, why."""
    if not isinstance(record, Staff) or not record.academic_login:
        return None, None
    for payload in state.links.get("grant", {}).values():
        if payload.login != record.academic_login:
            continue  # an answer about a login the record no longer has
        if payload.login_status == "granted":
            return record.academic_login, None
        if payload.login_status in _HELD:
            return None, _HELD[payload.login_status]
    return None, None

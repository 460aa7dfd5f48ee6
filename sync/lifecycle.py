"""Account lifecycle over time: the sweeper's transitions and the school-year switchover.

Pure, like :mod:`sync.reconcile`: each function takes one entity's state and returns the
:class:`~sync.reconcile.Decision` it leads to (None when nothing is due), the clock being an
argument (``now``), so that ``entsync lifecycle sweep --now`` and tests can simulate any date.

States of a person (``entsyncAccountState``)::

    active --(all its records removed: deleteRequest or absence from a complete snapshot)-->
    disappeared --(predelete_after, per profile)--> predeleted --(delete_after)--> deleted

The sweeper also lifts bulk blocks whose end has passed (a school profile group drops them and
its members lose ``entsyncBlocked*``).

- *predeleted*: out of every school and class group and perimeter; the entry, its DN and its
  login stay (``entsyncPredeletedAt``);
- *deleted*: the entry is removed; the state keeps a tombstone (``deleted_at``) so that an event
  from before the deletion, replayed later, cannot bring the account back;
- a record coming back at any point restores the account: same DN, same login, links rebuilt.

School-year switchover, per entity: a pupil retires the classes of its records older than the
switchover (its class groups empty and go, so do its guardians' class groups); a class retires the
teacher attachments made before it (teacher–class links do not persist from one year to the
next). Schools, school-wide groups and staff are untouched: staff follow their own feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.entities import Cause
from schemas.state import EntityState
from sync import ids
from sync.effective import utc, view
from sync.links import is_class_group
from sync.reconcile import Context, Decision, settle

RULE_PREDELETE = "lifecycle.predelete"
RULE_DELETE = "lifecycle.delete"
RULE_SWITCHOVER = "lifecycle.switchover"
RULE_BLOCK_ENDED = "lifecycle.block-ended"

DEFAULT_DELAY = timedelta(days=90)
GUEST_DELETE_DELAY = timedelta(0)
"""A deleted guest account goes at the next nightly sweep."""


@dataclass(frozen=True)
class Policy:
    """Delays per person kind (pupil, guardian, staff); other kinds (manual accounts) take the
    defaults, 90 and 90 days unless configured."""

    predelete_after: Mapping[str, timedelta] = field(default_factory=dict)
    delete_after: Mapping[str, timedelta] = field(default_factory=dict)
    default_predelete: timedelta = DEFAULT_DELAY
    default_delete: timedelta = DEFAULT_DELAY

    def predelay(self, kind: str) -> timedelta:
        return self.predelete_after.get(kind, self.default_predelete)

    def delay(self, kind: str) -> timedelta:
        return self.delete_after.get(kind, self.default_delete)


@dataclass(frozen=True)
class Due:
    """A transition that is due: to which state, by which rule."""

    to: str
    rule: str


def due(state: EntityState, now: datetime, policy: Policy) -> Due | None:
    """The transition of ``state`` due at ``now``, if any."""
    if state.kind == "group":
        ended = any(utc(b.end) <= utc(now) for b in state.blocks.values())
        return Due("unblocked", RULE_BLOCK_ENDED) if ended else None
    if state.kind not in ids.PERSON_KINDS:
        return None
    seen = view(state)
    gone, predeleted = seen.disappeared_at, state.predeleted_at
    if (
        seen.account_state == "disappeared"
        and gone is not None
        and utc(gone) + policy.predelay(state.kind) <= utc(now)
    ):
        return Due("predeleted", RULE_PREDELETE)
    guest = state.manual is not None and state.manual.profile == "guest"
    delay = GUEST_DELETE_DELAY if guest else policy.delay(state.kind)
    if (
        seen.account_state == "predeleted"
        and predeleted is not None
        and utc(predeleted) + delay <= utc(now)
    ):
        return Due("deleted", RULE_DELETE)
    return None


def sweep(
    state: EntityState, now: datetime, policy: Policy, cause: Cause, ctx: Context
) -> Decision | None:
    """The sweeper's decision for one entity at ``now``; None when nothing is due.

    ``cause.rule`` is replaced by the transition's rule; its time should be ``now``.
    """
    transition = due(state, now, policy)
    if transition is None:
        return None
    if transition.to == "unblocked":
        kept = {k: b for k, b in state.blocks.items() if utc(b.end) > utc(now)}
        moved = state.model_copy(update={"blocks": kept})
    else:
        field_name = "predeleted_at" if transition.to == "predeleted" else "deleted_at"
        moved = state.model_copy(update={field_name: now})
    return settle(moved, cause.model_copy(update={"rule": transition.rule, "at": now}), ctx)


def switch_year(state: EntityState, at: datetime, cause: Cause, ctx: Context) -> Decision | None:
    """The switchover's effect on one entity (None: not concerned or already done)."""
    if state.kind == "pupil":
        if state.classes_retired_at is not None and utc(state.classes_retired_at) >= utc(at):
            return None
        moved = state.model_copy(update={"classes_retired_at": at})
    elif state.kind == "group" and is_class_group(state.group):
        kept = {t: when for t, when in state.class_teachers.items() if utc(when) >= utc(at)}
        if kept == state.class_teachers:
            return None
        moved = state.model_copy(update={"class_teachers": kept})
    else:
        return None
    return settle(moved, cause.model_copy(update={"rule": RULE_SWITCHOVER}), ctx)


def planned(
    states: Iterable[EntityState], now: datetime, policy: Policy
) -> list[tuple[EntityState, Due]]:
    """What a sweep at ``now`` would do, entity by entity (for ``--dry-run``)."""
    return [(s, d) for s in states if (d := due(s, now, policy)) is not None]

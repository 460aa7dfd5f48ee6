"""Disappearance from evidence: absence from a complete snapshot, under guards.

Pure functions used by ``route_feed`` (see :mod:`schemas.lifecycle` for the two-round protocol):

- :func:`seen` stamps a feed key with the file that fed it (scope, category, snapshot, time);
- :func:`is_absent` says whether a key is absent from a complete snapshot of its scope: it was
  last fed by that scope and category, it is present, the snapshot did not contain it and no file
  fed it since the snapshot began (a delta published meanwhile is evidence of presence);
- :func:`tally` counts a partition's active and absent keys for a snapshot;
- :func:`coordinate` is the coordinator of one snapshot key: it starts the rounds, gathers the
  tallies and decides: the school-year freeze and the switchover's grace period apply nothing;
  the mass-deletion guard holds a snapshot that would mark more than ``max_share`` of the scope's
  active keys (and at least ``min_count``), or that is empty while the scope has active keys;
  otherwise the absent keys are marked removed;
- :func:`mark_absent` turns one absent key into the ``RecordSet(None)`` the deletion of the record
  would have sent, with the rule ``lifecycle.absent-from-snapshot``.

Schools are not subject to absence (a school leaving the feeds keeps its entry); only persons.
Missing or incomplete snapshots never cause anything: only a ``SnapshotCompleted`` starts a check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.entities import Cause, RecordSet
from schemas.feed import Category, SnapshotCompleted, SnapshotStarted, SourceRef
from schemas.lifecycle import (
    HoldDecided,
    PendingSnapshot,
    SchoolYearState,
    ScopeState,
    SnapshotDecision,
    SnapshotOutcome,
    SnapshotRef,
    SnapshotScan,
    SnapshotTally,
)
from schemas.state import SourceState
from sync.effective import utc

RULE_ABSENT = "lifecycle.absent-from-snapshot"
RULE_ABSENT_APPROVED = "lifecycle.absent-from-snapshot.approved"

UAI = re.compile(r"[0-9]{7}[A-Z]")  # a school's scope; any other scope is academy-wide
PERSON_CATEGORIES = frozenset({Category.PUPILS, Category.GUARDIANS, Category.STAFF})
FAMILY_CATEGORIES = frozenset({Category.PUPILS, Category.GUARDIANS})


@dataclass(frozen=True)
class Guard:
    """Mass-deletion guard and switchover grace (configurable, see ``entsync.settings``)."""

    max_share: float = 0.10
    min_count: int = 5
    grace: timedelta = timedelta(days=30)


def is_stale(state: SourceState | None, source: SourceRef) -> bool:
    """Whether ``source`` is an older extract than the newest that fed the key: a backfill of
    an old file must not undo what a newer one said (a disappearance, a deletion)."""
    return (
        state is not None
        and state.extract_date is not None
        and source.extract_date is not None
        and source.extract_date < state.extract_date
    )


def seen(state: SourceState, source: SourceRef, at: datetime) -> SourceState:
    """``state`` stamped as fed by ``source`` at ``at`` (unchanged fields keep their identity)."""
    update = {
        "scope": source.scope,
        "category": source.category,
        "snapshot_id": source.snapshot_id if source.complete else state.snapshot_id,
        "at": at,
        "extract_date": source.extract_date or state.extract_date,
    }
    if state.restored_uais is not None:
        update["restored_uais"] = None  # a file fed it: its scope is known again
    if all(getattr(state, name) == value for name, value in update.items()):
        return state
    return state.model_copy(update=update)


def in_scope(state: SourceState, snap: SnapshotRef) -> bool:
    """Whether the key belongs to the snapshot's scope: fed last by a file of that scope and
    category; or rebuilt from the directory (the file that fed it unknown) and in a school the
    scope names, by its UAI or academy-wide (a scope that is not a UAI)."""
    if state.version is None or snap.category not in PERSON_CATEGORIES:
        return False
    if state.category != snap.category:
        return False
    if state.scope is None and state.restored_uais is not None:
        return snap.scope in state.restored_uais or not UAI.fullmatch(snap.scope)
    return state.scope is not None and state.scope == snap.scope


def scan_candidate(state: SourceState, scope: str, category: str) -> bool:
    """Whether a partition scan of a ``scope`` and ``category`` snapshot must look at the key
    (:func:`in_scope` then judges it): fed last by a file of that scope, or rebuilt from the
    directory (no scope, its schools' UAIs kept)."""
    if state.category is None or state.category.value != category:
        return False
    return state.scope == scope or (state.scope is None and state.restored_uais is not None)


def is_absent(state: SourceState, snap: SnapshotRef) -> bool:
    """Absent: in the scope, not in the snapshot, not fed since it began nor by a newer extract."""
    newer = (
        state.extract_date is not None
        and snap.extract_date is not None
        and state.extract_date > snap.extract_date
    )
    return (
        in_scope(state, snap)
        and state.snapshot_id != snap.snapshot_id
        and state.at is not None
        and utc(state.at) < utc(snap.started_at)
        and not newer
    )


def tally(states: Iterable[SourceState], snap: SnapshotRef) -> tuple[int, int]:
    """(active keys of the snapshot's scope, of which absent from it)."""
    active = absent = 0
    for state in states:
        if in_scope(state, snap):
            active += 1
            absent += is_absent(state, snap)
    return active, absent


def mark_absent(
    state: SourceState, snap: SnapshotRef, cause: Cause
) -> tuple[SourceState, RecordSet]:
    """The key's state once removed, and the removal to send to its entity.

    The key now knows the snapshot's extract date: re-ingesting an older extract cannot bring
    the record back.
    """
    removal = RecordSet(
        entity_id=state.entity_id,
        cause=cause,
        entity_kind=state.kind,
        source_key=state.key,
        version=None,
    )
    newest = (
        max(d for d in (state.extract_date, snap.extract_date) if d)
        if (state.extract_date or snap.extract_date)
        else None
    )
    return state.model_copy(update={"version": None, "extract_date": newest}), removal


# ----------------------------------------------------------------------------- the coordinator


@dataclass(frozen=True)
class Coordinated:
    """The coordinator's next state, the control messages to send, and the decisions made."""

    state: ScopeState
    scans: tuple[SnapshotScan, ...] = ()
    decisions: tuple[SnapshotDecision, ...] = field(default=())


def _scans(key: str, pending: PendingSnapshot, rule: str, phase: str) -> tuple[SnapshotScan, ...]:
    return tuple(
        SnapshotScan(
            key=key,
            snapshot=pending.snapshot,
            phase="tally" if phase == "tally" else "apply",
            partition=p,
            partitions=pending.partitions,
            rule=rule,
        )
        for p in range(pending.partitions)
    )


def _decision(
    pending: PendingSnapshot,
    outcome: SnapshotOutcome,
    reason: str,
    at: datetime,
    operator: str | None = None,
) -> SnapshotDecision:
    active = sum(a for a, _ in pending.tallies.values())
    absent = sum(b for _, b in pending.tallies.values())
    snap = pending.snapshot
    return SnapshotDecision(
        snapshot_id=snap.snapshot_id,
        category=snap.category,
        scope=snap.scope,
        outcome=outcome,
        active=active,
        absent=absent,
        record_count=pending.record_count,
        reason=reason,
        operator=operator,
        at=at,
    )


def judge(
    pending: PendingSnapshot, year: SchoolYearState, guard: Guard
) -> tuple[SnapshotOutcome, str]:
    """What to do with a fully tallied snapshot, and why (plain words, counts only)."""
    active = sum(a for a, _ in pending.tallies.values())
    absent = sum(b for _, b in pending.tallies.values())
    snap = pending.snapshot
    if year.frozen:
        return "frozen", "school year frozen: nothing disappears until the switchover"
    if (
        snap.category in FAMILY_CATEGORIES
        and year.switchover_at is not None
        and utc(snap.started_at) < utc(year.switchover_at) + guard.grace
    ):
        return "grace", f"within {guard.grace.days} days of the switchover: absence not applied"
    if absent == 0:
        return "nothing-absent", "every active account of the scope is in the snapshot"
    if pending.record_count == 0:
        return "held", f"empty snapshot while the scope has {active} active accounts"
    if absent >= guard.min_count and absent > guard.max_share * active:
        share = f"{absent}/{active}"
        return "held", f"would mark {share} active accounts as disappeared (over the guard)"
    return "applied", f"{absent} of {active} active accounts absent: marked disappeared"


def coordinate(
    prev: ScopeState | None,
    event: SnapshotStarted | SnapshotCompleted | SnapshotTally | HoldDecided,
    *,
    key: str,
    at: datetime,
    partitions: int,
    year: SchoolYearState,
    guard: Guard,
) -> Coordinated:
    """One step of the coordinator of snapshot key ``key``. ``at``: the event's time."""
    state = prev or ScopeState(key=key)
    match event:
        case SnapshotStarted():
            ref = SnapshotRef(
                snapshot_id=event.snapshot_id,
                category=event.category,
                scope=event.scope,
                started_at=at,
                extract_date=event.extract_date,
            )
            return Coordinated(state.model_copy(update={"started": ref}))
        case SnapshotCompleted():
            return _completed(state, event, key, at, partitions)
        case SnapshotTally():
            return _tallied(state, event, key, at, year, guard)
        case HoldDecided():
            return _hold_decided(state, event, key)


def _completed(
    state: ScopeState, event: SnapshotCompleted, key: str, at: datetime, partitions: int
) -> Coordinated:
    started = state.started
    if started is None or started.snapshot_id != event.snapshot_id:
        return Coordinated(state)  # no matching start: incomplete evidence, nothing to check
    held = state.pending.get(event.snapshot_id)
    if held is not None and held.outcome == "held":
        # The same extract again (a backfill): it stays held, waiting for the operator.
        return Coordinated(state.model_copy(update={"started": None}))
    pending = dict(state.pending)
    decisions = []
    for snapshot_id, old in sorted(pending.items()):
        if old.outcome == "held":  # a newer complete extract replaces a held one
            decisions.append(
                _decision(old, "superseded", "a newer complete snapshot of the scope came", at)
            )
            del pending[snapshot_id]
    new = PendingSnapshot(snapshot=started, record_count=event.record_count, partitions=partitions)
    pending[event.snapshot_id] = new
    return Coordinated(
        state.model_copy(update={"started": None, "pending": pending}),
        _scans(key, new, RULE_ABSENT, "tally"),
        tuple(decisions),
    )


def _tallied(
    state: ScopeState,
    event: SnapshotTally,
    key: str,
    at: datetime,
    year: SchoolYearState,
    guard: Guard,
) -> Coordinated:
    pending = state.pending.get(event.snapshot_id)
    if pending is None or pending.outcome is not None or event.partitions != pending.partitions:
        return Coordinated(state)
    tallies = {**pending.tallies, event.partition: (event.active, event.absent)}
    pending = pending.model_copy(update={"tallies": tallies})
    others = {k: v for k, v in state.pending.items() if k != event.snapshot_id}
    if len(tallies) < pending.partitions:
        return Coordinated(
            state.model_copy(update={"pending": {**others, event.snapshot_id: pending}})
        )
    outcome, reason = judge(pending, year, guard)
    decision = _decision(pending, outcome, reason, at)
    if outcome == "held":
        held = pending.model_copy(update={"outcome": "held"})
        return Coordinated(
            state.model_copy(update={"pending": {**others, event.snapshot_id: held}}),
            decisions=(decision,),
        )
    scans = _scans(key, pending, RULE_ABSENT, "apply") if outcome == "applied" else ()
    done = state.model_copy(update={"pending": others, "last_applied": event.snapshot_id})
    return Coordinated(done, scans, (decision,))


def _hold_decided(state: ScopeState, event: HoldDecided, key: str) -> Coordinated:
    pending = state.pending.get(event.snapshot_id)
    if pending is None or pending.outcome != "held":
        return Coordinated(state)  # not held (any more): the command is late or repeated
    others = {k: v for k, v in state.pending.items() if k != event.snapshot_id}
    done = state.model_copy(update={"pending": others, "last_applied": event.snapshot_id})
    if event.approve:
        decision = _decision(
            pending,
            "approved",
            "approved by an operator: marked disappeared",
            event.at,
            event.operator,
        )
        return Coordinated(done, _scans(key, pending, RULE_ABSENT_APPROVED, "apply"), (decision,))
    decision = _decision(
        pending, "rejected", "rejected by an operator: nothing marked", event.at, event.operator
    )
    return Coordinated(done, decisions=(decision,))


def apply_year(
    state: SchoolYearState, action: str, school_year: str | None, at: datetime
) -> SchoolYearState:
    """The calendar after a year command."""
    if action == "freeze":
        return state.model_copy(update={"frozen": True, "frozen_at": at})
    if action == "unfreeze":
        return state.model_copy(update={"frozen": False, "frozen_at": None})
    if state.school_year is not None and (school_year is None or school_year <= state.school_year):
        return state  # a repeated or older switchover must not restart the grace period
    return state.model_copy(
        update={"frozen": False, "frozen_at": None, "school_year": school_year, "switchover_at": at}
    )


def latest_decisions(decisions: Iterable[SnapshotDecision]) -> dict[str, SnapshotDecision]:
    """The current status of each snapshot: its latest decision (topic order)."""
    latest: dict[str, SnapshotDecision] = {}
    for decision in decisions:
        latest[decision.snapshot_id] = decision
    return latest


def open_holds(decisions: Iterable[SnapshotDecision]) -> list[SnapshotDecision]:
    """Snapshots held by the guard and not decided since, oldest first."""
    held = [d for d in latest_decisions(decisions).values() if d.outcome == "held"]
    return sorted(held, key=lambda d: (utc(d.at), d.snapshot_id))

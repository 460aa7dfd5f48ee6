"""The J+1 synchronisation towards EduConnect, and when it runs. Pure.

Each night the bridge reads the guardians from the directory (the product of the ONDE feeds),
compares them with the snapshot it published the night before (:func:`changes`) and publishes
one ``EduConnectGuardianChanged`` per guardian whose children (legal responsibility), SMS
phone or identity changed. The new snapshot is then the only source of the attachment page's
proposals: a link the ONDE feed brought today is proposed after tomorrow's run, as EduConnect
learns it at J+1. A lost link removes the attachment (:func:`lost_attachments`).

:func:`next_run` places the run at a configured hour, Europe/Paris wall-clock time, across
daylight-saving changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.bridge import EduConnectGuardianChanged, GuardianFacts

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")


def _event_id(run_at: datetime, guardian_id: str) -> str:
    text = f"educonnect-sync\x1f{run_at.isoformat()}\x1f{guardian_id}"
    return hashlib.sha256(text.encode()).hexdigest()


def _change(
    run_at: datetime, old: GuardianFacts | None, new: GuardianFacts | None
) -> EduConnectGuardianChanged | None:
    current = new or old
    assert current is not None
    before = set(old.child_ids) if old else set()
    after = set(new.child_ids) if new else set()
    old_mobile = old.mobile if old else None
    new_mobile = new.mobile if new else None
    old_identity = (old.last_name, old.first_name) if old else None
    new_identity = (new.last_name, new.first_name) if new else None
    kind = "added" if old is None else "removed" if new is None else "modified"
    mobile_changed = old_mobile != new_mobile
    identity_changed = old_identity != new_identity
    if kind == "modified" and before == after and not mobile_changed and not identity_changed:
        return None
    return EduConnectGuardianChanged(
        event_id=_event_id(run_at, current.guardian_id),
        run_at=run_at,
        guardian_id=current.guardian_id,
        change=kind,
        jointure=current.jointure,
        children_gained=tuple(sorted(after - before)),
        children_lost=tuple(sorted(before - after)),
        mobile_changed=mobile_changed,
        mobile=new_mobile,
        identity_changed=identity_changed,
        last_name=new.last_name if new else None,
        first_name=new.first_name if new else None,
    )


def changes(
    previous: Mapping[str, GuardianFacts],
    current: Mapping[str, GuardianFacts],
    run_at: datetime,
) -> tuple[EduConnectGuardianChanged, ...]:
    """One event per guardian that appeared, disappeared or changed, by guardian id.

    Manual accounts are not EduConnect's business: they are left out on both sides.
    """
    old = {k: v for k, v in previous.items() if not v.manual}
    new = {k: v for k, v in current.items() if not v.manual}
    result = []
    for guardian_id in sorted(old.keys() | new.keys()):
        event = _change(run_at, old.get(guardian_id), new.get(guardian_id))
        if event is not None:
            result.append(event)
    return tuple(result)


def lost_links(events: Iterable[EduConnectGuardianChanged]) -> frozenset[tuple[str, str]]:
    """(guardian id, child id) pairs whose legal responsibility is gone."""
    return frozenset((e.guardian_id, child) for e in events for child in e.children_lost)


def next_run(now: datetime, hour: int, zone: ZoneInfo = PARIS) -> datetime:
    """The first instant strictly after ``now`` when the wall clock in ``zone`` shows ``hour``:00.

    On the spring-forward night an hour that does not exist (02:00 in Paris) runs at the first
    instant after the gap (03:00 CEST); on the fall-back night an hour that happens twice runs
    at its first occurrence only. ``now`` must be timezone-aware; the result is in UTC.
    """
    if now.tzinfo is None:
        raise ValueError("next_run needs an aware datetime")
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0..23, not {hour}")
    local_day = now.astimezone(zone).date()
    for offset in range(3):
        day = local_day + timedelta(days=offset)
        wall = datetime.combine(day, time(hour), tzinfo=zone)  # fold=0: first occurrence
        # A wall time in the spring-forward gap, read with fold=0, maps to the gap's end.
        instant = wall.astimezone(UTC)
        if instant > now:
            return instant
    raise AssertionError("unreachable: a day always has the hour")

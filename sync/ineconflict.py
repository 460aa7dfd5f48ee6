"""INE conflicts: records carrying one INE that are not the same person never merge.

Pure, called by :mod:`sync.reconcile` for pupil entities (keyed by INE, :mod:`sync.ids`). The
person the INE belongs to is ``EntityState.ine_persons``; whether a record is that person is
:mod:`sync.sameperson`'s rule.

- the first pupil record of an entity makes its identity the INE's person;
- a record that is the same person as it is taken (``records``) and the INE's person follows
  it (a name or birth-date correction); a key's earlier hold ends;
- a record that is not the same person, at once (another source key) or over time (after an
  earlier person held the INE, on the same key or another) is **held** (``ine_held``), never in
  ``records``: it drives no entry and makes no link;
- a new hold leaves the conflict **unresolved** (``ine_conflict_at``): the entity is frozen,
  its entry keeps its last content and login, its links stay as they were (withdrawn when it
  has no entry: nothing hangs on an account that does not exist), no login is asked (see
  :func:`frozen`); a record at a key already held stays held without freezing again;
- a held record removed (its INE changed in the source: routing retracts it from this entity)
  leaves; once nothing is held the conflict is over;
- ``entsync admin resolve-ine`` (:func:`resolve`): ``holder`` (a source key) names the record
  the INE belongs to (for a key whose record changed person: its current record): it becomes
  the INE's person, every record that is the same person is taken, the others are held until
  their INE changes; ``same_person`` takes every held record and accepts every identity. Either
  ends the freeze. A record that leaves ``records`` (found to be another person after it came
  first) takes with it from ``named_guardians`` the guardians only it named
  (:func:`_named_by_kept`): whichever child came first, the other's guardians get no account
  through this INE (unless its entry was written before the conflict: a guardian keeps the
  account it had). Naming a key the entity does not hold is refused (``holder-unknown``);
  nothing to change is ``unchanged``;
- every change of the held keys or of the freeze is audited (:func:`notice`): record ids only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from schemas.admin import AdminCommandDecided
from schemas.audit import RecordsHeld
from schemas.entities import Cause, IneResolutionRequested
from schemas.feed import Pupil, record_key
from schemas.state import AdmittedPupil, EntityState, SourceRecord
from sync import ids, sameperson
from sync.commands import RULE_RESOLVE_INE, CommandError, command_cause, decided_event
from sync.effective import utc


def frozen(state: EntityState) -> bool:
    """An unresolved conflict: the entity's entry, links and login request stay as they are."""
    return state.kind == "pupil" and state.ine_conflict_at is not None


def _later_admitted(
    admitted: AdmittedPupil | None, key: str, record: SourceRecord
) -> AdmittedPupil | None:
    """The latest admitted record (by cause time, then key) between ``admitted`` and this one."""
    pupil = record.pupil
    if pupil is None or pupil.held_reasons or not record.present:
        return admitted
    candidate = AdmittedPupil(source_key=key, at=record.at, pupil=pupil)
    if admitted is None or (utc(candidate.at), key) >= (utc(admitted.at), admitted.source_key):
        return candidate
    return admitted


def with_pupil_record(state: EntityState, key: str, record: SourceRecord) -> EntityState:
    """``record`` (present, a pupil) from ``key``: taken if it is the INE's person, else held."""
    assert record.pupil is not None
    found = sameperson.identity(record.pupil)
    known = state.ine_persons
    if not known or sameperson.matches(known, found):
        held = {k: r for k, r in state.ine_held.items() if k != key}
        return state.model_copy(
            update={
                "records": {**state.records, key: record},
                "ine_held": held,
                "ine_persons": sameperson.followed(known, found),
                "ine_conflict_at": state.ine_conflict_at if held else None,
                "admitted": _later_admitted(state.admitted, key, record),
            }
        )
    since = state.ine_conflict_at
    if key not in state.ine_held and since is None:
        since = record.at
    return state.model_copy(
        update={"ine_held": {**state.ine_held, key: record}, "ine_conflict_at": since}
    )


def without_held(state: EntityState, key: str) -> EntityState:
    """The record held at ``key`` is gone from this INE (removed, or moved to another INE)."""
    if key not in state.ine_held:
        return state
    held = {k: r for k, r in state.ine_held.items() if k != key}
    return state.model_copy(
        update={"ine_held": held, "ine_conflict_at": state.ine_conflict_at if held else None}
    )


# ----------------------------------------------------------------------------- admin command


def resolution_request(
    *, pupil_id: str, holder_jointure: str | None, same_person: bool, at: datetime
) -> IneResolutionRequested:
    """``entsync admin resolve-ine``: exactly one of a holder record and ``same_person``."""
    if (holder_jointure is None) == (not same_person):
        raise CommandError("name the record the INE belongs to, or say they are the same person")
    return IneResolutionRequested(
        entity_id=pupil_id,
        cause=command_cause(RULE_RESOLVE_INE, at),
        holder=None if holder_jointure is None else record_key("pupil", holder_jointure),
        same_person=same_person,
    )


def resolve(
    state: EntityState, inp: IneResolutionRequested, namespace: str
) -> tuple[EntityState, AdminCommandDecided]:
    """Settle the conflict as the operator says (see the module's rules)."""
    if inp.same_person:
        return _same_person(state, inp)
    holder = inp.holder or ""
    current = state.ine_held.get(holder) or state.records.get(holder)
    if current is None or current.pupil is None:
        return state, decided_event(inp, "resolve-ine", "refused", "holder-unknown")
    person = sameperson.identity(current.pupil)

    def same(record: SourceRecord) -> bool:
        pupil = record.pupil
        return pupil is not None and sameperson.same_person(sameperson.identity(pupil), person)

    records: dict[str, SourceRecord] = {}
    held: dict[str, SourceRecord] = {}
    for key in sorted(state.records.keys() | state.ine_held.keys()):
        older = state.records.get(key)
        newest = state.ine_held.get(key) or older
        assert newest is not None
        if same(newest):
            records[key] = newest
            continue
        if newest.present and newest.pupil is not None:
            held[key] = newest
        if older is not None and older is not newest and same(older):
            records[key] = older  # the holder's last content at a key that now names another
    admitted = state.admitted
    if admitted is not None and not same_pupil(admitted.pupil, person):
        admitted = None
    for key, record in records.items():
        admitted = _later_admitted(admitted, key, record)
    update = {
        "records": records,
        "ine_held": held,
        "ine_persons": (person,),
        "ine_conflict_at": None,
        "admitted": admitted,
        "named_guardians": _named_by_kept(state, records, namespace),
    }
    return _applied(state, update, inp)


def _named_by_kept(
    state: EntityState, kept: Mapping[str, SourceRecord], namespace: str
) -> tuple[str, ...]:
    """``named_guardians`` without the guardians named only by records now found to be another
    person. Such a record drove the entity while it was the INE's person (it came first); its
    guardians left there would get a ``former`` child link, so an account, that the other
    arrival order never gives them. (A guardian named only by an earlier version of such a
    record is not known here, and stays.)"""
    gone = [r.pupil for k, r in state.records.items() if kept.get(k) != r and r.pupil]
    staying = {j for r in kept.values() if r.pupil for j in r.pupil.guardian_jointures}
    dropped = {
        ids.guardian_id(namespace, j)
        for pupil in gone
        for j in pupil.guardian_jointures
        if j not in staying
    }
    return tuple(g for g in state.named_guardians if g not in dropped)


def same_pupil(pupil: Pupil, person: sameperson.PupilIdentity) -> bool:
    return sameperson.same_person(sameperson.identity(pupil), person)


def _same_person(
    state: EntityState, inp: IneResolutionRequested
) -> tuple[EntityState, AdminCommandDecided]:
    records = {**state.records, **state.ine_held}
    persons = set(state.ine_persons)
    admitted = state.admitted
    for key, record in sorted(records.items()):
        if record.pupil is not None:
            persons.add(sameperson.identity(record.pupil))
        admitted = _later_admitted(admitted, key, record)
    update = {
        "records": records,
        "ine_held": {},
        "ine_persons": tuple(sorted(persons, key=lambda p: p.model_dump_json())),
        "ine_conflict_at": None,
        "admitted": admitted,
    }
    return _applied(state, update, inp)


def _applied(
    state: EntityState, update: Mapping[str, object], inp: IneResolutionRequested
) -> tuple[EntityState, AdminCommandDecided]:
    after = state.model_copy(update=update)
    if after == state:
        return state, decided_event(inp, "resolve-ine", "unchanged")
    return after, decided_event(inp, "resolve-ine", "accepted")


# ----------------------------------------------------------------------------- audit


def notice(before: EntityState | None, after: EntityState, cause: Cause) -> RecordsHeld | None:
    """One audit event when the held keys or the freeze changed (record ids, no values)."""
    if after.kind != "pupil":
        return None
    was = (tuple(sorted(before.ine_held)), frozen(before)) if before else ((), False)
    now = (tuple(sorted(after.ine_held)), frozen(after))
    if now == was:
        return None
    parts = [cause.topic, str(cause.partition), str(cause.offset), cause.at.isoformat(), cause.rule]
    parts += [after.entity_id, ",".join(now[0]), str(now[1])]
    return RecordsHeld(
        event_id=hashlib.sha256("\x1f".join(parts).encode()).hexdigest(),
        entity_id=after.entity_id,
        entity_kind=after.kind,
        rule=sameperson.RULE,
        held=now[0],
        unresolved=now[1],
        cause=cause,
    )

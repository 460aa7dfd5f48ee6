"""Routing: one feed event → the entity inputs it causes, given the feed key's memory.

Pure: ``route(prev, event, cause, namespace)`` returns the feed key's next :class:`SourceState`
and the :class:`RecordSet` inputs to publish on ``entsync.entities.v1`` (keyed by entity id).

- an upsert whose version equals the last routed one → nothing (replays are no-ops);
- a record from an older extract than the newest that fed the key → nothing (a backfill of an
  old file cannot undo a newer file, e.g. bring back a pupil who left);
- an upsert → ``RecordSet`` to the entity computed from the record; when the key used to feed
  another entity (a pupil who got an INE moves from a jointure-keyed id to an INE-keyed id) the
  old entity first gets ``RecordSet(None)`` for this key;
- a deletion → ``RecordSet(None)`` to the entity the key fed (nothing if unknown or already
  deleted); the state keeps the entity id with version None;
- every upsert, changed or not, stamps the key with the file that fed it (scope, category,
  snapshot, time: :func:`sync.absence.seen`), the evidence absence is judged on;
- a record a complete extract names but that failed validation → nothing to publish, but the
  key is stamped as seen: bad data in a full file never makes a person disappear;
- snapshot markers route nothing here: their coordinator (:func:`sync.absence.coordinate`) keeps
  its own state under the snapshot key.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.entities import Cause, RecordSet
from schemas.feed import (
    FeedEvent,
    GuardianUpserted,
    PupilUpserted,
    RecordDeleted,
    RecordRejected,
    SchoolUpserted,
    SnapshotCompleted,
    SnapshotStarted,
    SourceRef,
    StaffUpserted,
)
from schemas.state import RecordKind, SourceState
from sync import absence, ids

Upserted = SchoolUpserted | PupilUpserted | GuardianUpserted | StaffUpserted
Snapshot = SnapshotStarted | SnapshotCompleted


@dataclass(frozen=True)
class Routed:
    """The feed key's next state (None: still unknown) and the inputs to publish, in order."""

    state: SourceState | None
    inputs: tuple[RecordSet, ...] = ()


def _kind_and_id(event: Upserted, namespace: str) -> tuple[RecordKind, str]:
    match event:
        case SchoolUpserted():
            return "school", ids.school_id(namespace, event.school.jointure)
        case PupilUpserted():
            return "pupil", ids.pupil_id(namespace, event.pupil)
        case GuardianUpserted():
            return "guardian", ids.guardian_id(namespace, event.guardian.jointure)
        case StaffUpserted():
            return "staff", ids.staff_id(namespace, event.staff.jointure)


def _record_set(event: Upserted, kind: RecordKind, entity_id: str, cause: Cause) -> RecordSet:
    return RecordSet(
        entity_id=entity_id,
        cause=cause,
        entity_kind=kind,
        source_key=event.key,
        version=event.version,
        school=event.school if isinstance(event, SchoolUpserted) else None,
        pupil=event.pupil if isinstance(event, PupilUpserted) else None,
        guardian=event.guardian if isinstance(event, GuardianUpserted) else None,
        staff=event.staff if isinstance(event, StaffUpserted) else None,
    )


def _removal(state: SourceState, cause: Cause) -> RecordSet:
    return RecordSet(
        entity_id=state.entity_id,
        cause=cause,
        entity_kind=state.kind,
        source_key=state.key,
        version=None,
    )


def route_upsert(prev: SourceState | None, event: Upserted, cause: Cause, namespace: str) -> Routed:
    kind, entity_id = _kind_and_id(event, namespace)
    if absence.is_stale(prev, event.source):
        return Routed(prev)  # an older extract than the newest that fed this key: ignored
    if prev is not None and prev.version == event.version and prev.entity_id == entity_id:
        return Routed(absence.seen(prev, event.source, cause.at))
    inputs: list[RecordSet] = []
    if prev is not None and prev.entity_id != entity_id and prev.version is not None:
        inputs.append(_removal(prev, cause))
    inputs.append(_record_set(event, kind, entity_id, cause))
    state = SourceState(key=event.key, kind=kind, entity_id=entity_id, version=event.version)
    return Routed(absence.seen(state, event.source, cause.at), tuple(inputs))


def _ignored(prev: SourceState | None, source: SourceRef) -> bool:
    """Nothing to act on: an unknown or deleted key, or an older extract than its newest."""
    return prev is None or prev.version is None or absence.is_stale(prev, source)


def route_deletion(prev: SourceState | None, event: RecordDeleted, cause: Cause) -> Routed:
    if _ignored(prev, event.source):
        return Routed(prev)
    assert prev is not None
    return Routed(prev.model_copy(update={"version": None}), (_removal(prev, cause),))


def route_rejection(prev: SourceState | None, event: RecordRejected, cause: Cause) -> Routed:
    """A rejected record changes nothing, but a complete extract naming it is evidence that the
    person is still there: the key is stamped as seen by the file (see :func:`absence.seen`)."""
    if _ignored(prev, event.source):
        return Routed(prev)
    assert prev is not None
    return Routed(absence.seen(prev, event.source, cause.at))


def route_snapshot(prev: SourceState | None, event: Snapshot, cause: Cause) -> Routed:
    """Complete-extract markers route no record: see :func:`sync.absence.coordinate`."""
    del event, cause
    return Routed(prev)


def route(prev: SourceState | None, event: FeedEvent, cause: Cause, namespace: str) -> Routed:
    """The next state of ``event.key`` and the entity inputs ``event`` causes."""
    match event:
        case SchoolUpserted() | PupilUpserted() | GuardianUpserted() | StaffUpserted():
            return route_upsert(prev, event, cause, namespace)
        case RecordDeleted():
            return route_deletion(prev, event, cause)
        case RecordRejected():
            return route_rejection(prev, event, cause)
        case SnapshotStarted() | SnapshotCompleted():
            return route_snapshot(prev, event, cause)

"""Lost stream state rebuilt from the directory, the durable truth.

A worker whose tables are empty while the directory holds entries (a broker rebuilt, a changelog
deleted, a first start on a directory another tool filled) must not decide from nothing: it would
reallocate logins, empty groups while the feed refills them and never notice who left. Pure:
:func:`rebuild` reads the directory's entries back into the states the core keeps.

- every entry entsync manages (``entsyncId``, ``entsyncKind``) gives back its entity: the record
  the entry was built from, read back from the entry (:mod:`sync.readback`), its login, account
  state and dates; schools, pupils, guardians, staff and manual accounts alike;
- the rest is derived by the core itself: each person's record and login are delivered as inputs
  through :func:`sync.reconcile.decide` (in memory, :mod:`sync.simulator`), so links, groups,
  guardians' children and every entity's ``outgoing`` are what the live worker would have; the
  ops that run decides are dropped;
- a disappeared or pre-deleted person gets its removal at ``entsyncDisappearedAt`` (and its
  pre-deletion date) after its record, as the feed and the sweeper gave them;
- class-teacher attachments come from the teachers' ``ENTAuxEnsClasses``, GAR managers from the
  ``Resp-Affect-GAR`` groups' members, bulk blocks from the blocked members of school groups
  (the earliest block of each: an entry shows no other);
- then every entity's ``applied`` is the entry as the directory holds it (None: no entry): the
  next decision diffs against what is there, not against what the rebuild inferred;
- login allocators hold every login of the directory, entsync's and anyone else's (manual
  accounts, other tools), at the allocator a claim of that login goes to
  (:func:`sync.logins.academic_base`): a login the directory has is never handed out again, and
  a staff member's own login is granted back to it;
- every feed key gets its routing state back: present (removed for a disappeared person), version
  :data:`RESTORED_VERSION` so that the next record from the feed is routed whatever it holds, and,
  as the file that fed it is unknown, the UAIs of the schools its entry names
  (``SourceState.restored_uais``): see :func:`sync.absence.in_scope`;
- restored records and links are dated :data:`EPOCH`, older than any feed message: the next
  record from the feed always wins.

Not in the directory, so not rebuilt (README "Lost stream state"): records of persons and schools
that have no entry (held pupils, held schools, guardians of held pupils), deleted accounts'
tombstones, teachers' detached schools of exercise, a block hidden behind an earlier one, the
school-year calendar and held snapshots.
An entry that cannot be read back is left alone and listed in :attr:`Rebuilt.skipped` (its
login stays taken); its entity is healed when its record comes back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import ValidationError

from schemas.entities import Cause, EntityInput, LoginAssigned, RecordSet
from schemas.feed import Category, Guardian, Pupil, School, Staff
from schemas.state import EntityState, SourceState
from sync import commands, ids, logins, readback
from sync.desired import Context
from sync.entries import Entry
from sync.legacy import canonical_names
from sync.reconcile import new_state, settle
from sync.simulator import PipelineError, World, run_to_quiescence

RESTORED_VERSION: Final = "restored"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
RULE_REBUILD: Final = "rebuild.from-directory"

_CATEGORY: Final[dict[str, Category]] = {
    "school": Category.SCHOOLS,
    "pupil": Category.PUPILS,
    "guardian": Category.GUARDIANS,
    "staff": Category.STAFF,
}


@dataclass(frozen=True)
class Rebuilt:
    """The two tables' states, and the managed entries left alone (entity id, reason)."""

    sources: dict[str, SourceState]
    entities: dict[str, EntityState]
    skipped: tuple[tuple[str, str], ...] = ()

    def counts(self) -> dict[str, int]:
        """Restored entities per kind (for logs: no personal data)."""
        counts: dict[str, int] = defaultdict(int)
        for state in self.entities.values():
            counts[state.kind] += 1
        return dict(sorted(counts.items()))


def _cause(at: datetime) -> Cause:
    return Cause(topic="directory", rule=RULE_REBUILD, at=at)


@dataclass(frozen=True)
class _Person:
    entity_id: str
    kind: str
    source_key: str | None  # feed key, None for manual accounts
    record: School | Pupil | Guardian | Staff | None
    entry: Entry


def _inputs(person: _Person) -> list[EntityInput]:
    """What the feed and the allocator gave this entity, as inputs to the core."""
    read = readback.account(person.entry)
    inputs: list[EntityInput] = []
    if read.login is not None:
        inputs.append(
            LoginAssigned(entity_id=person.entity_id, cause=_cause(EPOCH), login=read.login)
        )
    if person.record is None or person.source_key is None:
        return inputs
    kind = ids.kind_of(person.entity_id)
    inputs.append(
        RecordSet(
            entity_id=person.entity_id,
            cause=_cause(EPOCH),
            entity_kind=kind,
            source_key=person.source_key,
            version=RESTORED_VERSION,
            school=person.record if isinstance(person.record, School) else None,
            pupil=person.record if isinstance(person.record, Pupil) else None,
            guardian=person.record if isinstance(person.record, Guardian) else None,
            staff=person.record if isinstance(person.record, Staff) else None,
        )
    )
    if read.state in ("disappeared", "predeleted"):
        gone = read.disappeared_at or EPOCH
        inputs.append(
            RecordSet(
                entity_id=person.entity_id,
                cause=_cause(max(gone, EPOCH)),
                entity_kind=kind,
                source_key=person.source_key,
                version=None,
            )
        )
    return inputs


def _read_people(
    entries: Mapping[str, Entry], names: readback.Names
) -> tuple[list[_Person], list[tuple[str, str]]]:
    people: list[_Person] = []
    skipped: list[tuple[str, str]] = []
    for entry in entries.values():
        kind = readback.kind_of(entry)
        entity_id = readback.entity_id_of(entry)
        if kind is None or entity_id is None or kind == "group":
            continue
        try:
            record, key = readback.record(kind, entry, names)
        except (ValidationError, ValueError) as exc:
            skipped.append((entity_id, _reason(exc)))
            continue
        people.append(_Person(entity_id, kind, key, record, entry))
    return people, skipped


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        return "unreadable: " + ", ".join(fields)
    return f"unreadable: {exc}"


def _seed(people: Iterable[_Person], entries: Mapping[str, Entry], names: readback.Names) -> World:
    """States the inputs do not carry: guardians' past children, manual accounts, admin-command
    facts (class teachers, GAR managers, bulk blocks)."""
    world = World()
    for person in people:
        if person.kind == "guardian":
            # Its entry exists, so it had a child once (a pre-deleted child names none now).
            world.entities[person.entity_id] = new_state(person.entity_id).model_copy(
                update={"had_child": True}
            )
        if person.kind == "manual":
            manual = readback.manual_account(person.entry, names)
            world.entities[person.entity_id] = new_state(person.entity_id).model_copy(
                update={"manual": manual}
            )
    for group_id, teachers in readback.class_teachers(entries.values(), names).items():
        world.entities[group_id] = new_state(group_id).model_copy(
            update={"class_teachers": dict.fromkeys(sorted(teachers), EPOCH)}
        )
    for group_id, blocks in readback.blocks(entries, names).items():
        state = world.entities.get(group_id) or new_state(group_id)
        world.entities[group_id] = state.model_copy(update={"blocks": blocks})
    for group_id, (spec, managers) in readback.gar_groups(entries.values(), names).items():
        teachers_group = ids.group_id(
            names.namespace, commands.school_teachers_spec(spec.school_jointure)
        )
        state = world.entities.get(teachers_group) or new_state(teachers_group)
        world.entities[teachers_group] = state.model_copy(
            update={"gar_managers": dict.fromkeys(sorted(managers), EPOCH)}
        )
        world.entities[group_id] = readback.gar_group_state(group_id, spec, managers, EPOCH)
    return world


def _predelete(world: World, people: Iterable[_Person], ctx: Context) -> list[EntityInput]:
    """Pre-deleted persons: the sweeper's date, then one settle (links withdrawn as it did)."""
    emits: list[EntityInput] = []
    for person in people:
        read = readback.account(person.entry)
        if read.state != "predeleted" or read.predeleted_at is None:
            continue
        state = world.entities.get(person.entity_id)
        if state is None:
            continue
        decision = settle(
            state.model_copy(update={"predeleted_at": read.predeleted_at}),
            _cause(read.predeleted_at),
            ctx,
        )
        world.entities[person.entity_id] = decision.state
        emits.extend(decision.emits)
    return emits


def _allocators(entries: Mapping[str, Entry], namespace: str) -> dict[str, EntityState]:
    """Every login in the directory, held by the allocator of its base."""
    by_base: dict[str, dict[str, str]] = defaultdict(dict)
    for dn, entry in entries.items():
        login = readback.account(entry).login
        if login is None:
            continue
        holder = readback.entity_id_of(entry) or readback.foreign_holder(dn)
        by_base[logins.academic_base(login)][holder] = login
    allocators: dict[str, EntityState] = {}
    for base, allocations in by_base.items():
        allocator = ids.login_allocator_id(namespace, base)
        allocators[allocator] = new_state(allocator).model_copy(
            update={"allocations": dict(sorted(allocations.items()))}
        )
    return allocators


def _source_states(people: Iterable[_Person], names: readback.Names) -> dict[str, SourceState]:
    sources: dict[str, SourceState] = {}
    for person in people:
        if person.source_key is None or person.kind not in _CATEGORY:
            continue
        read = readback.account(person.entry)
        present = person.kind == "school" or read.state == "active"
        sources[person.source_key] = SourceState(
            key=person.source_key,
            kind=person.kind,
            entity_id=person.entity_id,
            version=RESTORED_VERSION if present else None,
            category=_CATEGORY[person.kind],
            at=EPOCH,
            restored_uais=readback.school_uais(person.entry, names),
        )
    return sources


def rebuild(entries: Mapping[str, Entry], ctx: Context) -> Rebuilt:
    """The states the core would hold for the directory ``entries`` (DN -> attributes, every
    entry under the base: managed ones and any other holding a login)."""
    canonical = {dn: canonical_names(entry) for dn, entry in entries.items()}
    names = readback.Names.of(canonical, ctx)
    people, skipped = _read_people(canonical, names)
    world = _seed(people, canonical, names)
    inputs = [inp for person in people for inp in _inputs(person)]
    try:
        run_to_quiescence((), ctx=ctx, world=world, inputs=inputs)
        emits = _predelete(world, people, ctx)
        run_to_quiescence((), ctx=ctx, world=world, inputs=emits)
    except PipelineError as exc:  # a bug, not bad data: the entries are the core's own
        raise RuntimeError(f"rebuild from the directory did not settle: {exc}") from exc
    by_id = {readback.entity_id_of(e): e for e in canonical.values()}
    entities: dict[str, EntityState] = {}
    for entity_id, state in world.entities.items():
        entry = by_id.get(entity_id)
        entities[entity_id] = state.model_copy(
            update={"applied": readback.applied(entry) if entry is not None else None}
        )
    for entry in canonical.values():
        # A group entry the records no longer explain: known, so that its next decision (it has
        # no member) removes it as the live worker would have.
        group_id = readback.entity_id_of(entry)
        if readback.kind_of(entry) == "group" and group_id and group_id not in entities:
            spec = readback.group_spec(entry, names)
            if spec is not None:
                entities[group_id] = new_state(group_id).model_copy(
                    update={"group": spec, "applied": readback.applied(entry)}
                )
    for entity_id, _ in skipped:
        entities.pop(entity_id, None)
    entities |= _allocators(canonical, ctx.namespace)
    return Rebuilt(_source_states(people, names), entities, tuple(sorted(skipped)))

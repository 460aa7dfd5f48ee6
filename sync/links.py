"""Outgoing links: which links an entity makes, and the messages that change them.

An entity states its links to other entities with ``LinkSet`` inputs; it remembers what it last
stated (``EntityState.outgoing``: ``'<relation>|<target id>'`` → payload digest) and only emits
the differences, so an unchanged record emits nothing.

No dangling reference: a link puts the sender's DN in the target's entry (a group's ``member``,
a guardian's ``ENTAuxPersRelEleveEleve``, a pupil's ``ENTEleveParents``), so a person links to
nobody while it has no entry (:func:`sync.reconcile.settle`: no login yet, a guardian without
a child, deleted; a pre-deleted person keeps its entry but is out of every perimeter). Its links
appear when its entry is decided and are withdrawn when it goes.

- pupil (when it has an admitted driver record): ``child`` to each guardian of the record (id from
  the guardian jointure) with the school and classes, and a ``former`` one to each guardian an
  earlier driver record named (:func:`named_guardians`); ``member`` of its school's pupils group
  and of each class's pupils group;
- guardian (with a record): ``member`` of the guardians group of each child's school and class;
  ``parent`` back to each child (the ``child`` links it received): the pupil names in
  ``ENTEleveParents`` only the guardians of its record that sent one, i.e. that have an entry;
- staff (with a record): ``member`` of the teachers group (or staff group for non-teachers) of its
  attachment school and of each school of exercise; teachers also ``member`` of the teachers
  group of each class they are attached to (the ``class`` links they received);
- a class (its pupils group) with pupils: ``class`` to each teacher attached to it by admin
  command (see :mod:`sync.commands`); when the class loses its last pupil these links are
  withdrawn, so the teacher loses the class and the class's teachers group goes;
- schools, other groups and login allocators link to nobody (the GAR group's members are sent by
  the school's teachers group when it accepts an admin command, not through this module).

Causes: a link message names the rule that made it (``link.*``), except in a chain started by an
admin command (rule ``admin.*``) or by the lifecycle (``lifecycle.*``: absence, sweeper,
switchover), which keeps that rule so that every directory change it leads to is audited as it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from schemas.entities import (
    LINK_BATCH_MAX,
    BlockSpec,
    Cause,
    ChildInfo,
    EntityInput,
    GroupSpec,
    LinkBatch,
    LinkSet,
    LoginStatus,
    ManualAccount,
)
from schemas.feed import Guardian, Pupil, Staff
from schemas.state import EntityState
from sync import ids
from sync.effective import Record
from sync.entries import staff_schools

Relation = Literal["child", "parent", "member", "class", "block", "claim", "grant"]

RULE_CHILD = "link.pupil-guardian"
RULE_PARENT = "link.guardian-pupil"
RULE_MEMBER = "link.group-member"
RULE_CLASS = "link.class-teacher"
RULE_BLOCK = "link.block"
RULE_CLAIM = "link.login-claim"
RULE_GRANT = "link.login-grant"
ADMIN_RULE_PREFIX = "admin."
KEPT_RULE_PREFIXES = (ADMIN_RULE_PREFIX, "lifecycle.")
_RULES: dict[str, str] = {
    "child": RULE_CHILD,
    "parent": RULE_PARENT,
    "member": RULE_MEMBER,
    "class": RULE_CLASS,
    "block": RULE_BLOCK,
    "claim": RULE_CLAIM,
    "grant": RULE_GRANT,
}


@dataclass(frozen=True)
class Link:
    relation: Relation
    target_id: str
    child: ChildInfo | None = None
    group: GroupSpec | None = None
    blocks: tuple[BlockSpec, ...] = ()
    login: str | None = None
    login_status: LoginStatus | None = None

    @property
    def key(self) -> str:
        return f"{self.relation}|{self.target_id}"

    def digest(self) -> str:
        return _payload_digest(self.child, self.group, self.blocks, self.login, self.login_status)


@functools.lru_cache(maxsize=1 << 16)  # pure; every settle digests the same payloads again
def _payload_digest(
    child: ChildInfo | None,
    group: GroupSpec | None,
    blocks: tuple[BlockSpec, ...],
    login: str | None = None,
    login_status: str | None = None,
) -> str:
    payload: dict[str, object] = {
        "child": child.model_dump(mode="json") if child else None,
        "group": group.model_dump(mode="json") if group else None,
    }
    # Only when set: the digests of the other links (remembered in 'outgoing') stay the same.
    if blocks:
        payload["blocks"] = [b.model_dump(mode="json") for b in blocks]
    if login is not None:
        payload["login"] = [login, login_status]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _member(spec: GroupSpec, namespace: str) -> Link:
    return Link("member", ids.group_id(namespace, spec), group=spec)


def pupil_links(pupil: Pupil, namespace: str, named: Sequence[str] = ()) -> list[Link]:
    """``named``: the guardians earlier records named (:func:`named_guardians`); those the record
    does not name any more get a ``former`` child link."""
    classes = tuple((c.school_jointure, c.code, c.label) for c in pupil.classes)
    info = ChildInfo(school_jointure=pupil.school_jointure, classes=classes, admitted=True)
    current = [ids.guardian_id(namespace, j) for j in pupil.guardian_jointures]
    links = [Link("child", g, child=info) for g in current]
    former = ChildInfo(former=True)
    links.extend(Link("child", g, child=former) for g in named if g not in current)
    if pupil.school_jointure:
        links.append(
            _member(GroupSpec(school_jointure=pupil.school_jointure, profile="pupils"), namespace)
        )
    for c in pupil.classes:
        spec = GroupSpec(
            school_jointure=c.school_jointure,
            profile="pupils",
            class_code=c.code,
            class_label=c.label,
        )
        links.append(_member(spec, namespace))
    return links


def named_guardians(state: EntityState, record: Record | None, namespace: str) -> tuple[str, ...]:
    """A pupil's guardians ever named by its driver record (``record``: the driver now).

    Links wait for the pupil's entry (its login), so a guardian named only by a record superseded
    before then would never hear of the child, and whether it got an account would depend on
    when the login came. Remembering every guardian named makes it depend on the records only.
    A record later found to be another person (INE conflict) takes its guardians back
    (:func:`sync.ineconflict.resolve`).
    """
    if not isinstance(record, Pupil):
        return state.named_guardians
    named = {
        *state.named_guardians,
        *(ids.guardian_id(namespace, j) for j in record.guardian_jointures),
    }
    return tuple(sorted(named))


def children(state: EntityState) -> list[str]:
    """A guardian's children now (``former`` child links excluded)."""
    return [c for c, p in state.links.get("child", {}).items() if not (p.child and p.child.former)]


def guardian_links(state: EntityState, namespace: str) -> list[Link]:
    links: list[Link] = []
    # Sorted by child id so that, when two children disagree on a class label, the choice is stable.
    for child_id, payload in sorted(state.links.get("child", {}).items()):
        child = payload.child or ChildInfo()
        if child.former:
            continue
        links.append(Link("parent", child_id))
        if child.school_jointure:
            links.append(
                _member(
                    GroupSpec(school_jointure=child.school_jointure, profile="guardians"), namespace
                )
            )
        for school, code, label in child.classes:
            spec = GroupSpec(
                school_jointure=school, profile="guardians", class_code=code, class_label=label
            )
            links.append(_member(spec, namespace))
    return links


def teacher_classes(state: EntityState, staff: Staff | None = None) -> list[GroupSpec]:
    """The classes (their pupils groups) a staff entity is attached to, by class entity id.

    Only classes of the schools the teacher works in now (``staff``: the record, when known): a
    teacher moved to another school by the staff feed has no class there, and keeps none of the
    old school's.
    """
    schools = set(staff_schools(staff)) if staff is not None else None
    return [
        payload.group
        for _, payload in sorted(state.links.get("class", {}).items())
        if payload.group is not None
        and payload.group.class_code
        and payload.group.school_jointure not in state.detached_schools
        and (schools is None or payload.group.school_jointure in schools)
    ]


def staff_links(staff: Staff, namespace: str, classes: Sequence[GroupSpec] = ()) -> list[Link]:
    profile: Literal["teachers", "staff"] = "teachers" if staff.is_teacher else "staff"
    links = [
        _member(GroupSpec(school_jointure=s, profile=profile), namespace)
        for s in staff_schools(staff)
    ]
    if staff.is_teacher:
        links.extend(
            _member(c.model_copy(update={"profile": "teachers"}), namespace) for c in classes
        )
    return links


def is_class_group(spec: GroupSpec | None) -> bool:
    """Whether ``spec`` is a class, i.e. its pupils group (the class exists while it has pupils)."""
    return spec is not None and spec.profile == "pupils" and bool(spec.class_code)


def class_links(state: EntityState) -> list[Link]:
    """A class with pupils: a ``class`` link to each teacher attached to it."""
    if not is_class_group(state.group) or not state.links.get("member"):
        return []
    return [Link("class", t, group=state.group) for t in sorted(state.class_teachers)]


def block_links(state: EntityState) -> list[Link]:
    """A school profile group with blocks: a ``block`` link to each member, with every block."""
    if not state.blocks or state.group is None or state.group.class_code:
        return []
    blocks = tuple(state.blocks[k] for k in sorted(state.blocks))
    return [Link("block", m, blocks=blocks) for m in sorted(state.links.get("member", {}))]


def desired_links(state: EntityState, record: Record | None, namespace: str) -> dict[str, Link]:
    """The links ``state``'s entity should have, by key (later duplicates win)."""
    links: list[Link] = []
    if isinstance(record, Pupil):
        links = pupil_links(record, namespace, state.named_guardians)
    elif isinstance(record, Guardian):
        links = guardian_links(state, namespace)
    elif isinstance(record, Staff):
        links = staff_links(record, namespace, teacher_classes(state, record))
    elif isinstance(record, ManualAccount) and record.profile == "guardian":
        # A foster family is one of its school's parents (never of a class: no child link).
        spec = GroupSpec(school_jointure=record.school_jointure, profile="guardians")
        links = [_member(spec, namespace)]
    elif state.kind == "group":
        links = class_links(state) + block_links(state)
    return {link.key: link for link in links}


NO_DN_RELATIONS: Final = frozenset({"claim", "grant"})
"""Links that write no DN into their target's entry (login claims and their answers)."""


def refused_write(
    before: EntityState | None, decided: EntityState, cause: Cause
) -> tuple[EntityState, tuple[LinkSet, ...]]:
    """The entity once the directory refused ``decided``'s write for good (the shell's news):
    its entry stays as ``before`` had it. A person the directory refused to add has no entry,
    so the links it sent with the add would name none: they are withdrawn, and sent again with
    its next try (at its next input)."""
    applied = before.applied if before is not None else None
    state = decided.model_copy(update={"applied": applied})
    if applied is not None or state.kind not in ids.PERSON_KINDS:
        return state, ()
    # A login claim names no DN: it stays (withdrawn, it would come back with a new grant, then
    # a new refused add, for ever).
    kept = {k: d for k, d in state.outgoing.items() if k.partition("|")[0] in NO_DN_RELATIONS}
    naming = {k: d for k, d in state.outgoing.items() if k not in kept}
    outgoing, emits = link_emits(state.entity_id, naming, {}, cause)
    return state.model_copy(update={"outgoing": {**kept, **outgoing}}), emits


def link_emits(
    entity_id: str, outgoing: dict[str, str], desired: dict[str, Link], cause: Cause
) -> tuple[dict[str, str], tuple[LinkSet, ...]]:
    """The new ``outgoing`` map and the ``LinkSet`` messages that get the targets there."""
    emits: list[LinkSet] = []
    new_outgoing: dict[str, str] = {}
    for key in sorted(outgoing.keys() | desired.keys()):
        link = desired.get(key)
        if link is None:
            relation, _, target = key.partition("|")
            emits.append(_link_set(entity_id, relation, target, False, Link("member", ""), cause))
            continue
        digest = link.digest()
        new_outgoing[key] = digest
        if outgoing.get(key) != digest:
            emits.append(_link_set(entity_id, link.relation, link.target_id, True, link, cause))
    return new_outgoing, tuple(emits)


def _link_set(
    member_id: str, relation: str, target_id: str, present: bool, link: Link, cause: Cause
) -> LinkSet:
    """The message for ``link`` (its payload; an absent link carries none)."""
    rule = cause.rule if cause.rule.startswith(KEPT_RULE_PREFIXES) else _RULES[relation]
    kind: Relation = relation if relation in _RULES else "member"  # type: ignore[assignment]
    return LinkSet(
        entity_id=target_id,
        cause=cause.model_copy(update={"rule": rule}),
        relation=kind,
        member_id=member_id,
        present=present,
        child=link.child,
        group=link.group,
        blocks=link.blocks,
        login=link.login,
        login_status=link.login_status,
    )


def pack_links(inputs: Iterable[EntityInput], limit: int = LINK_BATCH_MAX) -> list[EntityInput]:
    """The same inputs with the ``LinkSet`` runs to one entity packed into ``LinkBatch`` messages.

    Only links that follow each other among the inputs to their target are packed (any other
    input to the target closes the run), so every entity receives what it would have received,
    in the same order; a pack takes the place of its first link. At most ``limit`` links a pack;
    a run of one link stays a ``LinkSet``.
    """
    out: list[EntityInput | list[LinkSet]] = []
    open_runs: dict[str, list[LinkSet]] = {}
    for inp in inputs:
        if not isinstance(inp, LinkSet):
            open_runs.pop(inp.entity_id, None)
            out.append(inp)
            continue
        run = open_runs.get(inp.entity_id)
        if run is not None and len(run) < limit:
            run.append(inp)
            continue
        run = [inp]
        open_runs[inp.entity_id] = run
        out.append(run)
    return [_packed(item) if isinstance(item, list) else item for item in out]


def _packed(run: list[LinkSet]) -> EntityInput:
    if len(run) == 1:
        return run[0]
    return LinkBatch(entity_id=run[0].entity_id, cause=run[-1].cause, links=tuple(run))

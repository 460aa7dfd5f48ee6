"""Minimal directory operations and their audit events.

:func:`diff` compares the desired entry with the one last applied and returns the smallest op:
nothing when equal, ``AddEntry`` when there is no entry, ``DeleteEntry`` when none is desired,
otherwise a ``ModifyEntry`` replacing only the attributes whose value *sets* differ (attribute
names compared case-insensitively, as LDAP does; an empty tuple removes an attribute).

:func:`audit` describes one op as a :class:`DirectoryChanged` naming attributes and keyed value
digests, never values.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Literal

from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause, EntityKind
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry


def _by_lower_name(attributes: Attributes) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {name.lower(): (name, values) for name, values in attributes.items()}


def _same_set(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # Entries hold sorted, deduplicated values (sync.entries.build): equal tuples, mostly.
    return a == b or frozenset(a) == frozenset(b)


def diff(dn: str, desired: Attributes | None, applied: Attributes | None) -> DirectoryOp | None:
    """The op that turns ``applied`` (None: no entry) into ``desired`` (None: no entry)."""
    if desired is None:
        return None if applied is None else DeleteEntry(dn=dn)
    if applied is None:
        return AddEntry(dn=dn, attributes=dict(desired))
    want = _by_lower_name(desired)
    have = _by_lower_name(applied)
    changes: dict[str, tuple[str, ...]] = {}
    previous: dict[str, tuple[str, ...]] = {}
    for key, (name, values) in want.items():
        had = have.get(key)
        if had is None or not _same_set(had[1], values):
            changes[name] = tuple(sorted(set(values)))
            if had is not None:
                previous[name] = tuple(sorted(set(had[1])))
    for key, (name, _) in have.items():
        if key not in want:
            changes[name] = ()
    if not changes:
        return None
    return ModifyEntry(
        dn=dn,
        changes=dict(sorted(changes.items())),
        desired=dict(desired),
        previous=dict(sorted(previous.items())),
    )


def values_digest(values: tuple[str, ...] | None, key: bytes) -> str | None:
    """HMAC-SHA256 under ``key`` of the sorted values joined by NUL; None when absent.

    Keyed: many attribute values have few possible values (a birth date, a class name), so a
    plain hash of them could be reversed by trying every candidate; without the key it cannot.
    """
    if not values:
        return None
    if len(values) <= _REMEMBERED_VALUES:
        return _small_digest(tuple(values), key)
    return _digest(values, key)


def _digest(values: tuple[str, ...], key: bytes) -> str:
    return hmac.digest(key, "\x00".join(sorted(values)).encode(), "sha256").hex()


_REMEMBERED_VALUES = 4  # a few values: the same ones come back in every entry (classes, profiles)
_small_digest = functools.lru_cache(maxsize=1 << 13)(_digest)  # pure


def _changes(
    before: Attributes | None, after: Attributes | None, digest_key: bytes
) -> tuple[AttributeChange, ...]:
    old = _by_lower_name(before or {})
    new = _by_lower_name(after or {})
    result = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was is not None and now is not None and was[1] == now[1]:
            continue  # the same values (the same order): unchanged, whatever the order
        old_values = tuple(sorted(set(was[1]))) if was is not None else None
        new_values = tuple(sorted(set(now[1]))) if now is not None else None
        if old_values == new_values:
            continue
        name = now[0] if now is not None else old[key][0]
        result.append(
            AttributeChange.model_construct(  # str and str | None, made here: nothing to check
                name=name,
                before_digest=values_digest(old_values, digest_key),
                after_digest=values_digest(new_values, digest_key),
            )
        )
    return tuple(result)


def event_id(
    cause: Cause, entity_id: str, action: str, dn: str, changes: tuple[AttributeChange, ...]
) -> str:
    """Deterministic: the same cause and the same change of the same entry give the same id.

    The change digests are included so that two different changes with one cause (possible in
    dry-runs, where causes may lack an offset) never share an id. A cause with no Kafka position
    (an admin command: published by the CLI, so its offset is unknown to it) is also told apart
    by its rule and time, so that the same change made again by a later command (attach, detach,
    attach) gets a new id.
    """
    parts = [
        cause.topic,
        str(cause.partition),
        str(cause.offset),
        entity_id,
        action,
        dn,
        *(f"{c.name.lower()}:{c.before_digest}:{c.after_digest}" for c in changes),
    ]
    if cause.offset is None:
        parts += [cause.rule, cause.at.isoformat()]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def audit(
    op: DirectoryOp,
    *,
    before: Attributes | None,
    after: Mapping[str, tuple[str, ...]] | None,
    entity_id: str,
    entity_kind: EntityKind,
    cause: Cause,
    digest_key: bytes,
    schools: Iterable[str] = (),
) -> DirectoryChanged:
    """The audit event of ``op``, which turned ``before`` into ``after``, values digested under
    ``digest_key``; ``schools``: see :mod:`sync.schools`."""
    action: Literal["add", "modify", "delete"]
    match op:
        case AddEntry():
            action = "add"
        case ModifyEntry():
            action = "modify"
        case DeleteEntry():
            action = "delete"
    changes = _changes(before, after, digest_key)
    return DirectoryChanged(
        event_id=event_id(cause, entity_id, action, op.dn, changes),
        action=action,
        entity_id=entity_id,
        entity_kind=entity_kind,
        dn=op.dn,
        changes=changes,
        cause=cause,
        schools=tuple(sorted(set(schools))),
    )

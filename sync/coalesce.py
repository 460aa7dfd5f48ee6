"""Merge the directory ops that touch the same entry, with their audit events.

A class group may gain twenty members one input at a time, a pupil is added and then names the
guardians that answered: add, modify, modify... Writing only the net effect saves LDAP round
trips and the audit trail keeps one event per directory write. The shell merges the ops of one
batch, and of the batches it holds back while more input waits (``connectors.stream.write_window``):
:class:`Coalescer` takes them in order, in as many pieces as it is given. Per DN, in order:

- add + modify...      -> one add of the final attributes (not when the modify removes an
                          attribute: see below)
- modify + modify...   -> one modify (later values win; ``desired`` from the last, ``previous``
                          from before the first)
- add ... delete       -> one delete
- modify ... delete    -> one delete
- delete + add         -> kept as they are (an entry replaced is two changes)

What is merged must also be safe to replay over a directory a crashed run half wrote: its
batches may then come in other pieces, and the writer heals rather than fails (an add of an entry
that exists replaces the attributes it names; see ``connectors.ldap.writer``). So an add then a
delete is a delete, not nothing (the add may have been written before the crash), and an add is
not merged with a modify that removes an attribute (an add replayed over the entry would not
remove it).

A merged audit event keeps, per attribute, the digest before the first op and after the last,
the cause of the last op, and every earlier cause in ``merged_causes`` (an event merged before
brings its own). An event names at most :data:`MAX_CAUSES` causes, so that it stays a small
message: an entry with more is written more than once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry

Pair = tuple[DirectoryOp, DirectoryChanged]
MAX_CAUSES = 1000  # about 300 bytes each: an audit event stays well under a Kafka message's 1 MB


Change = tuple[str, str | None, str | None]  # an AttributeChange: name, before, after digests


@dataclass
class _Pending:
    """One write: its op and its audit event, held compactly (a window holds thousands): the
    event without its changes, which are tuples (about an eighth of the models' memory)."""

    op: DirectoryOp
    head: DirectoryChanged  # the audit event merged so far, ``changes`` left out
    changes: tuple[Change, ...]
    causes: int  # this write's causes, merged ones included

    def audit(self) -> DirectoryChanged:
        changes = tuple(
            AttributeChange.model_construct(name=name, before_digest=before, after_digest=after)
            for name, before, after in self.changes
        )
        return self.head.model_copy(update={"changes": changes})


def _compact(audit: DirectoryChanged) -> tuple[DirectoryChanged, tuple[Change, ...]]:
    changes = tuple((c.name, c.before_digest, c.after_digest) for c in audit.changes)
    return audit.model_copy(update={"changes": ()}), changes


def _apply_changes(attributes: Attributes, changes: Attributes) -> dict[str, tuple[str, ...]]:
    merged = {name: values for name, values in attributes.items()}
    lowered = {name.lower(): name for name in merged}
    for name, values in changes.items():
        existing = lowered.get(name.lower())
        if existing is not None:
            del merged[existing]
        merged[name] = values
        lowered[name.lower()] = name
    return merged


def _merge_previous(first: ModifyEntry, then: ModifyEntry) -> dict[str, tuple[str, ...]]:
    """What the entry had before ``first``: ``first``'s previous values, then those of the
    attributes only ``then`` changes (the values ``first`` left them with are its previous).

    An attribute with a value removed then put back (or added then removed) loses its previous
    values: the merged op adds and removes neither, and replayed over an entry ``first``
    already changed it would leave that value wrong, so the writer replaces it whole."""
    merged = dict(first.previous)
    middle = {name.lower(): values for name, values in first.changes.items()}
    final = {name.lower(): values for name, values in then.changes.items()}
    for name, values in list(merged.items()):
        key = name.lower()
        if key in final:
            before, between, after = set(values), set(middle.get(key, values)), set(final[key])
            if (before & after) - between or between - before - after:
                del merged[name]
    for name, values in then.previous.items():
        if name.lower() not in middle:
            merged[name] = values
    return merged


def _merge_ops(first: DirectoryOp, then: DirectoryOp) -> DirectoryOp | None:
    """The single op equivalent to ``first`` then ``then``, replayed or not; None: cannot merge."""
    match first, then:
        case AddEntry(), ModifyEntry():
            if any(not values for values in then.changes.values()):
                return None  # an add replayed over the entry would keep what the modify removes
            return AddEntry(first.dn, _apply_changes(first.attributes, then.changes))
        case AddEntry() | ModifyEntry(), DeleteEntry():
            return then
        case ModifyEntry(), ModifyEntry():
            return ModifyEntry(
                first.dn,
                _apply_changes(first.changes, then.changes),
                then.desired,
                _merge_previous(first, then),
            )
    return None


def _causes(audit: DirectoryChanged) -> tuple[Cause, ...]:
    return (*audit.merged_causes, audit.cause)


def _merge_audits(
    first: _Pending, then: DirectoryChanged, op: DirectoryOp
) -> tuple[DirectoryChanged, tuple[Change, ...]]:
    """One event for ``first``'s change then ``then``'s (``op``: both ops merged), compact."""
    before = {name.lower(): b for name, b, _ in first.changes}
    after = {name.lower(): a for name, _, a in first.changes}
    names = {name.lower(): name for name, _, _ in first.changes}
    for change in then.changes:
        key = change.name.lower()
        names.setdefault(key, change.name)
        before.setdefault(key, change.before_digest)
        after[key] = change.after_digest
    changes = tuple((names[k], before[k], after[k]) for k in sorted(names) if before[k] != after[k])
    action = (
        "add"
        if isinstance(op, AddEntry)
        else ("delete" if isinstance(op, DeleteEntry) else "modify")
    )
    head = first.head
    event_id = hashlib.sha256(f"{head.event_id}|{then.event_id}".encode()).hexdigest()
    merged = then.model_copy(
        update={
            "event_id": event_id,
            "action": action,
            "changes": (),
            "merged_causes": (*_causes(head), *then.merged_causes),
            "schools": tuple(sorted({*head.schools, *then.schools})),
        }
    )
    return merged, changes


class Coalescer:
    """Ops and their audit events taken in order (in any number of :meth:`add` calls); their net
    writes per DN in :meth:`pairs`. Pure: no I/O, the same pairs always give the same result."""

    def __init__(self, pairs: Iterable[Pair] = ()) -> None:
        self._slots: list[_Pending] = []
        self._last: dict[str, int] = {}  # lower-cased DN -> its latest slot
        self.taken = 0  # pairs added
        self.add(pairs)

    def add(self, pairs: Iterable[Pair]) -> None:
        for op, audit in pairs:
            self.taken += 1
            key = op.dn.lower()
            causes = 1 + len(audit.merged_causes)
            index = self._last.get(key)
            pending = self._slots[index] if index is not None else None
            if pending is not None and pending.causes + causes <= MAX_CAUSES:
                merged = _merge_ops(pending.op, op)
                if merged is not None:
                    pending.op = merged
                    pending.head, pending.changes = _merge_audits(pending, audit, merged)
                    pending.causes += causes
                    continue
            self._last[key] = len(self._slots)
            self._slots.append(_Pending(op, *_compact(audit), causes))

    def __len__(self) -> int:
        """The writes :meth:`pairs` would give."""
        return len(self._slots)

    def pairs(self) -> list[Pair]:
        """The net ops with one audit event each, in the order of each DN's first op."""
        return [(p.op, p.audit()) for p in self._slots]


def coalesce(pairs: Sequence[Pair]) -> list[Pair]:
    """Net ops of ``pairs`` with one audit event each; per-DN order is kept."""
    return Coalescer(pairs).pairs()

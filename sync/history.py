"""Does the topics' input history explain the directory? Judged before a replay or a dry run
predicts anything from that history.

The topics are the system's memory, and a memory can be lost: an in-memory broker restarted, a
cluster rebuilt, a topic deleted or cut by retention. A prediction from what is left would
delete every entry whose inputs are gone (2,148 of them after a broker restart). The rules:

1. Only the entries entsync manages are judged: they carry ``entsyncId`` or ``entsyncKind``
   (the auxiliary ``entsyncOperational``, :mod:`sync.entries`); any other entry is none of the
   history's business (:func:`is_managed`).
2. A managed entry is *explained* when the prediction from the history wrote its DN at some
   point (added, modified or deleted it; :attr:`sync.replay.Prediction.written`): the history
   holds the inputs that made the entry, whatever it became since. Knowing the entity is not
   enough: a guardian the history knows only as some pupil's guardian (a link, no record of its
   own) never had an entry written from the history, and a prediction would delete it.
3. Any other managed entry is *unexplained* (:func:`unexplained`): the inputs that wrote it are
   not in the history (lost, or never there: a directory migrated or written by another
   history). Nothing is predicted about it: the changes the prediction gives for it (it lacks
   the entry, so a deletion) are set aside, never reported as changes (:func:`set_aside`).
4. The history is *complete* for a directory when no entry is unexplained
   (:attr:`HistoryGaps.complete`); otherwise the gaps are described by kind with a few entity
   ids, never a value (:meth:`HistoryGaps.describe`).

Pure: the directory and the written DNs are given; DNs are compared case-folded, as LDAP does.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sync import ids
from sync.replay import EntryChange

OPERATIONAL = ("entsyncid", "entsynckind")
SAMPLE = 5
"""How many entity ids a description names."""
DRY_RUN = "nothing is predicted for them, no deletion"
REPLAY = "a replay would not rebuild them (--accept-incomplete-history: replay anyway)"


@dataclass(frozen=True, order=True)
class Unexplained:
    """One managed entry the history does not explain (no values: DN, id, kind)."""

    dn: str
    entity_id: str
    kind: str


@dataclass(frozen=True)
class HistoryGaps:
    """The managed entries of a directory the history does not explain, in DN order."""

    entries: tuple[Unexplained, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.entries

    @property
    def dns(self) -> frozenset[str]:
        return frozenset(e.dn.lower() for e in self.entries)

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(e.kind for e in self.entries).items()))

    def sample(self, n: int = SAMPLE) -> tuple[str, ...]:
        """Up to ``n`` entity ids, taken in turn from each kind (kinds in name order)."""
        lanes = [[e.entity_id for e in self.entries if e.kind == k] for k in self.by_kind()]
        turns = itertools.chain.from_iterable(itertools.zip_longest(*lanes))
        return tuple(itertools.islice((x for x in turns if x is not None), n))

    def describe(self, consequence: str = DRY_RUN) -> str:
        """The operator's message: how many, per kind, a few ids (pseudonymous, no values)."""
        n = len(self.entries)
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.by_kind().items())
        more = ", ..." if n > SAMPLE else ""
        return (
            f"the topics' input history does not explain {n} managed "
            f"{'entry' if n == 1 else 'entries'} of the directory ({kinds}; e.g. "
            f"{', '.join(self.sample())}{more}): the inputs that wrote them are not in the topics "
            "(topics lost, e.g. the local broker restarted, or truncated; or the directory was "
            f"written by another history); {consequence}"
        )

    def to_json(self) -> dict[str, object]:
        return {"total": len(self.entries), "kinds": self.by_kind(), "ids": list(self.sample())}


def _attribute(attrs: Mapping[str, Sequence[str]], name: str) -> str | None:
    for key, values in attrs.items():
        if key.lower() == name and values:
            return str(values[0])
    return None


def is_managed(attrs: Mapping[str, Sequence[str]]) -> bool:
    """Rule 1: the entry carries entsync's operational id or kind."""
    return any(_attribute(attrs, name) is not None for name in OPERATIONAL)


def _kind(entity_id: str | None, attrs: Mapping[str, Sequence[str]]) -> str:
    kind = _attribute(attrs, "entsynckind")
    if kind is not None:
        return kind.lower()
    try:
        return ids.kind_of(entity_id or "")
    except ValueError:
        return "unknown"


def _rdn_value(dn: str) -> str:
    """An entry's RDN value: an entity id, a school jointure or a group name (no person data)."""
    return dn.split(",", 1)[0].partition("=")[2]


def unexplained(
    directory: Mapping[str, Mapping[str, Sequence[str]]], written: Collection[str]
) -> HistoryGaps:
    """Rules 1-3: the managed entries of ``directory`` whose DN the history never wrote.

    ``written``: the case-folded DNs the prediction from the history wrote at some point.
    """
    gaps = []
    for dn, attrs in directory.items():
        if not is_managed(attrs) or dn.lower() in written:
            continue
        entity_id = _attribute(attrs, "entsyncid")
        gaps.append(Unexplained(dn, entity_id or _rdn_value(dn), _kind(entity_id, attrs)))
    return HistoryGaps(tuple(sorted(gaps, key=lambda e: (e.dn.lower(), e.dn))))


def set_aside(changes: Iterable[EntryChange], gaps: HistoryGaps) -> list[EntryChange]:
    """Rule 3: the changes, without those about unexplained entries (their order kept)."""
    unknown = gaps.dns
    return [change for change in changes if change.dn.lower() not in unknown]

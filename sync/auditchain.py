"""Tamper evidence of the audit store: one hash chain per topic partition (pure).

Every consumed offset of the audit topic becomes one stored record (an event, a duplicate of an
event already stored, or an invalid message), and the records of a partition are chained in
offset order: ``hash = sha256(prev_hash "\\n" canonical_json(fields))``, where ``fields`` are all
the stored columns of the record (its offset among them) and ``prev_hash`` the hash of the record
before it, or the partition's start: :data:`GENESIS`, or after pruning the hash of the last pruned
record (the anchor). The partition's head (last offset and hash) is stored with the consumer
position, in the same transaction as the records.

:func:`verify_chain` walks a partition and reports precisely: a record whose content no longer
matches its hash (``changed``), records missing between two offsets (``missing``), a record that
does not follow the one before it (``broken_link``: the one before was changed and re-hashed, or
one was inserted), a tail that no longer reaches the head (``truncated``), and offsets the broker
never delivered (``gap``: reported at consume time, part of the chain, not tampering).

A chain alone cannot resist someone who rewrites the whole tail and the head: the consumer logs
each head (``audit.chain.head``) and pruning logs each anchor, so copies kept elsewhere can be
compared with ``entsync audit verify``'s output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

GENESIS: Final = "0" * 64
STATUS: Final = "status"
EVENT_ID: Final = "event_id"
EVENT: Final = "event"
DUPLICATE: Final = "duplicate"

Scalar = str | int | None
Fields = Mapping[str, Scalar]
FindingKind = Literal["changed", "missing", "broken_link", "truncated", "no_head", "gap"]


def canonical(fields: Fields) -> bytes:
    return json.dumps(
        dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def link_hash(prev_hash: str, fields: Fields) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(fields)).hexdigest()


@dataclass(frozen=True)
class Link:
    """A stored record of a partition's chain."""

    offset: int
    fields: Fields
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainEnd:
    """The start of a partition's chain (genesis or anchor) or its head.

    ``offset`` is the last offset covered (None: none, the chain starts before offset 0).
    """

    offset: int | None
    hash: str

    @property
    def next_offset(self) -> int:
        return 0 if self.offset is None else self.offset + 1


START: Final = ChainEnd(None, GENESIS)


@dataclass(frozen=True)
class Gap:
    """Offsets ``start`` to ``end - 1`` of a partition were never delivered."""

    start: int
    end: int

    def describe(self) -> str:
        last = self.end - 1
        return f"offset {self.start}" if last == self.start else f"offsets {self.start}-{last}"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    offset: int | None
    detail: str
    missing: Gap | None = None

    @property
    def tampering(self) -> bool:
        return self.kind != "gap"


@dataclass
class ChainCheck:
    records: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.tampering for f in self.findings)

    @property
    def gaps(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "gap"]


def verify_chain(start: ChainEnd, links: Iterable[Link], head: ChainEnd) -> ChainCheck:
    """Walk one partition's records in offset order from ``start`` and compare with ``head``.

    After a finding the walk goes on from the stored hash, so one alteration is reported once
    (or twice when the record after it no longer follows it) and the rest still verifies.
    """
    check = ChainCheck()
    expected, previous = start.hash, start.offset
    for link in links:
        check.records += 1
        jump = Gap(0 if previous is None else previous + 1, link.offset)
        linked = link.prev_hash == expected
        before = "the chain's start" if previous is None else f"offset {previous}"
        if not linked and jump.end > jump.start:
            check.findings.append(
                Finding(
                    "missing",
                    link.offset,
                    f"chain broken between {before} and offset {link.offset}: record(s) at "
                    f"{jump.describe()} removed, or the record before changed and re-hashed",
                    missing=jump,
                )
            )
        elif not linked:
            check.findings.append(
                Finding(
                    "broken_link",
                    link.offset,
                    f"record at offset {link.offset} does not follow {before}: that record was "
                    "changed and re-hashed, or a record was inserted",
                )
            )
        elif jump.end > jump.start:
            check.findings.append(
                Finding("gap", jump.start, f"{jump.describe()} never delivered by the broker")
            )
        if link_hash(link.prev_hash, link.fields) != link.hash:
            check.findings.append(
                Finding("changed", link.offset, f"record at offset {link.offset} was changed")
            )
        expected, previous = link.hash, link.offset
    if (previous, expected) != (head.offset, head.hash):
        check.findings.append(_tail(previous, head))
    return check


def _tail(last: int | None, head: ChainEnd) -> Finding:
    if head.offset is not None and (last is None or last < head.offset):
        first = 0 if last is None else last + 1
        span = Gap(first, head.offset + 1).describe()
        return Finding("truncated", head.offset, f"record(s) at {span} up to the head removed")
    return Finding(
        "truncated",
        last,
        f"the last record (offset {last}) is not the stored head (offset {head.offset})",
    )


def offset_gaps(after: int | None, offsets: Iterable[int]) -> list[Gap]:
    """Holes in increasing ``offsets`` following the last offset ``after`` (None: before 0)."""
    gaps: list[Gap] = []
    expected = 0 if after is None else after + 1
    for offset in offsets:
        if offset > expected:
            gaps.append(Gap(expected, offset))
        expected = offset + 1
    return gaps


@dataclass(frozen=True)
class Incoming:
    """A consumed message, indexed: ``fields`` carry :data:`STATUS` and :data:`EVENT_ID`."""

    offset: int
    fields: Fields


@dataclass(frozen=True)
class Appended:
    links: list[Link]
    gaps: list[Gap]
    duplicates: int
    head: ChainEnd


class OffsetRegressed(ValueError):
    """A message below the stored position: the topic was recreated or the store is not its."""

    def __init__(self, offset: int, expected: int) -> None:
        super().__init__(f"offset {offset} is below the stored position {expected}")
        self.offset = offset
        self.expected = expected


def append(head: ChainEnd, incoming: Sequence[Incoming], known: Container[str]) -> Appended:
    """Chain consumed messages after ``head``.

    An event whose id is ``known`` (already stored) or earlier in the batch is chained as a
    ``duplicate``: the offset is accounted for, the event is stored once.
    """
    links: list[Link] = []
    seen: set[str] = set()
    duplicates = 0
    for message in incoming:
        if message.offset < (links[-1].offset + 1 if links else head.next_offset):
            raise OffsetRegressed(message.offset, head.next_offset)
        fields = dict(message.fields)
        event_id = fields.get(EVENT_ID)
        if fields.get(STATUS) == EVENT and isinstance(event_id, str):
            if event_id in seen or event_id in known:
                fields[STATUS] = DUPLICATE
                duplicates += 1
            seen.add(event_id)
        prev = links[-1].hash if links else head.hash
        links.append(Link(message.offset, fields, prev, link_hash(prev, fields)))
    gaps = offset_gaps(head.offset, (link.offset for link in links))
    end = ChainEnd(links[-1].offset, links[-1].hash) if links else head
    return Appended(links, gaps, duplicates, end)

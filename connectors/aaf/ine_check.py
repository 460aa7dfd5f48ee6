"""INE conflicts among the scanned files: records sharing an INE that are not the same person.

A pupil entity is keyed by its INE; two records carrying one INE whose names and birth dates
both differ (:mod:`sync.sameperson`) are held by the core with reason ``ine_conflict``. The
report names each such record (file, line, record id, the other record ids, the rule), never a
value. Memory stays flat: each file's pupils go to an external sort (:class:`IneSide`) as keyed
digests of the INE and the folded names with the birth date, which is all the rule compares.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from datetime import date

from connectors.aaf.extsort import LineSorter
from connectors.aaf.report import ReportItem, Severity
from schemas.feed import HoldReason, Pupil
from schemas.state import PupilIdentity
from sync import sameperson
from sync.admission import HOLD_MESSAGES

RULE = HoldReason.INE_CONFLICT.value
_FIELD = "ENTEleveINE"


def _digest(text: str) -> str:
    # Equality is all the rule needs; the temporary files never hold the values themselves.
    return hashlib.blake2b(text.encode(), digest_size=12, person=b"entsync-ine").hexdigest()


class IneSide:
    """One file's pupils with an INE, kept on disk: ``ine\\tnames\\tbirth\\tjointure\\tline``."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines = LineSorter()

    def add(self, pupil: Pupil, line: int | None) -> None:
        if not pupil.ine:
            return
        found = sameperson.identity(pupil)
        born = found.birth_date.isoformat() if found.birth_date else "-"
        self.lines.add(
            f"{_digest(pupil.ine.upper())}\t{_digest(found.names)}\t{born}\t{pupil.jointure}"
            f"\t{line or 0}"
        )

    def close(self) -> None:
        self.lines.close()


Seen = tuple[str, int, PupilIdentity, str]  # record id, line, identity (digests), file


def _rows(side: IneSide) -> Iterator[tuple[str, Seen]]:
    for text in side.lines.sorted():
        ine, names, born, jointure, line = text.split("\t")
        birth = None if born == "-" else date.fromisoformat(born)
        yield ine, (jointure, int(line), PupilIdentity(names=names, birth_date=birth), side.file)


def _conflicts(group: list[Seen]) -> list[ReportItem]:
    items = []
    for i, (jointure, line, found, file) in enumerate(group):
        others = sorted(
            {
                other
                for j, (other, _, them, _) in enumerate(group)
                if j != i and not sameperson.same_person(found, them)
            }
        )
        if others:
            items.append(
                ReportItem(
                    file=file,
                    line=line or None,
                    record_id=jointure,
                    field=_FIELD,
                    rule=RULE,
                    message=f"{HOLD_MESSAGES[HoldReason.INE_CONFLICT]}: same INE as record(s) "
                    f"{', '.join(others)} ({sameperson.RULE})",
                    severity=Severity.HELD,
                )
            )
    return items


def check_ine_sides(sides: list[IneSide], max_items: int = 100_000) -> list[ReportItem]:
    """One held item per record sharing its INE with a record that is not the same person."""
    items: list[ReportItem] = []
    group: list[Seen] = []
    current: str | None = None
    for ine, seen in heapq.merge(*(_rows(s) for s in sides), key=lambda row: row[0]):
        if ine != current:
            if len(group) > 1:
                items.extend(_conflicts(group))
            current, group = ine, []
        group.append(seen)
    if len(group) > 1:
        items.extend(_conflicts(group))
    return items[:max_items]

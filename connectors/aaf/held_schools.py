"""Who waits for a held school: pupils and staff of one call naming a school that is held.

A school whose record lacks a value the SDET schema makes mandatory (its SIREN) is published held
and gets no directory entry. Its pupils and staff are still published; the report says how many
records of the call name each held school, so the operator knows what the missing value blocks.
Counts only, by school jointure (not personal data); memory is one counter per school named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from connectors.aaf.report import ReportItem, Severity
from connectors.aaf.scope import record_schools
from schemas.feed import HoldReason, Pupil, School, Staff
from sync.admission import HOLD_MESSAGES

WAITING_RULE = "waits_for_held_school"


class HeldSchools:
    """Per file: the schools published held, and the pupils and staff naming each school."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[HoldReason, ...]] = {}
        self.pupils: Counter[str] = Counter()
        self.staff: Counter[str] = Counter()

    def add(self, record: object) -> None:
        if isinstance(record, School):
            if record.held_reasons:
                self.held[record.jointure] = record.held_reasons
            else:
                self.held.pop(record.jointure, None)  # a later valid record in the same file
        elif isinstance(record, Pupil):
            self.pupils.update(record_schools(record))
        elif isinstance(record, Staff):
            self.staff.update(record_schools(record))


def waiting_items(files: Iterable[tuple[str, HeldSchools]]) -> list[ReportItem]:
    """One item per held school of the call: the records of the call that name it."""
    found = list(files)
    pupils: Counter[str] = Counter()
    staff: Counter[str] = Counter()
    for _, seen in found:
        pupils.update(seen.pupils)
        staff.update(seen.staff)
    items = []
    for file, seen in found:
        for school, reasons in sorted(seen.held.items()):
            why = "; ".join(HOLD_MESSAGES[r] for r in reasons)
            items.append(
                ReportItem(
                    file=file,
                    record_id=school,
                    field="ENTStructureSIREN",
                    rule=WAITING_RULE,
                    message=f"{why}: {pupils[school]} pupil and {staff[school]} staff records "
                    "of this call name it and wait for it",
                    severity=Severity.HELD,
                )
            )
    return items

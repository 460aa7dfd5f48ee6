"""Values of one call that the directory would confuse, reported before anything is published.

The directory compares class codes, jointures and logins ignoring case (``caseIgnoreMatch``,
:mod:`sync.equality`); the core keys what lands in an RDN on that equality and decides login
conflicts by rule (:mod:`sync.claims`). This module tells the operator, per call, where that
happens, naming record ids and schools, never a value:

- ``class_code_case_conflict``: one school's class codes that differ only in ways the directory
  ignores (``C02``, ``c02``): one class, one group per profile, named by the smallest spelling;
- ``jointure_case_conflict``: two records of one kind whose jointures the directory holds
  equal. Two schools are one entry (one entity); two persons stay two entries (their DNs carry
  entity ids) that a lookup by ``ENTPersonJointure`` cannot tell apart;
- ``academic_login_shared``: staff records with one academic login (held, both of them);
- ``academic_login_generated``: a staff member's academic login is the generated login base of
  a pupil or guardian of the call: the pupil gets a suffixed login if the staff record is synced
  first (the staff feed comes first in the year), else the staff member is held
  (``academic_login_taken``).

Memory: class codes and staff logins are kept per value (few); a person's jointure only when it
has a cased letter (ONDE jointures are digits); pupils' and guardians' login bases as 8-byte
digests.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors.aaf.report import ReportItem, Severity
from schemas.feed import Guardian, HoldReason, Pupil, School, Staff
from sync import equality, logins
from sync.admission import HOLD_MESSAGES

CLASS_RULE = "class_code_case_conflict"
JOINTURE_RULE = "jointure_case_conflict"
SHARED_RULE = HoldReason.ACADEMIC_LOGIN_SHARED.value
GENERATED_RULE = "academic_login_generated"

Where = tuple[str, int | None, str]  # file, line, record id


def _digest(base: str) -> int:
    return int.from_bytes(hashlib.blake2b(base.encode(), digest_size=8).digest(), "big")


@dataclass
class ConflictsSeen:
    """Per file: what the conflicts of the call are judged on."""

    file: str
    codes: dict[tuple[str, str], dict[str, Where]] = field(default_factory=dict)
    jointures: dict[tuple[str, str], dict[str, Where]] = field(default_factory=dict)
    academic: dict[str, list[Where]] = field(default_factory=dict)
    bases: array[int] = field(default_factory=lambda: array("Q"))

    def add(self, record: object, line: int | None) -> None:
        if not isinstance(record, School | Pupil | Guardian | Staff):
            return
        where = (self.file, line, record.jointure)
        if any(ch.lower() != ch.upper() for ch in record.jointure):
            kind = type(record).__name__.lower()
            spellings = self.jointures.setdefault((kind, equality.key(record.jointure)), {})
            spellings.setdefault(record.jointure, where)
        if isinstance(record, Pupil):
            for c in record.classes:
                key = (equality.key(c.school_jointure), equality.key(c.code))
                self.codes.setdefault(key, {}).setdefault(c.code, where)
        if isinstance(record, Pupil | Guardian):
            self.bases.append(_digest(logins.login_base(record.first_name, record.last_name, "")))
        elif isinstance(record, Staff) and record.academic_login:
            self.academic.setdefault(equality.prepare(record.academic_login), []).append(where)


def _item(where: Where, field_: str, rule: str, message: str, severity: Severity) -> ReportItem:
    file, line, record_id = where
    return ReportItem(
        file=file,
        line=line,
        record_id=record_id,
        field=field_,
        rule=rule,
        message=message,
        severity=severity,
    )


def conflict_items(files: Iterable[ConflictsSeen]) -> list[ReportItem]:
    """The conflicts of the whole call, one item per record involved (see the docstring)."""
    seen = list(files)
    codes: dict[tuple[str, str], dict[str, Where]] = {}
    jointures: dict[tuple[str, str], dict[str, Where]] = {}
    academic: dict[str, list[Where]] = {}
    for s in seen:
        for key, spellings in s.codes.items():
            merged = codes.setdefault(key, {})
            for spelling, where in spellings.items():
                merged.setdefault(spelling, where)
        for key, spellings in s.jointures.items():
            merged = jointures.setdefault(key, {})
            for spelling, where in spellings.items():
                merged.setdefault(spelling, where)
        for login, wheres in s.academic.items():
            academic.setdefault(login, []).extend(wheres)
    wanted = {_digest(logins.academic_base(login)) for login in academic}
    bases = {d for s in seen for d in s.bases if d in wanted} if wanted else set()
    items: list[ReportItem] = []
    for (school, _), spellings in sorted(codes.items()):
        if len(spellings) < 2:
            continue
        ids = ", ".join(w[2] for _, w in sorted(spellings.items()))
        message = (
            f"school {school}: class codes differing only in case or spacing are one class to "
            f"the directory (one group per profile, named by the smallest spelling); records {ids}"
        )
        items += [
            _item(w, "ENTPersonClasses", CLASS_RULE, message, Severity.WARNING)
            for _, w in sorted(spellings.items())
        ]
    for (kind, _), spellings in sorted(jointures.items()):
        if len(spellings) < 2:
            continue
        ids = ", ".join(sorted(spellings))
        what = "one school entry" if kind == "school" else "two entries a lookup cannot tell apart"
        message = f"{kind} jointures {ids} differ only in case: {what} in the directory"
        items += [
            _item(w, "ENTPersonJointure", JOINTURE_RULE, message, Severity.WARNING)
            for _, w in sorted(spellings.items())
        ]
    for login, wheres in sorted(academic.items()):
        if len({w[2] for w in wheres}) > 1:
            ids = ", ".join(sorted({w[2] for w in wheres}))
            message = f"{HOLD_MESSAGES[HoldReason.ACADEMIC_LOGIN_SHARED]}; staff records {ids}"
            items += [
                _item(w, "ENTPersonLogin", SHARED_RULE, message, Severity.HELD) for w in wheres
            ]
        if _digest(logins.academic_base(login)) in bases:
            message = (
                "a pupil or guardian of this call has this academic login as login base: they "
                "get a suffixed login when this staff record is synced first, else this staff "
                "member is held (academic_login_taken)"
            )
            items.append(
                _item(wheres[0], "ENTPersonLogin", GENERATED_RULE, message, Severity.WARNING)
            )
    return items

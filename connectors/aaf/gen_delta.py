"""The ``Eleve`` delta of a synthetic extract, the day after the full files.

Newcomers of the "premières classes" arrive late (one still without INE, so held), a pupil moves
to another class, a provisional admission is confirmed (its hold is released) and a pupil leaves.
Modifications carry only the changed attributes; the expected records are the full records the
parser builds once the modification is completed against the full extract.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.aaf.filename import format_file_name
from connectors.aaf.gen_model import SchoolClass, SchoolInfo
from connectors.aaf.xmlwrite import AafWriter
from schemas.feed import Category, ClassAssignment, HoldReason

if TYPE_CHECKING:
    from connectors.aaf.generator import _Generator


def write_delta(gen: _Generator, school: SchoolInfo) -> tuple[Path, int]:
    c = gen.c
    day = c.extract_date + timedelta(days=1)
    path = gen.out / format_file_name(c.scope, False, day, Category.PUPILS)
    uai = school.record.jointure
    with AafWriter(path, Category.PUPILS, c.encoding) as w:
        families = sorted(gen.families0, key=lambda f: -len(f.guardians))
        if families:  # a younger sibling in TPS, INE not attributed yet
            gen.pupil(w, school, families[0], "ine_missing", level_hint="TPS", delta=True)
        if len(families) > 1:  # a CP newcomer
            gen.pupil(w, school, families[1], None, level_hint="CP", delta=True)
        clean = [p for p, fault in gen.reservoir if fault is None and p.classes]
        if clean:  # a class change
            pupil = clean.pop(0)
            others = [k for k in school.classes if k.code != pupil.classes[0].code]
            target = (
                others[0] if others else SchoolClass("C09", "ULIS ÉCOLE", (pupil.level or "CP",))
            )
            value = f"{uai}${c.year}${'-'.join(target.levels)}${target.code}${target.label}"
            expected = pupil.model_copy(
                update={
                    "classes": (
                        ClassAssignment(school_jointure=uai, code=target.code, label=target.label),
                    )
                }
            )
            gen.emit(
                w, "modify", pupil.jointure, {"ENTPersonClasses": [value]}, expected, delta=True
            )
        for pupil, fault in gen.reservoir:
            if fault == "not_admitted":  # provisional admission confirmed: hold released
                holds = tuple(
                    h for h in pupil.held_reasons if h is not HoldReason.NOT_ADMITTED_DEFINITIVELY
                )
                expected = pupil.model_copy(
                    update={"admitted_definitively": True, "held_reasons": holds}
                )
                gen.emit(
                    w,
                    "modify",
                    pupil.jointure,
                    {"ENTEleveAdmissionDefinitive": ["O"]},
                    expected,
                    delta=True,
                )
                break
        if clean:  # a departure
            gen.emit(w, "delete", clean[-1].jointure, None, None, delta=True)
    return path, w.count

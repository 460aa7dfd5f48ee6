"""Deterministic synthetic AAF extracts: same config and seed → byte-identical files.

Writes, in the real naming and format, the full files ``EtabEducNat``, ``Eleve``,
``PersRelEleve`` and ``PersEducNat`` of one scope, and an ``Eleve`` delta the next day (newcomers
arriving late, a class change, an admission confirmed, a departure). Records are streamed to the
files school by school, so memory stays flat whatever the size.

What the data contains: French names with accents, hyphens and apostrophes (sometimes sent in NFD,
with ’ or doubled spaces); siblings sharing guardians; separated parents at two addresses; a family
with children in two schools; foster carers and the child-welfare service; tutors; "premières
classes" (TPS-PS, CP) whose newcomers often lack an INE; pupils failing each admission rule; a
director per school, teachers, AESH, trainees (PES) and replacement teachers exercising in two
schools; phones in every French shape and a few overseas numbers. With ``faults`` a handful of
records also carry invalid optional fields (warnings) and one pupil has no name (rejected).

Each written request can be reported to ``on_record`` with the record the parser must produce.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from connectors.aaf import gen_data as d
from connectors.aaf.attrs import Record, record_to_attrs
from connectors.aaf.fields import Attrs
from connectors.aaf.filename import format_file_name
from connectors.aaf.gen_delta import write_delta
from connectors.aaf.gen_families import FamilyFactory
from connectors.aaf.gen_model import (
    Family,
    GeneratedExtract,
    GeneratedRecord,
    GeneratorConfig,
    SchoolClass,
    SchoolInfo,
    classes_for,
)
from connectors.aaf.gen_people import People, ine, siren, uai
from connectors.aaf.gen_staff import staff_for_school
from connectors.aaf.xmlwrite import AafWriter
from schemas.feed import Category, ClassAssignment, HoldReason, Pupil, School

PUPIL_FAULTS = (
    "ine_missing",
    "ine_invalid",
    "not_admitted",
    "no_class",
    "left_school",
    "no_guardian",
    "name_missing",
    "birth_date_impossible",
)
_SOLO_FAULTS = frozenset({"no_guardian", "name_missing"})
_HOLDS = {
    "ine_missing": HoldReason.INE_MISSING,
    "ine_invalid": HoldReason.INE_INVALID,
    "not_admitted": HoldReason.NOT_ADMITTED_DEFINITIVELY,
    "no_class": HoldReason.NO_CLASS,
    "left_school": HoldReason.NOT_CURRENT_SCHOOL_YEAR,
    "no_guardian": HoldReason.NO_PARENTAL_AUTHORITY,
}


Sink = Callable[[GeneratedRecord], None]


class _Generator:
    def __init__(self, config: GeneratorConfig, out: Path, sink: Sink | None) -> None:
        self.c = config
        self.out = out
        self.sink = sink
        self.rng = random.Random(config.seed)
        self.people = People(self.rng)
        self.families = FamilyFactory(self.people, config)
        self.pupil_n = 0
        self.reservoir: list[tuple[Pupil, str | None]] = []  # school 0 pupils, for the delta
        self.families0: list[Family] = []
        self.pending: list[Family] = []

    # -- helpers -------------------------------------------------------------------------------
    def emit(
        self,
        w: AafWriter,
        op: str,
        jointure: str,
        raw: Attrs | None,
        record: Record | None,
        faults: tuple[str, ...] = (),
        delta: bool = False,
    ) -> None:
        w.write(op, jointure, raw)
        if self.sink is not None:
            self.sink(GeneratedRecord(w.category, op, jointure, record, delta, faults))

    def fault(self, school: int, position: int, forced: bool) -> str | None:
        if not self.c.faults:
            return None
        if forced and school == 0 and position < len(PUPIL_FAULTS):
            return PUPIL_FAULTS[position]
        if self.rng.random() < self.c.fault_rate:
            return self.rng.choice(PUPIL_FAULTS)
        return None

    def names(self, raw: Attrs, *pairs: str) -> None:
        for name in pairs:
            if name in raw:
                raw[name] = [self.people.raw_name(x) for x in raw[name]]

    # -- schools -------------------------------------------------------------------------------
    def schools(self) -> list[SchoolInfo]:
        kinds = ("primaire", "elementaire", "maternelle")
        infos = []
        m = self.c.pupils_per_school
        n_classes = 1 if m < 12 else max(2, round(m / 23))
        for i in range(self.c.schools):
            dept = d.DEPARTMENTS[i % len(d.DEPARTMENTS)]
            code = uai(dept, 100 + i // len(d.DEPARTMENTS))
            town = d.TOWNS[i % len(d.TOWNS)]
            kind = kinds[i % 3]
            label = {
                "primaire": "École primaire",
                "elementaire": "École élémentaire",
                "maternelle": "École maternelle",
            }[kind]
            patron = d.SCHOOL_PATRONS[(i * 7) % len(d.SCHOOL_PATRONS)]
            record = School(
                jointure=code,
                uai=code,
                name=f"{label} {patron}",
                commune=town[0],
                circonscription=town[2],
                academy=d.ACADEMY,
                siren=siren(i),
            )
            infos.append(SchoolInfo(i, record, town, classes_for(kind, n_classes)))
        return infos

    # -- pupils --------------------------------------------------------------------------------
    def pupil(
        self,
        w: AafWriter,
        school: SchoolInfo,
        fam: Family | None,
        fault: str | None,
        level_hint: str | None = None,
        delta: bool = False,
    ) -> Pupil:
        p, c = self.people, self.c
        self.pupil_n += 1
        jointure = str(10_000_000 + self.pupil_n)
        cls = self.rng.choice(school.classes)
        level = self.rng.choice(cls.levels)
        if level_hint is not None:
            matching = [k for k in school.classes if level_hint in k.levels] or school.classes
            cls, level = matching[0], level_hint if level_hint in matching[0].levels else level
        girl = p.chance(0.5)
        born = date(c.year - d.AGES[level], 1, 1) + timedelta(days=self.rng.randrange(365))
        last = fam.last_name if fam else p.last_name()
        guardians = tuple(g.record.jointure for g in fam.guardians) if fam else ()
        # INE attribution lags behind for the "premières classes".
        lagging = level in d.FIRST_CLASSES and fault != "ine_invalid" and p.chance(0.02)
        has_ine = fault != "ine_missing" and not lagging
        explicit = p.chance(0.3)
        others: list[str] = []
        for _ in range(self.rng.choice((0, 0, 1, 2))):
            other = p.first_name(girl)
            if other not in others:
                others.append(other)
        record = Pupil(
            jointure=jointure,
            ine=ine(self.pupil_n, self.rng) if has_ine else None,
            last_name=last,
            first_name=p.first_name(girl),
            other_first_names=tuple(others),
            birth_name=last if p.chance(0.5) else None,
            civility="Mme" if girl else "M.",
            birth_date=born,
            school_jointure=school.record.jointure,
            classes=(
                ClassAssignment(
                    school_jointure=school.record.jointure, code=cls.code, label=cls.label
                ),
            ),
            level=level,
            cycle=d.CYCLES[level],
            guardian_jointures=guardians,
            admitted_definitively=True if explicit else None,
            school_year=c.school_year,
        )
        faults: tuple[str, ...] = ("ine_missing",) if not has_ine else ()
        faults += (fault,) if fault and fault != "ine_missing" else ()
        record, raw = self.pupil_raw(record, fam, cls, level, fault)
        holds = tuple(_HOLDS[f] for f in faults if f in _HOLDS)
        final = (
            record.model_copy(update={"held_reasons": holds}) if fault != "name_missing" else None
        )
        self.emit(w, "add", jointure, raw, final, faults, delta)
        if fam is not None and not delta:
            for g in fam.guardians:
                g.children.append(jointure)
        if school.index == 0 and final is not None and not delta:
            self.reservoir.append((final, fault))
        return record

    def pupil_raw(
        self, record: Pupil, fam: Family | None, cls: SchoolClass, level: str, fault: str | None
    ) -> tuple[Pupil, Attrs]:
        c, school = self.c, record.school_jointure
        raw = record_to_attrs(record)
        self.names(raw, "ENTPersonNom", "ENTPersonPrenom", "ENTPersonAutresPrenoms")
        if not self.people.chance(0.2):
            del raw["ENTEleveAnneeScolaire"]  # AAF1D has no such attribute: mostly derived
        raw["ENTPersonClasses"] = [
            f"{school}${c.year}${'-'.join(cls.levels)}${cls.code}${cls.label}"
        ]
        if fam is not None:
            raw["ENTEleveAutoriteParentale"] = [
                f"{g.record.jointure}${code}"
                for g, code in zip(fam.guardians, fam.codes, strict=True)
            ]
        update: dict[str, object] = {}
        if fault == "ine_invalid":
            raw["ENTEleveINE"] = ["12345ABC"]
            update["ine"] = None
        elif fault == "not_admitted":
            raw["ENTEleveAdmissionDefinitive"] = ["N"]
            update["admitted_definitively"] = False
        elif fault == "no_class":
            del raw["ENTPersonClasses"]
            update["classes"] = ()
        elif fault == "left_school":
            if self.people.chance(0.7):
                raw["ENTEleveDateSortieStructRattach"] = [
                    (c.extract_date - timedelta(days=12)).strftime("%d/%m/%Y")
                ]
                raw.pop("ENTEleveAnneeScolaire", None)
                update["school_year"] = None
            else:
                raw["ENTEleveAnneeScolaire"] = [f"{c.year - 1}-{c.year}"]
                update["school_year"] = f"{c.year - 1}-{c.year}"
        elif fault == "name_missing":
            del raw["ENTPersonNom"]
        elif fault == "birth_date_impossible":
            raw["ENTPersonDateNaissance"] = [f"31/02/{c.year - d.AGES[level]}"]
            update["birth_date"] = None
        return (record.model_copy(update=update) if update else record), raw

    # -- one school ----------------------------------------------------------------------------
    def school_pupils(self, w: AafWriter, gw: AafWriter, school: SchoolInfo) -> None:
        families: list[Family] = []
        pos = 0
        for fam in self.pending:  # a family already seen in the previous school
            self.pupil(w, school, fam, None)
            pos += 1
        carried, self.pending = self.pending, []
        guardian_faults = (
            ["phone_invalid", "email_invalid"] if school.index == 0 and self.c.faults else []
        )
        while pos < self.c.pupils_per_school:
            forced = school.index == 0 and pos < len(PUPIL_FAULTS)
            fault = self.fault(school.index, pos, forced)
            if fault in _SOLO_FAULTS:
                self.pupil(w, school, None, fault)
                pos += 1
                continue
            fam = self.families.family(school, guardian_faults.pop(0) if guardian_faults else None)
            families.append(fam)
            size = 1 if forced else self.rng.choices((1, 2, 3, 4), (55, 33, 10, 2))[0]
            for k in range(min(size, self.c.pupils_per_school - pos)):
                sibling_fault = fault if k == 0 else self.fault(school.index, pos, False)
                self.pupil(w, school, fam, None if sibling_fault in _SOLO_FAULTS else sibling_fault)
                pos += 1
        if (
            school.index + 1 < self.c.schools
            and families
            and (school.index == 0 or self.people.chance(0.5))
        ):
            self.pending = [families.pop()]  # its next child goes to the next school
        if school.index == 0:
            self.families0 = families
        for fam in carried + families:
            for g in fam.guardians:
                final = g.record.model_copy(update={"pupil_jointures": tuple(g.children)})
                raw = dict(g.raw)
                raw["ENTPersRelEleveEleve"] = list(g.children)
                self.emit(gw, "add", final.jointure, raw, final, g.faults)

    def run(self) -> GeneratedExtract:
        c, out = self.c, self.out
        out.mkdir(parents=True, exist_ok=True)
        result = GeneratedExtract()
        names = {
            cat: out / format_file_name(c.scope, True, c.extract_date, cat) for cat in Category
        }
        schools = self.schools()
        with (
            AafWriter(names[Category.SCHOOLS], Category.SCHOOLS, c.encoding) as sw,
            AafWriter(names[Category.PUPILS], Category.PUPILS, c.encoding) as pw,
            AafWriter(names[Category.GUARDIANS], Category.GUARDIANS, c.encoding) as gw,
            AafWriter(names[Category.STAFF], Category.STAFF, c.encoding) as tw,
        ):
            for school in schools:
                self.emit(
                    sw, "add", school.record.jointure, record_to_attrs(school.record), school.record
                )
            uais = [s.record.jointure for s in schools]
            for school in schools:
                self.school_pupils(pw, gw, school)
                staff_list = staff_for_school(
                    self.people, uais, school.index, len(school.classes), self.c.faults
                )
                for staff, raw, faults in staff_list:
                    self.emit(tw, "add", staff.jointure, raw, staff, faults)
            for cat, writer in (
                (Category.SCHOOLS, sw),
                (Category.PUPILS, pw),
                (Category.GUARDIANS, gw),
                (Category.STAFF, tw),
            ):
                result.files[cat.value] = writer.path
                result.counts[cat.value] = writer.count
        if c.delta and schools:
            path, count = write_delta(self, schools[0])
            result.files["delta"] = path
            result.counts["delta"] = count
        return result


def generate(
    out: str | Path, config: GeneratorConfig | None = None, on_record: Sink | None = None
) -> GeneratedExtract:
    """Write the extract into ``out``; ``on_record`` receives each request's expected record."""
    return _Generator(config or GeneratorConfig(), Path(out), on_record).run()


__all__ = ["GeneratedExtract", "GeneratedRecord", "GeneratorConfig", "generate"]

"""Records back to AAF attributes: the inverse of :mod:`connectors.aaf.build`, through the same
table (:mod:`connectors.aaf.mapping`) for the attributes that map to one field each.

Used to write synthetic extracts (the generator) and to complete a ``modifyRequest``: the base
record is turned into attributes, the modifications replace theirs, and the result is validated
like an ``addRequest``. Building the record from ``record_to_attrs(record)`` gives the record back.
"""

from __future__ import annotations

from typing import Literal

from connectors.aaf.fields import Attrs
from connectors.aaf.mapping import write
from schemas.feed import Category, Guardian, Pupil, School, Staff
from sync.admission import SCHOOL_YEAR_ATTRIBUTE
from sync.validation import format_date

Record = School | Pupil | Guardian | Staff
Kind = Literal["school", "pupil", "guardian", "staff"]

KIND_OF: dict[Category, Kind] = {
    Category.SCHOOLS: "school",
    Category.PUPILS: "pupil",
    Category.GUARDIANS: "guardian",
    Category.STAFF: "staff",
}
REPLACEMENT_ATTRIBUTE = "ENTEnsRemplacant"
DIRECTOR_ATTRIBUTE = "ENTEnsFonctionDir"


def _put(attrs: Attrs, name: str, value: str | None) -> None:
    if value is not None:
        attrs[name] = [value]


def school_attrs(school: School) -> Attrs:
    attrs: Attrs = {"ENTStructureJointure": [school.jointure], **write(school, Category.SCHOOLS)}
    _put(attrs, "ENTStructureSIREN", school.siren)
    return attrs


def _person(record: Record, category: Category) -> Attrs:
    return {"ENTPersonJointure": [record.jointure], **write(record, category)}


def pupil_attrs(pupil: Pupil) -> Attrs:
    attrs = _person(pupil, Category.PUPILS)
    _put(attrs, "ENTEleveINE", pupil.ine)
    if pupil.birth_date is not None:
        attrs["ENTPersonDateNaissance"] = [format_date(pupil.birth_date)]
    _put(attrs, SCHOOL_YEAR_ATTRIBUTE, pupil.school_year)
    return attrs


def guardian_attrs(guardian: Guardian) -> Attrs:
    attrs = _person(guardian, Category.GUARDIANS)
    _put(attrs, "ENTPersonAdresse", guardian.address)
    return attrs


def staff_attrs(staff: Staff) -> Attrs:
    attrs = _person(staff, Category.STAFF)  # the teacher flag written: no inference back
    if staff.birth_date is not None:
        attrs["ENTPersonDateNaissance"] = [format_date(staff.birth_date)]
    function_schools = {f.split("$", 1)[0] for f in staff.functions}
    extra = [s for s in staff.school_jointures if s not in function_schools]
    if extra:
        attrs[DIRECTOR_ATTRIBUTE] = extra
    elif staff.is_director:
        attrs[DIRECTOR_ATTRIBUTE] = ["O"]
    if staff.is_replacement:
        attrs[REPLACEMENT_ATTRIBUTE] = ["O"]
    return attrs


def record_to_attrs(record: Record) -> Attrs:
    if isinstance(record, School):
        return school_attrs(record)
    if isinstance(record, Pupil):
        return pupil_attrs(record)
    if isinstance(record, Guardian):
        return guardian_attrs(record)
    return staff_attrs(record)

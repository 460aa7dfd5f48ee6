"""Records back to AAF attributes: the inverse of :mod:`connectors.aaf.build`.

Used to write synthetic extracts (the generator) and to complete a ``modifyRequest``: the base
record is turned into attributes, the modifications replace theirs, and the result is validated
like an ``addRequest``. Building the record from ``record_to_attrs(record)`` gives the record back.
"""

from __future__ import annotations

from typing import Literal

from schemas.feed import Category, Guardian, Pupil, School, Staff
from sync.admission import ADMISSION_ATTRIBUTE, SCHOOL_YEAR_ATTRIBUTE
from sync.validation import format_date

Record = School | Pupil | Guardian | Staff
Kind = Literal["school", "pupil", "guardian", "staff"]
Attrs = dict[str, list[str]]

KIND_OF: dict[Category, Kind] = {
    Category.SCHOOLS: "school",
    Category.PUPILS: "pupil",
    Category.GUARDIANS: "guardian",
    Category.STAFF: "staff",
}
REPLACEMENT_ATTRIBUTE = "ENTEnsRemplacant"
LOGIN_ATTRIBUTE = "ENTPersonLogin"


def _flag(value: bool) -> str:
    return "O" if value else "N"


def _put(attrs: Attrs, name: str, value: str | None) -> None:
    if value is not None:
        attrs[name] = [value]


def school_attrs(school: School) -> Attrs:
    attrs: Attrs = {
        "ENTStructureJointure": [school.jointure],
        "ENTStructureUAI": [school.uai],
        "ENTStructureNomCourant": [school.name],
    }
    _put(attrs, "ENTEcoleCommune", school.commune)
    _put(attrs, "ENTEcoleCirconscription", school.circonscription)
    _put(attrs, "ENTServAcAcademie", school.academy)
    _put(attrs, "ENTStructureSIREN", school.siren)
    return attrs


def pupil_attrs(pupil: Pupil) -> Attrs:
    attrs: Attrs = {
        "ENTPersonJointure": [pupil.jointure],
        "ENTPersonNom": [pupil.last_name],
        "ENTPersonPrenom": [pupil.first_name],
    }
    _put(attrs, "ENTEleveINE", pupil.ine)
    if pupil.other_first_names:
        attrs["ENTPersonAutresPrenoms"] = list(pupil.other_first_names)
    _put(attrs, "ENTPersonNomPatro", pupil.birth_name)
    _put(attrs, "ENTPersonCivilite", pupil.civility)
    if pupil.birth_date is not None:
        attrs["ENTPersonDateNaissance"] = [format_date(pupil.birth_date)]
    _put(attrs, "ENTPersonMail", pupil.email)
    _put(attrs, "ENTPersonStructRattach", pupil.school_jointure)
    if pupil.classes:
        attrs["ENTPersonClasses"] = [
            f"{c.school_jointure}$$${c.code}${c.label}" for c in pupil.classes
        ]
    _put(attrs, "ENTEleveNiveau", pupil.level)
    _put(attrs, "ENTEleveCycle", pupil.cycle)
    if pupil.guardian_jointures:
        attrs["ENTEleveAutoriteParentale"] = list(pupil.guardian_jointures)
    if pupil.admitted_definitively is not None:
        attrs[ADMISSION_ATTRIBUTE] = [_flag(pupil.admitted_definitively)]
    _put(attrs, SCHOOL_YEAR_ATTRIBUTE, pupil.school_year)
    return attrs


def guardian_attrs(guardian: Guardian) -> Attrs:
    attrs: Attrs = {
        "ENTPersonJointure": [guardian.jointure],
        "ENTPersonNom": [guardian.last_name],
        "ENTPersonPrenom": [guardian.first_name],
    }
    _put(attrs, "ENTPersonCivilite", guardian.civility)
    _put(attrs, "ENTPersonMail", guardian.email)
    _put(attrs, "ENTPersonTelPerso", guardian.phone_home)
    _put(attrs, "ENTPersRelEleveTelMobile", guardian.phone_mobile)
    _put(attrs, "ENTPersRelEleveTelPro", guardian.phone_work)
    _put(attrs, "ENTPersonAdresse", guardian.address)
    _put(attrs, "ENTPersonCodePostal", guardian.postal_code)
    _put(attrs, "ENTPersonVille", guardian.town)
    _put(attrs, "ENTPersonPays", guardian.country)
    if guardian.pupil_jointures:
        attrs["ENTPersRelEleveEleve"] = list(guardian.pupil_jointures)
    return attrs


def staff_attrs(staff: Staff) -> Attrs:
    attrs: Attrs = {
        "ENTPersonJointure": [staff.jointure],
        "ENTPersonNom": [staff.last_name],
        "ENTPersonPrenom": [staff.first_name],
    }
    _put(attrs, "ENTPersonCivilite", staff.civility)
    if staff.birth_date is not None:
        attrs["ENTPersonDateNaissance"] = [format_date(staff.birth_date)]
    _put(attrs, "ENTPersonMail", staff.email)
    _put(attrs, LOGIN_ATTRIBUTE, staff.academic_login)
    _put(attrs, "ENTPersonStructRattach", staff.attachment_school_jointure)
    if staff.functions:
        attrs["ENTPersonFonctions"] = list(staff.functions)
    # Derived flags are written explicitly so that building them back needs no inference.
    attrs["ENTPersonCategorieEnseignant"] = [_flag(staff.is_teacher)]
    function_schools = {f.split("$", 1)[0] for f in staff.functions}
    extra = [s for s in staff.school_jointures if s not in function_schools]
    if extra:
        attrs["ENTEnsFonctionDir"] = extra
    elif staff.is_director:
        attrs["ENTEnsFonctionDir"] = ["O"]
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

"""Synthetic staff of one school: director, teachers, trainees, replacement teachers, AESH."""

from __future__ import annotations

from datetime import date, timedelta

from connectors.aaf import gen_data as d
from connectors.aaf.attrs import REPLACEMENT_ATTRIBUTE, record_to_attrs
from connectors.aaf.fields import Attrs
from connectors.aaf.gen_people import People, slug
from schemas.feed import Staff

StaffEntry = tuple[Staff, Attrs, tuple[str, ...]]


def _person(
    people: People,
    attachment: str,
    functions: list[str],
    *,
    teacher: bool,
    director: bool = False,
    replacement: bool = False,
    fault: str | None = None,
) -> StaffEntry:
    rng = people.rng
    girl = people.chance(0.8)  # most primary teachers are women
    first, last = people.first_name(girl), people.last_name()
    login = people.login(first, last)
    suffix = login[len(login.rstrip("0123456789")) :]
    email = f"{slug(first)}.{slug(last)}{suffix}@{d.ACADEMY_MAIL_DOMAIN}"
    schools: list[str] = []
    for fn in functions:
        school = fn.split("$", 1)[0]
        if school not in schools:
            schools.append(school)
    born = date(rng.randint(1965, 1999), 1, 1) + timedelta(days=rng.randrange(365))
    staff = Staff(
        jointure=str(30_000_000 + people.next_id("staff")),
        last_name=last,
        first_name=first,
        civility="Mme" if girl else "M.",
        birth_date=born,
        email=email,
        academic_login=login if people.chance(0.85) else None,
        attachment_school_jointure=attachment,
        school_jointures=tuple(schools),
        functions=tuple(functions),
        is_teacher=teacher,
        is_director=director,
        is_replacement=replacement,
    )
    raw = record_to_attrs(staff)
    raw["ENTPersonNom"] = [people.raw_name(last)]
    raw["ENTPersonPrenom"] = [people.raw_name(first)]
    if director:
        raw["ENTEnsFonctionDir"] = [attachment]
    if people.chance(0.5):
        del raw["ENTPersonCategorieEnseignant"]  # derived from the function codes instead
    if replacement and people.chance(0.5):
        del raw[REPLACEMENT_ATTRIBUTE]  # the function label says it (REMPLACANT, PES)
    if fault == "email_invalid":
        raw["ENTPersonMail"] = [email.replace("@", "@@")]
        staff = staff.model_copy(update={"email": None})
    return staff, raw, (fault,) if fault else ()


def staff_for_school(
    people: People, uais: list[str], index: int, classes: int, faults: bool
) -> list[StaffEntry]:
    """One teacher per class (the first is the director), maybe a PES, a TR, an AESH."""
    school = uais[index]
    out: list[StaffEntry] = []
    for k in range(classes):
        functions = [f"{school}${d.TEACHER_FUNCTION}"]
        if k == 0:
            functions.append(f"{school}${d.DIRECTOR_FUNCTION}")
        out.append(_person(people, school, functions, teacher=True, director=k == 0))
    if people.chance(0.25):
        out.append(
            _person(
                people, school, [f"{school}${d.TRAINEE_FUNCTION}"], teacher=True, replacement=True
            )
        )
    if index % 3 == 0:
        # A replacement teacher attached here, exercising here and in the next school.
        exercised = [school] + ([uais[index + 1]] if index + 1 < len(uais) else [])
        functions = [f"{s}${d.REPLACEMENT_FUNCTION}" for s in exercised]
        out.append(_person(people, school, functions, teacher=True, replacement=True))
    if people.chance(0.5) or (faults and index == 0):
        fault = "email_invalid" if faults and index == 0 else None
        out.append(
            _person(people, school, [f"{school}${d.AESH_FUNCTION}"], teacher=False, fault=fault)
        )
    return out

"""Raw AAF attributes to validated contract records (School, Pupil, Guardian, Staff).

An invalid optional field is dropped with a warning; an invalid or missing required field
(jointure, names, the UAI of a school) rejects the record. Pupils get their admission holds.
The attributes that map to one field each are read through the table of
:mod:`connectors.aaf.mapping` (which :mod:`connectors.aaf.attrs` writes back with); the rules
below, and the jointures, INE, SIREN, birth dates and school year, are this module's code.

Staff classification (AAF ``ENTPersonFonctions`` values are
``<school>$<function code>$<function label>$<discipline code>$<discipline label>``):

- teacher: ``ENTPersonCategorieEnseignant`` when present (``O``/``N``), else a function code
  ``ENS`` (enseignement) or ``DOC`` (documentation);
- director: a ``DIR`` function code, or ``ENTEnsFonctionDir`` holding ``O`` or school jointures
  (those schools are also schools of exercise);
- schools of exercise: field [0] of each function, then the director schools, in file order;
  the attachment school is ``ENTPersonStructRattach`` and is kept apart;
- replacement teacher (remplaçant, PES): the optional flag ``ENTEnsRemplacant`` when present,
  else a function label naming a replacement or trainee post (REMPLAÇANT, BRIGADE, ZIL, PES,
  STAGIAIRE);
- academic login: the optional ``ENTPersonLogin`` (the public AAF1D set has none: then None).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from connectors.aaf.attrs import DIRECTOR_ATTRIBUTE, REPLACEMENT_ATTRIBUTE, Record
from connectors.aaf.fields import Attrs, BuildContext, Fields, Issue, cached_text
from connectors.aaf.mapping import read
from schemas.feed import Category, Guardian, HoldReason, Pupil, School, Staff
from sync import validation as v
from sync.admission import (
    SCHOOL_YEAR_ATTRIBUTE,
    AdmissionFacts,
    IneStatus,
    admission_holds,
    enrolled_school_year,
)

T = TypeVar("T")
_TEACHING_CODES = frozenset({"ENS", "DOC"})
_DIRECTOR_CODES = frozenset({"DIR"})
_REPLACEMENT_RE = re.compile(r"\b(REMPLA\w*|BRIGADE|ZIL|PES|STAGIAIRE)\b")


def _construct(f: Fields, model: Callable[[], T]) -> T | None:
    if f.rejected:
        return None
    try:
        return model()
    except ValidationError as exc:
        where = ",".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        f.reject(None, "record_invalid", f"record does not satisfy the contract ({where})")
        return None


def build_school(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[School | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTStructureJointure", identifier)
    columns = read(f, Category.SCHOOLS)
    # SDET makes the SIREN mandatory: a school without one is held (published, no entry), not
    # rejected, so its pupils and staff are reported as waiting for it rather than lost.
    raw_siren = f.first("ENTStructureSIREN")
    siren = v.normalize_siren(raw_siren) if raw_siren is not None else None
    holds: tuple[HoldReason, ...] = ()
    if raw_siren is None:
        holds = (HoldReason.SIREN_MISSING,)
    elif siren is None:
        holds = (HoldReason.SIREN_INVALID,)
    school = _construct(
        f, lambda: School(jointure=jointure or "", siren=siren, held_reasons=holds, **columns)
    )
    return school, f.issues, jointure


def build_pupil(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Pupil | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    columns = read(f, Category.PUPILS)
    raw_ine = f.first("ENTEleveINE")
    ine = v.normalize_ine(raw_ine) if raw_ine is not None else None
    ine_status: IneStatus = "missing" if raw_ine is None else ("valid" if ine else "invalid")
    if ine_status == "invalid":
        f.warn("ENTEleveINE", "ine_invalid", "INE does not have a valid shape")
    explicit_year = f.optional(
        SCHOOL_YEAR_ATTRIBUTE, v.parse_school_year, "school_year_invalid", "invalid school year"
    )
    exit_date = f.optional(
        "ENTEleveDateSortieStructRattach", v.parse_date, "date_invalid", "invalid date"
    )
    school_year = enrolled_school_year(explicit_year, exit_date, ctx.extract_date)
    holds = admission_holds(
        AdmissionFacts(
            ine=ine_status,
            admitted_definitively=columns["admitted_definitively"],
            class_count=len(columns["classes"]),
            school_year=school_year,
            current_school_year=ctx.current_school_year,
            parental_authority_count=len(columns["guardian_jointures"]),
        )
    )
    birth_date = f.birth_date(ctx)
    pupil = _construct(
        f,
        lambda: Pupil(
            jointure=jointure or "",
            ine=ine,
            birth_date=birth_date,
            school_year=school_year,
            held_reasons=holds,
            **columns,
        ),
    )
    return pupil, f.issues, jointure


def build_guardian(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Guardian | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    columns = read(f, Category.GUARDIANS)
    raw_address = f.first("ENTPersonAdresse")
    address = None
    if raw_address is not None:
        # 2D extracts split address lines with '$'.
        if "$" in raw_address:
            raw_address = ", ".join(part for part in raw_address.split("$") if part.strip())
        address = cached_text(raw_address, 256)
        if address is None:
            f.warn("ENTPersonAdresse", "text_invalid", "invalid address")
    guardian = _construct(f, lambda: Guardian(jointure=jointure or "", address=address, **columns))
    return guardian, f.issues, jointure


def build_staff(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Staff | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    columns = read(f, Category.STAFF)
    functions: tuple[str, ...] = columns["functions"]
    codes = {fn.split("$")[1].upper() for fn in functions}
    if columns["is_teacher"] is None:  # no explicit category: from the function codes
        columns["is_teacher"] = bool(codes & _TEACHING_CODES)
    is_director = bool(codes & _DIRECTOR_CODES)
    director_schools: list[str] = []
    for raw in attrs.get(DIRECTOR_ATTRIBUTE, ()):
        if not raw.strip():
            continue
        flag = v.parse_flag(raw)
        school = v.normalize_jointure(raw) if flag is None else None
        if flag is not None:
            is_director = is_director or flag
        elif school is not None:
            is_director = True
            director_schools.append(school)
        else:
            f.warn(DIRECTOR_ATTRIBUTE, "function_invalid", "malformed director value")
    schools: list[str] = []
    for school in [fn.split("$", 1)[0] for fn in functions] + director_schools:
        if school not in schools:
            schools.append(school)
    replacement = f.optional(REPLACEMENT_ATTRIBUTE, v.parse_flag, "flag_invalid", "not O/N")
    if replacement is None:
        labels = " ".join(fn.split("$", 2)[2] if fn.count("$") >= 2 else "" for fn in functions)
        replacement = bool(_REPLACEMENT_RE.search(labels.upper()))
    birth_date = f.birth_date(ctx)
    staff = _construct(
        f,
        lambda: Staff(
            jointure=jointure or "",
            birth_date=birth_date,
            school_jointures=tuple(schools),
            is_director=is_director,
            is_replacement=replacement,
            **columns,
        ),
    )
    return staff, f.issues, jointure


Builder = Callable[[Attrs, str, BuildContext], tuple[Record | None, list[Issue], str | None]]
BUILDERS: dict[str, Builder] = {
    "school": build_school,
    "pupil": build_pupil,
    "guardian": build_guardian,
    "staff": build_staff,
}

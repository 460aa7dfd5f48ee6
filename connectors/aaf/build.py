"""Raw AAF attributes to validated contract records (School, Pupil, Guardian, Staff).

An invalid optional field is dropped with a warning; an invalid or missing required field
(jointure, names, the UAI of a school) rejects the record. Pupils get their admission holds.

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

from connectors.aaf.attrs import LOGIN_ATTRIBUTE, REPLACEMENT_ATTRIBUTE, Attrs, Record
from connectors.aaf.fields import (
    BuildContext,
    Fields,
    Issue,
    cached_class,
    cached_name,
    cached_postal,
    cached_text,
)
from schemas.feed import Guardian, HoldReason, Pupil, School, Staff
from sync import validation as v
from sync.admission import (
    ADMISSION_ATTRIBUTE,
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


def _text(max_chars: int) -> Callable[[str], str | None]:
    return lambda raw: cached_text(raw, max_chars)


_text32, _text64, _text128 = _text(32), _text(64), _text(128)


def _link(raw: str) -> str | None:
    return v.normalize_jointure(v.first_field(raw))


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
    uai = f.required(("ENTStructureUAI",), v.normalize_uai, "uai_invalid", "invalid UAI")
    name = f.required(("ENTStructureNomCourant",), _text128, "text_invalid", "invalid name")
    commune = f.optional("ENTEcoleCommune", _text128, "text_invalid", "invalid text")
    circ = f.optional("ENTEcoleCirconscription", _text128, "text_invalid", "invalid text")
    academy = f.optional("ENTServAcAcademie", _text64, "text_invalid", "invalid text")
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
        f,
        lambda: School(
            jointure=jointure or "",
            uai=uai or "",
            name=name or "",
            commune=commune,
            circonscription=circ,
            academy=academy,
            siren=siren,
            held_reasons=holds,
        ),
    )
    return school, f.issues, jointure


def build_pupil(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Pupil | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    last, first = f.names()
    raw_ine = f.first("ENTEleveINE")
    ine = v.normalize_ine(raw_ine) if raw_ine is not None else None
    ine_status: IneStatus = "missing" if raw_ine is None else ("valid" if ine else "invalid")
    if ine_status == "invalid":
        f.warn("ENTEleveINE", "ine_invalid", "INE does not have a valid shape")
    others = f.many("ENTPersonAutresPrenoms", cached_name, "name_invalid", "invalid names")
    birth_name = f.optional("ENTPersonNomPatro", cached_name, "name_invalid", "invalid name")
    classes = f.many("ENTPersonClasses", cached_class, "class_invalid", "malformed class values")
    guardians = f.many("ENTEleveAutoriteParentale", _link, "link_invalid", "malformed links")
    admitted = f.optional(ADMISSION_ATTRIBUTE, v.parse_flag, "flag_invalid", "not O/N")
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
            admitted_definitively=admitted,
            class_count=len(classes),
            school_year=school_year,
            current_school_year=ctx.current_school_year,
            parental_authority_count=len(guardians),
        )
    )
    civility = f.civility()
    birth_date = f.birth_date(ctx)
    email = f.email()
    school = f.optional(
        "ENTPersonStructRattach", v.normalize_jointure, "jointure_invalid", "invalid"
    )
    level = f.optional("ENTEleveNiveau", _text32, "text_invalid", "invalid text")
    cycle = f.optional("ENTEleveCycle", _text32, "text_invalid", "invalid text")
    pupil = _construct(
        f,
        lambda: Pupil(
            jointure=jointure or "",
            ine=ine,
            last_name=last or "",
            first_name=first or "",
            other_first_names=others,
            birth_name=birth_name,
            civility=civility,
            birth_date=birth_date,
            email=email,
            school_jointure=school,
            classes=classes,
            level=level,
            cycle=cycle,
            guardian_jointures=guardians,
            admitted_definitively=admitted,
            school_year=school_year,
            held_reasons=holds,
        ),
    )
    return pupil, f.issues, jointure


def build_guardian(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Guardian | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    last, first = f.names()
    phone = v.normalize_phone
    home = f.optional("ENTPersonTelPerso", phone, "phone_invalid", "not a valid phone number")
    mobile = f.optional(
        "ENTPersRelEleveTelMobile", phone, "phone_invalid", "not a valid phone number"
    )
    work = f.optional("ENTPersRelEleveTelPro", phone, "phone_invalid", "not a valid phone number")
    raw_address = f.first("ENTPersonAdresse")
    address = None
    if raw_address is not None:
        # 2D extracts split address lines with '$'.
        if "$" in raw_address:
            raw_address = ", ".join(part for part in raw_address.split("$") if part.strip())
        address = cached_text(raw_address, 256)
        if address is None:
            f.warn("ENTPersonAdresse", "text_invalid", "invalid address")
    postal = f.optional(
        "ENTPersonCodePostal", cached_postal, "postal_code_invalid", "invalid postal code"
    )
    town = f.optional("ENTPersonVille", _text128, "text_invalid", "invalid text")
    country = f.optional("ENTPersonPays", _text64, "text_invalid", "invalid text")
    pupils = f.many("ENTPersRelEleveEleve", _link, "link_invalid", "malformed links")
    civility = f.civility()
    email = f.email()
    guardian = _construct(
        f,
        lambda: Guardian(
            jointure=jointure or "",
            last_name=last or "",
            first_name=first or "",
            civility=civility,
            email=email,
            phone_home=home,
            phone_mobile=mobile,
            phone_work=work,
            address=address,
            postal_code=postal,
            town=town,
            country=country,
            pupil_jointures=pupils,
        ),
    )
    return guardian, f.issues, jointure


def _function(raw: str) -> str | None:
    parts = [v.collapse(part) for part in raw.split("$")]
    if len(parts) < 2 or v.normalize_jointure(parts[0]) is None or not parts[1].isalnum():
        return None
    text = "$".join(parts)
    return text if v.normalize_text(text, 512) is not None else None


def build_staff(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Staff | None, list[Issue], str | None]:
    f = Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    last, first = f.names()
    functions = f.many("ENTPersonFonctions", _function, "function_invalid", "malformed functions")
    codes = {fn.split("$")[1].upper() for fn in functions}
    category = f.optional("ENTPersonCategorieEnseignant", v.parse_flag, "flag_invalid", "not O/N")
    is_teacher = category if category is not None else bool(codes & _TEACHING_CODES)
    is_director = bool(codes & _DIRECTOR_CODES)
    director_schools: list[str] = []
    for raw in attrs.get("ENTEnsFonctionDir", ()):
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
            f.warn("ENTEnsFonctionDir", "function_invalid", "malformed director value")
    schools: list[str] = []
    for school in [fn.split("$", 1)[0] for fn in functions] + director_schools:
        if school not in schools:
            schools.append(school)
    replacement = f.optional(REPLACEMENT_ATTRIBUTE, v.parse_flag, "flag_invalid", "not O/N")
    if replacement is None:
        labels = " ".join(fn.split("$", 2)[2] if fn.count("$") >= 2 else "" for fn in functions)
        replacement = bool(_REPLACEMENT_RE.search(labels.upper()))
    civility = f.civility()
    birth_date = f.birth_date(ctx)
    email = f.email()
    login = f.optional(LOGIN_ATTRIBUTE, v.normalize_login, "login_invalid", "invalid login")
    attachment = f.optional(
        "ENTPersonStructRattach", v.normalize_jointure, "jointure_invalid", "invalid"
    )
    staff = _construct(
        f,
        lambda: Staff(
            jointure=jointure or "",
            last_name=last or "",
            first_name=first or "",
            civility=civility,
            birth_date=birth_date,
            email=email,
            academic_login=login,
            attachment_school_jointure=attachment,
            school_jointures=tuple(schools),
            functions=functions,
            is_teacher=is_teacher,
            is_director=is_director,
            is_replacement=replacement,
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

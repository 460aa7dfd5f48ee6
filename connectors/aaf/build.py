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
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TypeVar

from pydantic import ValidationError

from connectors.aaf.attrs import LOGIN_ATTRIBUTE, REPLACEMENT_ATTRIBUTE, Attrs, Record
from connectors.aaf.report import Severity
from schemas.feed import Guardian, Pupil, School, Staff
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


@dataclass(frozen=True, slots=True)
class Issue:
    field: str | None
    rule: str
    message: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class BuildContext:
    reference_date: date
    extract_date: date
    current_school_year: str

    @property
    def oldest_birth_date(self) -> date:
        return _oldest(self.reference_date)


class _Fields:
    """Typed access to one record's attributes, collecting issues as it goes."""

    __slots__ = ("attrs", "issues", "rejected")

    def __init__(self, attrs: Attrs) -> None:
        self.attrs = attrs
        self.issues: list[Issue] = []
        self.rejected = False

    def first(self, name: str) -> str | None:
        """The first value of ``name`` (the reader keeps only non-blank values)."""
        values = self.attrs.get(name)
        return values[0] if values else None

    def warn(self, name: str, rule: str, what: str) -> None:
        self.issues.append(Issue(name, rule, f"{name}: {what}; value dropped", Severity.WARNING))

    def reject(self, name: str | None, rule: str, message: str) -> None:
        self.rejected = True
        self.issues.append(Issue(name, rule, message, Severity.REJECTED))

    def optional(
        self, name: str, parse: Callable[[str], T | None], rule: str, what: str
    ) -> T | None:
        values = self.attrs.get(name)
        if not values:
            return None
        value = parse(values[0])
        if value is None:
            self.warn(name, rule, what)
        return value

    def required(
        self, names: tuple[str, ...], parse: Callable[[str], T | None], rule: str, what: str
    ) -> T | None:
        raw = None
        for name in names:  # the AAF1D name first, then its 2D synonym
            raw = self.first(name)
            if raw is not None:
                break
        if raw is None:
            self.reject(names[0], "required_missing", f"{names[0]}: required value missing")
            return None
        value = parse(raw)
        if value is None:
            self.reject(names[0], rule, f"{names[0]}: {what}")
        return value

    def many(
        self, name: str, parse: Callable[[str], T | None], rule: str, what: str
    ) -> tuple[T, ...]:
        out: list[T] = []
        bad = 0
        for raw in self.attrs.get(name, ()):
            value = parse(raw)
            if value is None:
                bad += 1
            elif value not in out:
                out.append(value)
        if bad:
            self.warn(name, rule, f"{bad} {what}")
        return tuple(out)

    def jointure(self, name: str, identifier: str) -> str | None:
        ident = v.normalize_jointure(identifier) if identifier else None
        raw = self.first(name)
        if raw is not None and raw == identifier:  # the usual case: validated once
            if ident is None:
                self.reject(name, "jointure_invalid", f"{name}: invalid jointure")
            return ident
        if raw is None:
            if ident is None:
                self.reject(name, "jointure_invalid", f"{name}: missing or invalid jointure")
            return ident
        value = v.normalize_jointure(raw)
        if value is None:
            self.reject(name, "jointure_invalid", f"{name}: invalid jointure")
        elif ident is not None and value != ident:
            self.reject(name, "jointure_mismatch", f"{name}: differs from identifier/id")
        return value

    def birth_date(self, ctx: BuildContext) -> date | None:
        raw = self.first("ENTPersonDateNaissance")
        if raw is None:
            return None
        parsed = _date(raw)
        if parsed is None:
            self.warn("ENTPersonDateNaissance", "date_invalid", "not a valid dd/mm/yyyy date")
            return None
        if not ctx.oldest_birth_date <= parsed <= ctx.reference_date:
            self.warn("ENTPersonDateNaissance", "birth_date_implausible", "implausible birth date")
            return None
        return parsed

    def names(self) -> tuple[str | None, str | None]:
        last = self.required(("ENTPersonNom", "sn"), _name, "name_invalid", "invalid name")
        first = self.required(
            ("ENTPersonPrenom", "givenName"), _name, "name_invalid", "invalid name"
        )
        return last, first

    def email(self) -> str | None:
        return self.optional("ENTPersonMail", v.normalize_email, "email_invalid", "invalid email")

    def civility(self) -> str | None:
        return self.optional(
            "ENTPersonCivilite", v.normalize_civility, "civility_invalid", "unknown civility"
        )


# The validators are pure and feed values repeat a lot (first names, class values, towns):
# small bounded caches make them cheap without changing any result (and keep memory flat).
_name = lru_cache(maxsize=1 << 13)(v.normalize_name)
_class = lru_cache(maxsize=1 << 12)(v.parse_class)
_cached_text = lru_cache(maxsize=1 << 13)(v.normalize_text)
_date = lru_cache(maxsize=1 << 12)(v.parse_date)
_postal = lru_cache(maxsize=1 << 12)(v.normalize_postal_code)
_oldest = lru_cache(maxsize=16)(v.oldest_plausible_birth_date)


def _text(max_chars: int) -> Callable[[str], str | None]:
    return lambda raw: _cached_text(raw, max_chars)


_text32, _text64, _text128 = _text(32), _text(64), _text(128)


def _link(raw: str) -> str | None:
    return v.normalize_jointure(v.first_field(raw))


def _construct(f: _Fields, model: Callable[[], T]) -> T | None:
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
    f = _Fields(attrs)
    jointure = f.jointure("ENTStructureJointure", identifier)
    uai = f.required(("ENTStructureUAI",), v.normalize_uai, "uai_invalid", "invalid UAI")
    name = f.required(("ENTStructureNomCourant",), _text128, "text_invalid", "invalid name")
    commune = f.optional("ENTEcoleCommune", _text128, "text_invalid", "invalid text")
    circ = f.optional("ENTEcoleCirconscription", _text128, "text_invalid", "invalid text")
    academy = f.optional("ENTServAcAcademie", _text64, "text_invalid", "invalid text")
    school = _construct(
        f,
        lambda: School(
            jointure=jointure or "",
            uai=uai or "",
            name=name or "",
            commune=commune,
            circonscription=circ,
            academy=academy,
        ),
    )
    return school, f.issues, jointure


def build_pupil(
    attrs: Attrs, identifier: str, ctx: BuildContext
) -> tuple[Pupil | None, list[Issue], str | None]:
    f = _Fields(attrs)
    jointure = f.jointure("ENTPersonJointure", identifier)
    last, first = f.names()
    raw_ine = f.first("ENTEleveINE")
    ine = v.normalize_ine(raw_ine) if raw_ine is not None else None
    ine_status: IneStatus = "missing" if raw_ine is None else ("valid" if ine else "invalid")
    if ine_status == "invalid":
        f.warn("ENTEleveINE", "ine_invalid", "INE does not have a valid shape")
    others = f.many("ENTPersonAutresPrenoms", _name, "name_invalid", "invalid names")
    birth_name = f.optional("ENTPersonNomPatro", _name, "name_invalid", "invalid name")
    classes = f.many("ENTPersonClasses", _class, "class_invalid", "malformed class values")
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
    f = _Fields(attrs)
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
        address = _cached_text(raw_address, 256)
        if address is None:
            f.warn("ENTPersonAdresse", "text_invalid", "invalid address")
    postal = f.optional(
        "ENTPersonCodePostal", _postal, "postal_code_invalid", "invalid postal code"
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
    f = _Fields(attrs)
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

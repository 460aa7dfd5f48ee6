"""The AAF mapping, one table read in both directions: attribute <-> record field.

:mod:`connectors.aaf.build` reads a record's attributes with it (validating each value, with the
rule and message of its issue), :mod:`connectors.aaf.attrs` writes a record back with it (the
generator, a ``modifyRequest`` completed on its base record). A column is one AAF attribute and
one field of the contract record. The attributes whose meaning spans several fields or depends
on the extract (jointures checked against the request's id, the INE and its status, the SIREN
hold, birth dates judged against the extract's date, a pupil's school year, the address lines of
2D files, the staff classification) are listed in ``OWN_RULES`` and handled by the code of both
modules, next to the rule they follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.aaf.fields import (
    Attrs,
    Fields,
    cached_class,
    cached_name,
    cached_postal,
    cached_text,
)
from schemas.feed import Category, ClassAssignment
from sync import validation as v
from sync.admission import ADMISSION_ATTRIBUTE


def _text(max_chars: int) -> Callable[[str], str | None]:
    return lambda raw: cached_text(raw, max_chars)


text32, text64, text128 = _text(32), _text(64), _text(128)


def link(raw: str) -> str | None:
    """A link to another record (a pupil's guardian, a guardian's pupil): its jointure."""
    return v.normalize_jointure(v.first_field(raw))


def staff_function(raw: str) -> str | None:
    """``<school>$<function code>$<label>$<discipline code>$<discipline label>``."""
    parts = [v.collapse(part) for part in raw.split("$")]
    if len(parts) < 2 or v.normalize_jointure(parts[0]) is None or not parts[1].isalnum():
        return None
    text = "$".join(parts)
    return text if v.normalize_text(text, 512) is not None else None


def flag(value: bool) -> str:
    return "O" if value else "N"


def class_value(c: ClassAssignment) -> str:
    return f"{c.school_jointure}$$${c.code}${c.label}"


@dataclass(frozen=True, slots=True)
class Column:
    attribute: str  # the AAF name (the AAF1D one where 2D files say it otherwise)
    field: str  # the contract record's field
    parse: Callable[[str], Any]  # AAF text -> value; None: invalid
    rule: str  # the rule when a value is invalid
    what: str  # and its message
    show: Callable[[Any], str] = str  # value -> AAF text
    many: bool = False  # every value (duplicates once), else the first
    required: bool = False  # missing or invalid rejects the record; else warned and dropped
    synonyms: tuple[str, ...] = ()  # other names read when the attribute is absent (2D)


# fmt: off
# The columns every person has; then, by category, the table (a row per attribute).
LAST_NAME = Column("ENTPersonNom", "last_name", cached_name, "name_invalid", "invalid name",
                   required=True, synonyms=("sn",))
FIRST_NAME = Column("ENTPersonPrenom", "first_name", cached_name, "name_invalid", "invalid name",
                    required=True, synonyms=("givenName",))
CIVILITY = Column("ENTPersonCivilite", "civility", v.normalize_civility, "civility_invalid",
                  "unknown civility")
EMAIL = Column("ENTPersonMail", "email", v.normalize_email, "email_invalid", "invalid email")
LOGIN = Column("ENTPersonLogin", "academic_login", v.normalize_login, "login_invalid",
               "invalid login")
# fmt: on


def _jointure_column(field: str) -> Column:
    return Column(
        "ENTPersonStructRattach", field, v.normalize_jointure, "jointure_invalid", "invalid"
    )


def _phone(attribute: str, field: str) -> Column:
    return Column(attribute, field, v.normalize_phone, "phone_invalid", "not a valid phone number")


def _text_column(attribute: str, field: str, parse: Callable[[str], str | None]) -> Column:
    return Column(attribute, field, parse, "text_invalid", "invalid text")


def _flag_column(attribute: str, field: str) -> Column:
    return Column(attribute, field, v.parse_flag, "flag_invalid", "not O/N", show=flag)


def _links(attribute: str, field: str) -> Column:
    return Column(attribute, field, link, "link_invalid", "malformed links", many=True)


# fmt: off
COLUMNS: dict[Category, tuple[Column, ...]] = {
    Category.SCHOOLS: (
        Column("ENTStructureUAI", "uai", v.normalize_uai, "uai_invalid", "invalid UAI",
               required=True),
        Column("ENTStructureNomCourant", "name", text128, "text_invalid", "invalid name",
               required=True),
        _text_column("ENTEcoleCommune", "commune", text128),
        _text_column("ENTEcoleCirconscription", "circonscription", text128),
        _text_column("ENTServAcAcademie", "academy", text64),
    ),
    Category.PUPILS: (
        LAST_NAME,
        FIRST_NAME,
        Column("ENTPersonAutresPrenoms", "other_first_names", cached_name, "name_invalid",
               "invalid names", many=True),
        Column("ENTPersonNomPatro", "birth_name", cached_name, "name_invalid", "invalid name"),
        Column("ENTPersonClasses", "classes", cached_class, "class_invalid",
               "malformed class values", show=class_value, many=True),
        _links("ENTEleveAutoriteParentale", "guardian_jointures"),
        _flag_column(ADMISSION_ATTRIBUTE, "admitted_definitively"),
        CIVILITY,
        EMAIL,
        _jointure_column("school_jointure"),
        _text_column("ENTEleveNiveau", "level", text32),
        _text_column("ENTEleveCycle", "cycle", text32),
    ),
    Category.GUARDIANS: (
        LAST_NAME,
        FIRST_NAME,
        _phone("ENTPersonTelPerso", "phone_home"),
        _phone("ENTPersRelEleveTelMobile", "phone_mobile"),
        _phone("ENTPersRelEleveTelPro", "phone_work"),
        Column("ENTPersonCodePostal", "postal_code", cached_postal, "postal_code_invalid",
               "invalid postal code"),
        _text_column("ENTPersonVille", "town", text128),
        _text_column("ENTPersonPays", "country", text64),
        _links("ENTPersRelEleveEleve", "pupil_jointures"),
        CIVILITY,
        EMAIL,
    ),
    Category.STAFF: (
        LAST_NAME,
        FIRST_NAME,
        Column("ENTPersonFonctions", "functions", staff_function, "function_invalid",
               "malformed functions", many=True),
        _flag_column("ENTPersonCategorieEnseignant", "is_teacher"),
        CIVILITY,
        EMAIL,
        LOGIN,
        _jointure_column("attachment_school_jointure"),
    ),
}
# fmt: on

# Attributes whose rule is code, in build.py (reading) and attrs.py (writing), not a column.
OWN_RULES: dict[Category, tuple[str, ...]] = {
    Category.SCHOOLS: ("ENTStructureJointure", "ENTStructureSIREN"),
    Category.PUPILS: (
        "ENTPersonJointure",
        "ENTEleveINE",
        "ENTPersonDateNaissance",
        "ENTEleveAnneeScolaire",
        "ENTEleveDateSortieStructRattach",
    ),
    Category.GUARDIANS: ("ENTPersonJointure", "ENTPersonAdresse"),
    Category.STAFF: (
        "ENTPersonJointure",
        "ENTPersonDateNaissance",
        "ENTEnsFonctionDir",
        "ENTEnsRemplacant",
    ),
}


def read(f: Fields, category: Category) -> dict[str, Any]:
    """The fields of ``category``'s columns from ``f``'s attributes (issues collected in ``f``)."""
    values: dict[str, Any] = {}
    for c in COLUMNS[category]:
        if c.many:
            values[c.field] = f.many(c.attribute, c.parse, c.rule, c.what)
        elif c.required:
            values[c.field] = f.required((c.attribute, *c.synonyms), c.parse, c.rule, c.what)
        else:
            values[c.field] = f.optional(c.attribute, c.parse, c.rule, c.what)
    return values


def write(record: Any, category: Category) -> Attrs:
    """``record``'s columns as AAF attributes (absent and empty values are left out)."""
    attrs: Attrs = {}
    for c in COLUMNS[category]:
        value = getattr(record, c.field)
        if c.many:
            if value:
                attrs[c.attribute] = [c.show(item) for item in value]
        elif value is not None:
            attrs[c.attribute] = [c.show(value)]
    return attrs

"""Desired LDAP entries (SDET classes) of each entity kind, as attribute maps.

An entry is ``{attribute: values}`` with values sorted and deduplicated; absent data is omitted
(never an empty value). Only classes and attributes defined by ``schemas/ldap/sdet.schema`` and
``schemas/ldap/entsync.schema`` appear. Every entry carries the auxiliary ``entsyncOperational``
with ``entsyncId`` and ``entsyncKind`` (the entity kind) so an entry can always be traced back to
its entity; persons also carry ``entsyncAccountState`` (and ``entsyncDisappearedAt`` while
disappeared).

The SDET schema is the published one (``schemas/ldap/sdet.schema``): what it makes mandatory is
always written, what it lacks lives in ``entsync.schema`` (``entsyncCycle``, ``entsyncGroupName``,
``entsyncSchool``...). Jointures are written ``SOURCE$key``, the source named per feed
(:class:`JointureSources`); manual accounts use ``ENT``, the SDET's source for manual entries.

Pupils (``ENTEleve``): SDET's mandatory values for a primary pupil, documented in the README:
``ENTEleveStatutEleve`` ``SCOLAIRE``; ``ENTEleveMEF`` and ``ENTEleveNivFormation`` the ONDE level
code (AAF1D carries no MEF), ``ENTEleveLibelleMEF`` its label; ``ENTEleveFiliere``
``PREMIER DEGRE``; ``ENTEleveMajeur`` ``O`` when 18 or older on 1 September of the record's school
year, else ``N``; ``ENTEleveClasses`` the classes, or :data:`NO_CLASS` parts when there is none
(classes retired at a switchover, a pre-deleted account). Guardians are ``ENTEleveParents`` DNs,
only of guardians that have an entry.

Group classes: class-scoped groups (pupils, guardians or teachers of one class) are
``ENTClasse``, with the class label as ``entsyncGroupName``; school-wide groups are ``ENTGroupe``
(the GAR group's ``entsyncGroupName`` is ``Resp-Affect-GAR``). All are ``groupOfNames``.
``entsyncGroupProfile`` holds the group's profile word (pupils, guardians, teachers, staff, gar).

Errors never carry attribute values (personal data).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from schemas.entities import BlockSpec, GroupSpec, ManualAccount
from schemas.feed import Guardian, Pupil, School, Staff
from schemas.state import AccountState
from sync import dit, ids

Entry = dict[str, tuple[str, ...]]
Value = str | None
Values = Value | Iterable[Value]

PERSON_CLASSES: Final = ("top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson")
OPERATIONAL_CLASS: Final = "entsyncOperational"

PROFILE_PUPIL: Final = "National_1"
PROFILE_GUARDIAN: Final = "National_2"
PROFILE_TEACHER: Final = "National_3"
PROFILE_DIRECTOR: Final = "National_4"
PROFILE_OTHER_STAFF: Final = "National_6"

MANUAL_SOURCE: Final = "ENT"  # SDET: the jointure source of entries made by hand
PUPIL_STATUS: Final = "SCOLAIRE"
PRIMARY_COURSE: Final = "PREMIER DEGRE"  # ENTEleveFiliere of every primary pupil
UNKNOWN_LEVEL: Final = "1D"  # MEF and level of a pupil whose record names no level
LEVEL_LABELS: Final = {
    "TPS": "TOUTE PETITE SECTION",
    "PS": "PETITE SECTION",
    "MS": "MOYENNE SECTION",
    "GS": "GRANDE SECTION",
    "CP": "COURS PREPARATOIRE",
    "CE1": "COURS ELEMENTAIRE 1",
    "CE2": "COURS ELEMENTAIRE 2",
    "CM1": "COURS MOYEN 1",
    "CM2": "COURS MOYEN 2",
}
NO_CLASS: Final = ""  # the class part of ENTEleveClasses for a pupil with no current class
AGE_OF_MAJORITY: Final = 18


@dataclass(frozen=True, slots=True)
class JointureSources:
    """The ``SOURCE`` of ``SOURCE$key`` jointures, per feed: ONDE (schools, pupils, guardians)
    and the academy staff feed. Fixed for the life of a directory, like the id namespace."""

    onde: str = "ONDE"
    staff: str = "AAF"


def jointure(source: str, key: str) -> str:
    """An SDET jointure value: ``SOURCE$key``."""
    return f"{source}${key}"


def source_key(value: str) -> str:
    """The source's key in a jointure value (what follows the first ``$``); a bare key as is."""
    return value.split("$", 1)[1] if "$" in value else value


def of_age(birth_date: date | None, school_year: str | None) -> bool:
    """18 or older on 1 September of the school year (``2026-2027``); unknown: not of age."""
    if birth_date is None or school_year is None or not school_year[:4].isdigit():
        return False
    start = date(int(school_year[:4]), 9, 1)
    birthday_to_come = (start.month, start.day) < (birth_date.month, birth_date.day)
    return start.year - birth_date.year - birthday_to_come >= AGE_OF_MAJORITY


def build(attributes: dict[str, Values]) -> Entry:
    """Drop absent and blank values; sort and deduplicate the rest; drop empty attributes."""
    entry: Entry = {}
    for name, raw in attributes.items():
        if raw is None:
            continue
        if isinstance(raw, str):
            if raw and not raw.isspace():
                entry[name] = (raw,)
            continue
        kept = sorted({v for v in raw if v and not v.isspace()})
        if kept:
            entry[name] = tuple(kept)
    return entry


def ldap_date(value: date | None) -> str | None:
    """``ENTPersonDateNaissance`` form: dd/mm/yyyy."""
    return value.strftime("%d/%m/%Y") if value else None


def generalized_time(value: datetime | None) -> str | None:
    """GeneralizedTime in UTC; naive datetimes are taken as UTC."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.strftime("%Y%m%d%H%M%SZ")


def postal_address(value: str | None) -> str | None:
    """RFC 4517 PostalAddress: lines joined by ``$``, with ``\\`` and ``$`` escaped."""
    if not value:
        return None
    lines = [line.strip() for line in value.replace("\r", "\n").split("\n") if line.strip()]
    return "$".join(line.replace("\\", "\\5C").replace("$", "\\24") for line in lines) or None


def _person(
    entity_id: str,
    kind: str,
    first_name: str,
    last_name: str,
    login: str,
    jointure: str,
    account_state: AccountState,
    disappeared_at: datetime | None,
) -> dict[str, Values]:
    # cn and sn are MUST of person: a nameless record still gets a valid entry.
    cn = " ".join(n.strip() for n in (first_name, last_name) if n.strip()) or login
    return {
        "uid": entity_id,
        "cn": cn,
        "sn": last_name.strip() or cn,
        "givenName": first_name,
        "ENTPersonLogin": login,
        "ENTPersonJointure": jointure,
        "entsyncId": entity_id,
        "entsyncKind": kind,
        "entsyncAccountState": account_state,
        "entsyncDisappearedAt": (
            generalized_time(disappeared_at)
            if account_state in ("disappeared", "predeleted")
            else None
        ),
    }


PERIMETER_ATTRIBUTES: Final = frozenset(
    {
        "ENTPersonStructRattach",
        "ENTEleveClasses",
        "ENTEleveParents",
        "ENTAuxPersRelEleveEleve",
        "entsyncSchool",
        "ENTAuxEnsClasses",
        "ENTPersonFonctions",  # each value names a school (a director's function, say)
    }
)
"""What ties a person to schools, classes and other people: a pre-deleted account loses it."""


def predeleted(entry: Entry, at: datetime) -> Entry:
    """A pre-deleted person's entry: same DN, names and login, out of every perimeter.

    ``ENTEleveClasses`` is mandatory in SDET: a pre-deleted pupil keeps one value naming no
    school and no class."""
    kept = {name: values for name, values in entry.items() if name not in PERIMETER_ATTRIBUTES}
    kept["objectClass"] = tuple(c for c in entry["objectClass"] if c != "ENTAuxPersRelEleve")
    if "ENTEleve" in kept["objectClass"]:
        kept["ENTEleveClasses"] = (f"${NO_CLASS}",)
    kept["entsyncPredeletedAt"] = (generalized_time(at) or "",)
    return kept


def blocked(entry: Entry, block: BlockSpec) -> Entry:
    """An account under a bulk block: the window and the message the ENT shows."""
    return {
        **entry,
        "entsyncBlockedFrom": (generalized_time(block.start) or "",),
        "entsyncBlockedUntil": (generalized_time(block.end) or "",),
        "entsyncBlockedMessage": (block.message,),
    }


def class_value(school_jointure: str, class_code: str, base_dn: str) -> str:
    """One ``ENTEleveClasses`` value: ``<school DN>$<class code>``."""
    return f"{dit.school_dn(school_jointure, base_dn)}${class_code}"


def pupil_entry(
    entity_id: str,
    pupil: Pupil,
    *,
    login: str,
    account_state: AccountState,
    disappeared_at: datetime | None = None,
    parents: Collection[str],
    base_dn: str,
    namespace: str,
    sources: JointureSources = JointureSources(),
) -> Entry:
    """An élève: ``ENTEleve``; ``ENTEleveParents`` names the record's guardians that are among
    ``parents`` (entity ids of the guardians known to have an entry: no dangling DN)."""
    attrs = _person(
        entity_id,
        "pupil",
        pupil.first_name,
        pupil.last_name,
        login,
        jointure(sources.onde, pupil.jointure),
        account_state,
        disappeared_at,
    )
    school = pupil.school_jointure
    level = pupil.level or UNKNOWN_LEVEL
    classes = [class_value(c.school_jointure, c.code, base_dn) for c in pupil.classes]
    if not classes:
        # SDET makes ENTEleveClasses mandatory: the school, with no class (see NO_CLASS).
        classes = [f"{dit.school_dn(school, base_dn) if school else ''}${NO_CLASS}"]
    attrs |= {
        "objectClass": (*PERSON_CLASSES, "ENTEleve", OPERATIONAL_CLASS),
        "ENTPersonDateNaissance": ldap_date(pupil.birth_date),
        "ENTPersonStructRattach": dit.school_dn(school, base_dn) if school else None,
        "ENTPersonProfils": PROFILE_PUPIL,
        "ENTEleveINE": pupil.ine,
        "ENTEleveClasses": classes,
        "ENTEleveStatutEleve": PUPIL_STATUS,
        "ENTEleveMEF": level,
        "ENTEleveLibelleMEF": LEVEL_LABELS.get(level.upper(), level),
        "ENTEleveNivFormation": level,
        "ENTEleveFiliere": PRIMARY_COURSE,
        "ENTEleveMajeur": "O" if of_age(pupil.birth_date, pupil.school_year) else "N",
        "entsyncCycle": pupil.cycle,
        "ENTEleveParents": [
            dit.people_dn(g, base_dn)
            for g in (ids.guardian_id(namespace, j) for j in pupil.guardian_jointures)
            if g in parents
        ],
        "ENTPersonAutresPrenoms": pupil.other_first_names,
        "ENTPersonNomPatro": pupil.birth_name,
        "personalTitle": pupil.civility,
        "mail": pupil.email,
    }
    return build(attrs)


def guardian_entry(
    entity_id: str,
    guardian: Guardian,
    *,
    login: str,
    children: Iterable[str],
    account_state: AccountState,
    disappeared_at: datetime | None = None,
    base_dn: str,
    sources: JointureSources = JointureSources(),
) -> Entry:
    """A responsable légal; ``ENTAuxPersRelEleve`` only while it has children (its MUST)."""
    child_dns = sorted(dit.people_dn(c, base_dn) for c in children)
    classes = (*PERSON_CLASSES, *(("ENTAuxPersRelEleve",) if child_dns else ()), OPERATIONAL_CLASS)
    attrs = _person(
        entity_id,
        "guardian",
        guardian.first_name,
        guardian.last_name,
        login,
        jointure(sources.onde, guardian.jointure),
        account_state,
        disappeared_at,
    )
    attrs |= {
        "objectClass": classes,
        "ENTPersonProfils": PROFILE_GUARDIAN,
        "ENTAuxPersRelEleveEleve": child_dns,
        "personalTitle": guardian.civility,
        "mail": guardian.email,
        "homePhone": guardian.phone_home,
        "mobile": guardian.phone_mobile,
        "telephoneNumber": guardian.phone_work,
        "ENTPersonMobileSMS": guardian.phone_mobile,
        "postalAddress": postal_address(guardian.address),
        "postalCode": guardian.postal_code,
        "l": guardian.town,
    }
    return build(attrs)


def manual_entry(
    entity_id: str,
    account: ManualAccount,
    *,
    login: str,
    account_state: AccountState,
    base_dn: str,
) -> Entry:
    """A manual account (``entsyncManual=TRUE``): a foster family is a parent (National_2) of
    its school; a guest has no national profile. Its jointure is its entity id (no source)."""
    attrs = _person(
        entity_id,
        "manual",
        account.first_name,
        account.last_name,
        login,
        jointure(MANUAL_SOURCE, entity_id),
        account_state,
        None,
    )
    attrs |= {
        "objectClass": (*PERSON_CLASSES, OPERATIONAL_CLASS),
        "ENTPersonStructRattach": dit.school_dn(account.school_jointure, base_dn),
        "ENTPersonProfils": PROFILE_GUARDIAN if account.profile == "guardian" else None,
        "entsyncManual": "TRUE",
        "mail": account.email,
    }
    return build(attrs)


def staff_schools(staff: Staff) -> tuple[str, ...]:
    """Attachment school and schools of exercise (sorted, deduplicated)."""
    schools = {*staff.school_jointures}
    if staff.attachment_school_jointure:
        schools.add(staff.attachment_school_jointure)
    return tuple(sorted(schools))


def staff_profiles(staff: Staff) -> tuple[str, ...]:
    """National_3 teacher, National_4 director (both for a teaching director), else National_6."""
    profiles = [PROFILE_TEACHER] if staff.is_teacher else []
    if staff.is_director:
        profiles.append(PROFILE_DIRECTOR)
    return tuple(profiles) or (PROFILE_OTHER_STAFF,)


def staff_entry(
    entity_id: str,
    staff: Staff,
    *,
    login: str,
    account_state: AccountState,
    disappeared_at: datetime | None = None,
    classes: Iterable[tuple[str, str]] = (),
    base_dn: str,
    sources: JointureSources = JointureSources(),
) -> Entry:
    """A personnel: ``ENTAuxEnseignant`` for teachers, else ``ENTAuxNonEnsEtab``.

    ``classes``: ``(school jointure, class code)`` of the classes the teacher is attached to (by
    admin command, accepted by the class); teachers only, as ``ENTAuxEnsClasses``.
    """
    aux = "ENTAuxEnseignant" if staff.is_teacher else "ENTAuxNonEnsEtab"
    attachment = staff.attachment_school_jointure
    attrs = _person(
        entity_id,
        "staff",
        staff.first_name,
        staff.last_name,
        login,
        jointure(sources.staff, staff.jointure),
        account_state,
        disappeared_at,
    )
    attrs |= {
        "objectClass": (*PERSON_CLASSES, aux, OPERATIONAL_CLASS),
        "ENTPersonDateNaissance": ldap_date(staff.birth_date),
        "ENTPersonStructRattach": dit.school_dn(attachment, base_dn) if attachment else None,
        "ENTPersonProfils": staff_profiles(staff),
        "ENTPersonFonctions": staff.functions,
        "entsyncSchool": (
            [dit.school_dn(s, base_dn) for s in staff_schools(staff)] if staff.is_teacher else None
        ),
        "ENTAuxEnsClasses": (
            [class_value(school, code, base_dn) for school, code in classes]
            if staff.is_teacher
            else None
        ),
        "personalTitle": staff.civility,
        "mail": staff.email,
    }
    return build(attrs)


def school_entry(
    entity_id: str, school: School, *, sources: JointureSources = JointureSources()
) -> Entry:
    """An école: ``ENTStructure`` named by its jointure (a held school has no SIREN: no entry)."""
    return build(
        {
            "objectClass": ("top", "organizationalUnit", "ENTStructure", OPERATIONAL_CLASS),
            "ou": school.jointure,
            "ENTStructureJointure": jointure(sources.onde, school.jointure),
            "ENTStructureUAI": school.uai,
            "ENTStructureNomCourant": school.name,
            "ENTStructureSIREN": school.siren,
            "l": school.commune,
            "entsyncId": entity_id,
            "entsyncKind": "school",
        }
    )


def group_description(spec: GroupSpec) -> str:
    if spec.profile == "gar":
        return f"GAR assignment managers of school {spec.school_jointure}"
    if spec.class_code:
        label = spec.class_label or spec.class_code
        return f"{spec.profile} of class {label}, school {spec.school_jointure}"
    return f"{spec.profile} of school {spec.school_jointure}"


def group_entry(entity_id: str, spec: GroupSpec, members: Iterable[str], *, base_dn: str) -> Entry:
    """A feed-managed group; ``members`` are entity ids of people. Needs at least one member."""
    member_dns = sorted(dit.people_dn(m, base_dn) for m in members)
    if not member_dns:
        raise ValueError("a groupOfNames needs at least one member")
    structural = "ENTClasse" if spec.class_code else "ENTGroupe"
    if spec.class_code:
        # SDET display name of a class: its label as the school wrote it.
        display: str | None = spec.class_label or spec.class_code
    else:
        display = dit.GAR_GROUP_SUFFIX if spec.profile == "gar" else None
    return build(
        {
            "objectClass": ("top", "groupOfNames", structural, OPERATIONAL_CLASS),
            "cn": dit.group_name(spec),
            "member": member_dns,
            "description": group_description(spec),
            "entsyncGroupName": display,
            "entsyncSchool": dit.school_dn(spec.school_jointure, base_dn),
            "entsyncGroupProfile": spec.profile,
            "entsyncClassCode": spec.class_code,
            "entsyncId": entity_id,
            "entsyncKind": "group",
        }
    )

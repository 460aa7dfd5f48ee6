"""Entries read back into what they were built from: the inverse of :mod:`sync.entries`.

Used by :mod:`sync.rebuild` when the stream state is lost. Pure; entries come with the names
the rules read spelled as entsync writes them (:func:`sync.legacy.canonical_names`).

What an entry does not hold is taken so that building the entry again gives the same entry:

- a pupil's school year is not written, only ``ENTEleveMajeur``: a year giving the same value is
  taken; an unknown level (``1D``) is no level; class labels come from the class groups'
  ``entsyncGroupName``; guardians named by ``ENTEleveParents`` are read back to their jointures
  through their own entries (a guardian without an entry cannot be named);
- a staff member's academic login is not told apart from an allocated one: the login is restored
  on the entity, never asked again; a non-teacher's schools of exercise are the school ``staff``
  groups it is a member of (only teachers carry ``entsyncSchool``);
- values are sorted by the builders: the order of first names or functions is lost, which no
  entry shows.

Errors never carry values.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from schemas.entities import BlockSpec, GroupSpec, ManualAccount
from schemas.feed import ClassAssignment, Guardian, Pupil, School, Staff, record_key
from schemas.state import AccountState, EntityState, LinkPayload
from sync import commands, dit, entries, ids
from sync.desired import Context
from sync.entries import Entry
from sync.written import reconciler_names


class UnreadableEntry(ValueError):
    """An entry that cannot be read back (the message names the attribute, never a value)."""


# ----------------------------------------------------------------------------- DNs and values


def _unescape(value: str) -> str:
    raw = value.encode("utf-8")
    if b"\\" not in raw:
        return value
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 1 < len(raw):
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and all(chr(c) in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", errors="replace")


def rdns(dn: str) -> list[tuple[str, str]]:
    """``dn`` as (attribute lowercased, value unescaped) pairs, leaf first; [] if malformed."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return []
    return [(name.lower(), _unescape(value)) for name, value, _ in parts]


def dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN as the directory compares it (names and these values ignore case)."""
    return tuple((name, value.lower()) for name, value in rdns(dn))


def leaf_value(dn: str, attribute: str) -> str | None:
    pairs = rdns(dn)
    if not pairs or pairs[0][0] != attribute.lower() or not pairs[0][1]:
        return None
    return pairs[0][1]


def _first(entry: Entry, name: str) -> str | None:
    values = entry.get(name)
    return values[0] if values else None


def _all(entry: Entry, name: str) -> tuple[str, ...]:
    return entry.get(name, ())


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError as exc:
        raise UnreadableEntry("ENTPersonDateNaissance is not dd/mm/yyyy") from exc


def _address(value: str | None) -> str | None:
    """RFC 4517 PostalAddress back to lines (see :func:`sync.entries.postal_address`)."""
    if not value:
        return None
    return "\n".join(
        line.replace("\\24", "$").replace("\\5C", "\\").replace("\\5c", "\\")
        for line in value.split("$")
    )


def kind_of(entry: Entry) -> str | None:
    return _first(entry, "entsyncKind")


def entity_id_of(entry: Entry) -> str | None:
    return _first(entry, "entsyncId")


def foreign_holder(dn: str) -> str:
    """A stable holder id for a login held by an entry entsync does not manage."""
    digest = hashlib.blake2b(repr(dn_key(dn)).encode(), digest_size=8).hexdigest()
    return f"directory:{digest}"


@dataclass(frozen=True)
class Account:
    login: str | None
    state: AccountState | None
    disappeared_at: datetime | None
    predeleted_at: datetime | None


def account(entry: Entry) -> Account:
    state = _first(entry, "entsyncAccountState")
    return Account(
        login=_first(entry, "ENTPersonLogin"),
        state=state if state in ("active", "disappeared", "predeleted") else None,  # type: ignore[arg-type]
        disappeared_at=_time(_first(entry, "entsyncDisappearedAt")),
        predeleted_at=_time(_first(entry, "entsyncPredeletedAt")),
    )


def applied(entry: Entry) -> Entry:
    """``entry`` cut to what the reconciler writes, spelled and ordered as its builders do."""
    known = reconciler_names().get(kind_of(entry) or "")
    if known is None:
        return {}
    classes, attributes = known
    class_names = {c.lower(): c for c in classes}
    names = {a.lower(): a for a in attributes}
    out: Entry = {}
    for name, values in entry.items():
        canonical = names.get(name.lower())
        if canonical is None:
            continue
        if canonical == "objectClass":
            kept = {class_names[v.lower()] for v in values if v.lower() in class_names}
        else:
            kept = set(values)
        if kept:
            out[canonical] = tuple(sorted(kept))
    return out


# ----------------------------------------------------------------------------- names of others


@dataclass(frozen=True)
class Names:
    """What one entry needs from the others to be read back."""

    namespace: str
    base_dn: str
    schools: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict)  # DN -> jointure
    uais: dict[str, str] = field(default_factory=dict)  # school jointure -> UAI
    jointures: dict[str, str] = field(default_factory=dict)  # person id -> bare jointure
    labels: dict[tuple[str, str], str] = field(default_factory=dict)  # (school, code) -> label
    memberships: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, directory: Mapping[str, Entry], ctx: Context) -> Names:
        names = cls(namespace=ctx.namespace, base_dn=ctx.base_dn)
        for dn, entry in directory.items():
            kind = kind_of(entry)
            if kind == "school":
                jointure = leaf_value(dn, "ou") or entries.source_key(
                    _first(entry, "ENTStructureJointure") or ""
                )
                names.schools[dn_key(dn)] = jointure
                if uai := _first(entry, "ENTStructureUAI"):
                    names.uais[jointure] = uai
            elif (
                kind in ids.PERSON_KINDS
                and (entity_id := entity_id_of(entry))
                and (raw := _first(entry, "ENTPersonJointure"))
            ):
                names.jointures[entity_id] = entries.source_key(raw)
        memberships: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for entry in directory.values():
            if kind_of(entry) != "group":
                continue
            school = names.school_of(_first(entry, "entsyncSchool"))
            profile = _first(entry, "entsyncGroupProfile") or ""
            code = _first(entry, "entsyncClassCode")
            if school is None:
                continue
            if code and profile == "pupils":
                names.labels[(school, code)] = _first(entry, "entsyncGroupName") or code
            if not code:
                for member in _all(entry, "member"):
                    if person := leaf_value(member, "uid"):
                        memberships[person].add((school, profile))
        names.memberships.update(memberships)
        return names

    def school_of(self, dn: str | None) -> str | None:
        """The jointure of the school ``dn`` names (its entry's, else the DN's own value)."""
        if not dn:
            return None
        return self.schools.get(dn_key(dn)) or leaf_value(dn, "ou")

    def jointures_of(self, people_dns: Iterable[str]) -> tuple[str, ...]:
        """The jointures of the persons ``people_dns`` name (those with an entry)."""
        return tuple(
            self.jointures[p]
            for dn in people_dns
            if (p := leaf_value(dn, "uid")) is not None and p in self.jointures
        )

    def schools_in(self, person_id: str, profile: str) -> tuple[str, ...]:
        return tuple(sorted(s for s, p in self.memberships.get(person_id, ()) if p == profile))

    def uais_of(self, schools: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({self.uais[s] for s in schools if s in self.uais}))


# ----------------------------------------------------------------------------- records


def _names(entry: Entry) -> dict[str, str]:
    last = _first(entry, "sn")
    if last is None:
        raise UnreadableEntry("no sn")
    return {"first_name": _first(entry, "givenName") or "", "last_name": last}


def _school(entry: Entry) -> School:
    jointure = entries.source_key(_first(entry, "ENTStructureJointure") or "")
    if not jointure:
        raise UnreadableEntry("no ENTStructureJointure")
    return School(
        jointure=_first(entry, "ou") or jointure,
        uai=_first(entry, "ENTStructureUAI") or "",
        name=_first(entry, "ENTStructureNomCourant") or "",
        commune=_first(entry, "l"),
        siren=_first(entry, "ENTStructureSIREN"),
    )


def _school_year(entry: Entry, birth_date: date | None) -> str | None:
    """A school year giving the entry's ``ENTEleveMajeur`` (the year itself is not written)."""
    if _first(entry, "ENTEleveMajeur") != "O" or birth_date is None:
        return None
    start = birth_date.year + entries.AGE_OF_MAJORITY + 1
    return f"{start}-{start + 1}"


def _pupil(entry: Entry, names: Names) -> Pupil:
    birth_date = _date(_first(entry, "ENTPersonDateNaissance"))
    school = names.school_of(_first(entry, "ENTPersonStructRattach"))
    classes = []
    for value in _all(entry, "ENTEleveClasses"):
        school_dn, _, code = value.rpartition("$")
        class_school = names.school_of(school_dn)
        if code and class_school:
            label = names.labels.get((class_school, code), code)
            classes.append(ClassAssignment(school_jointure=class_school, code=code, label=label))
    level = _first(entry, "ENTEleveNivFormation")
    return Pupil(
        jointure=entries.source_key(_first(entry, "ENTPersonJointure") or ""),
        ine=_first(entry, "ENTEleveINE"),
        **_names(entry),
        other_first_names=_all(entry, "ENTPersonAutresPrenoms"),
        birth_name=_first(entry, "ENTPersonNomPatro"),
        civility=_first(entry, "personalTitle"),
        birth_date=birth_date,
        email=_first(entry, "mail"),
        school_jointure=school,
        classes=tuple(classes),
        level=None if level == entries.UNKNOWN_LEVEL else level,
        cycle=_first(entry, "entsyncCycle"),
        guardian_jointures=names.jointures_of(_all(entry, "ENTEleveParents")),
        school_year=_school_year(entry, birth_date),
    )


def _guardian(entry: Entry, names: Names) -> Guardian:
    return Guardian(
        jointure=entries.source_key(_first(entry, "ENTPersonJointure") or ""),
        **_names(entry),
        civility=_first(entry, "personalTitle"),
        email=_first(entry, "mail"),
        phone_home=_first(entry, "homePhone"),
        phone_mobile=_first(entry, "mobile"),
        phone_work=_first(entry, "telephoneNumber"),
        address=_address(_first(entry, "postalAddress")),
        postal_code=_first(entry, "postalCode"),
        town=_first(entry, "l"),
        pupil_jointures=names.jointures_of(_all(entry, "ENTAuxPersRelEleveEleve")),
    )


def _staff(entry: Entry, entity_id: str, names: Names) -> Staff:
    is_teacher = "ENTAuxEnseignant" in _all(entry, "objectClass")
    if is_teacher:
        schools = tuple(s for dn in _all(entry, "entsyncSchool") if (s := names.school_of(dn)))
    else:
        schools = names.schools_in(entity_id, "staff")
    return Staff(
        jointure=entries.source_key(_first(entry, "ENTPersonJointure") or ""),
        **_names(entry),
        civility=_first(entry, "personalTitle"),
        birth_date=_date(_first(entry, "ENTPersonDateNaissance")),
        email=_first(entry, "mail"),
        attachment_school_jointure=names.school_of(_first(entry, "ENTPersonStructRattach")),
        school_jointures=schools,
        functions=_all(entry, "ENTPersonFonctions"),
        is_teacher=is_teacher,
        is_director=entries.PROFILE_DIRECTOR in _all(entry, "ENTPersonProfils"),
    )


def record(
    kind: str, entry: Entry, names: Names
) -> tuple[School | Pupil | Guardian | Staff | None, str | None]:
    """The record ``entry`` was built from, and its feed key (None, None for manual accounts)."""
    entity_id = entity_id_of(entry) or ""
    built: School | Pupil | Guardian | Staff
    match kind:
        case "school":
            built = _school(entry)
        case "pupil":
            built = _pupil(entry, names)
        case "guardian":
            built = _guardian(entry, names)
        case "staff":
            built = _staff(entry, entity_id, names)
        case "manual":
            return None, None
        case _:
            raise UnreadableEntry("unknown entsyncKind")
    if not built.jointure:
        raise UnreadableEntry("no jointure")
    return built, record_key(kind, built.jointure)


def manual_account(entry: Entry, names: Names) -> ManualAccount:
    return ManualAccount(
        profile="guardian"
        if entries.PROFILE_GUARDIAN in _all(entry, "ENTPersonProfils")
        else "guest",
        first_name=_first(entry, "givenName") or "",
        last_name=_first(entry, "sn") or "",
        school_jointure=names.school_of(_first(entry, "ENTPersonStructRattach")) or "",
        email=_first(entry, "mail"),
    )


def school_uais(entry: Entry, names: Names) -> tuple[str, ...]:
    """UAIs of the schools an entry names or whose groups hold it (a school: its own)."""
    if kind_of(entry) == "school":
        uai = _first(entry, "ENTStructureUAI")
        return (uai,) if uai else ()
    schools = {s for s, _ in names.memberships.get(entity_id_of(entry) or "", ())}
    for name in ("ENTPersonStructRattach", "entsyncSchool"):
        schools.update(s for dn in _all(entry, name) if (s := names.school_of(dn)))
    return names.uais_of(schools)


# ----------------------------------------------------------------------------- admin-command facts


def class_teachers(directory: Iterable[Entry], names: Names) -> dict[str, set[str]]:
    """Class (pupils group) id -> teachers attached to it, from ``ENTAuxEnsClasses``."""
    attached: dict[str, set[str]] = defaultdict(set)
    for entry in directory:
        teacher = entity_id_of(entry)
        if kind_of(entry) != "staff" or teacher is None:
            continue
        for value in _all(entry, "ENTAuxEnsClasses"):
            school_dn, _, code = value.rpartition("$")
            school = names.school_of(school_dn)
            if school and code:
                spec = commands.class_spec(school, code)
                attached[ids.group_id(names.namespace, spec)].add(teacher)
    return dict(attached)


def gar_groups(directory: Iterable[Entry], names: Names) -> dict[str, tuple[GroupSpec, set[str]]]:
    """GAR group id -> (its spec, its members)."""
    groups: dict[str, tuple[GroupSpec, set[str]]] = {}
    for entry in directory:
        group = entity_id_of(entry)
        if kind_of(entry) != "group" or _first(entry, "entsyncGroupProfile") != "gar" or not group:
            continue
        school = names.school_of(_first(entry, "entsyncSchool"))
        if school is None:
            continue
        members = {m for dn in _all(entry, "member") if (m := leaf_value(dn, "uid"))}
        groups[group] = (dit.gar_group_spec(school), members)
    return groups


def gar_group_state(
    group_id: str, spec: GroupSpec, managers: Iterable[str], at: datetime
) -> EntityState:
    """A GAR group as the managers' links made it."""
    members = {m: LinkPayload(at=at, group=spec) for m in sorted(managers)}
    return EntityState(entity_id=group_id, kind="group", links={"member": members}, group=spec)


def group_spec(entry: Entry, names: Names) -> GroupSpec | None:
    """What a feed-managed group entry describes (None: not readable)."""
    school = names.school_of(_first(entry, "entsyncSchool"))
    profile = _first(entry, "entsyncGroupProfile")
    if school is None or profile not in ("pupils", "guardians", "teachers", "staff", "gar"):
        return None
    code = _first(entry, "entsyncClassCode")
    return GroupSpec(
        school_jointure=school,
        profile=profile,
        class_code=code,
        class_label=(_first(entry, "entsyncGroupName") or code) if code else None,
    )


BLOCKABLE: Final = ("pupils", "guardians", "teachers", "staff")


def _shown_block(entry: Entry | None) -> tuple[datetime, datetime, str] | None:
    if entry is None:
        return None
    start = _time(_first(entry, "entsyncBlockedFrom"))
    end = _time(_first(entry, "entsyncBlockedUntil"))
    message = _first(entry, "entsyncBlockedMessage")
    return (start, end, message) if start and end and message is not None else None


def blocks(directory: Mapping[str, Entry], names: Names) -> dict[str, dict[str, BlockSpec]]:
    """School profile group id -> the bulk block its members show. A block covers every member
    of its group, so a group has one when all its members show it (one shown by some members
    only is another group's: a guardian is in each of its children's schools' groups)."""
    people = {entity_id_of(e): e for e in directory.values() if kind_of(e) in ids.PERSON_KINDS}
    found: dict[str, dict[str, BlockSpec]] = {}
    for entry in directory.values():
        group = entity_id_of(entry)
        spec = group_spec(entry, names) if kind_of(entry) == "group" else None
        if group is None or spec is None or spec.class_code or spec.profile not in BLOCKABLE:
            continue
        shown = {_shown_block(people.get(leaf_value(dn, "uid"))) for dn in _all(entry, "member")}
        if len(shown) != 1 or (window := shown.pop()) is None:
            continue
        start, end, message = window
        block = commands.block_spec(spec.school_jointure, spec.profile, start, end, message)
        found[group] = {block.block_id: block}
    return found

"""The bridge's directory access: read guardians and pupils for the J+1 snapshot, and write the
attributes the bridge owns (never one the reconciler manages) with one audit event per change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from ldap3 import MODIFY_REPLACE
from ldap3.utils.dn import parse_dn

from connectors.ldap.connection import LdapParams, connection, result_of
from connectors.ldap.directory import DirectoryEntry, read_entry, search_entries
from connectors.ldap.errors import DirectoryWriteError
from schemas.audit import DirectoryChanged
from schemas.bridge import ChildFacts, GuardianFacts, Snapshot
from schemas.entities import Cause
from sync import dit
from sync.bridge import BRIDGE_ATTRIBUTES, present
from sync.diff import audit, diff
from sync.ops import ModifyEntry

GUARDIAN_FILTER = (
    "(&(objectClass=ENTPerson)(|(entsyncKind=guardian)"
    "(&(entsyncManual=TRUE)(ENTPersonProfils=National_2))))"
)
_GUARDIAN_ATTRS = (
    "entsyncId",
    "ENTPersonJointure",
    "sn",
    "givenName",
    "ENTPersonDateNaissance",
    "ENTPersonMobileSMS",
    "mobile",
    "entsyncManual",
    "ENTAuxPersRelEleveEleve",
)
_PUPIL_ATTRS = ("entsyncId", "givenName", "ENTPersonDateNaissance", "ENTPersonStructRattach")


class BridgeDirectoryError(RuntimeError):
    """A directory fact the bridge needs is missing (the message names ids, never values)."""


def uid_of(dn: str) -> str | None:
    """The ``uid`` of a person DN (``uid=<entity id>,ou=people,...``), or None."""
    try:
        first = parse_dn(dn)[0]
    except Exception:
        return None
    return str(first[1]) if first[0].lower() == "uid" else None


def _ldap_date(values: tuple[str, ...]) -> date | None:
    if not values:
        return None
    try:
        return datetime.strptime(values[0], "%d/%m/%Y").date()
    except ValueError:
        return None


def _first(entry: DirectoryEntry, name: str) -> str | None:
    values = entry.get(name)
    return values[0] if values else None


def _guardian(entry: DirectoryEntry, children: Mapping[str, ChildFacts]) -> GuardianFacts | None:
    guardian_id = _first(entry, "entsyncId") or uid_of(entry.dn)
    if guardian_id is None:
        return None
    child_ids = tuple(sorted(c for c in map(uid_of, entry.get("ENTAuxPersRelEleveEleve")) if c))
    schools = sorted({s for c in child_ids if c in children and (s := children[c].school_dn)})
    return GuardianFacts(
        guardian_id=guardian_id,
        dn=entry.dn,
        jointure=_first(entry, "ENTPersonJointure") or "",
        last_name=_first(entry, "sn") or "",
        first_name=_first(entry, "givenName") or "",
        birth_date=_ldap_date(entry.get("ENTPersonDateNaissance")),
        mobile=_first(entry, "ENTPersonMobileSMS") or _first(entry, "mobile"),
        manual=(_first(entry, "entsyncManual") or "").upper() == "TRUE",
        child_ids=child_ids,
        school_dns=tuple(s for s in schools if s),
    )


def read_snapshot(params: LdapParams, base_dn: str, run_at: datetime) -> Snapshot:
    """Guardians (feed and manual parent accounts) and pupils, as the directory has them now."""
    people = f"ou={dit.PEOPLE_OU},{base_dn}"
    structures = f"ou={dit.STRUCTURES_OU},{base_dn}"
    school_names = {
        e.dn.lower(): _first(e, "ENTStructureNomCourant") or _first(e, "ou") or ""
        for e in search_entries(
            params, structures, "(objectClass=ENTStructure)", ("ENTStructureNomCourant", "ou")
        )
    }
    children: dict[str, ChildFacts] = {}
    for entry in search_entries(params, people, "(objectClass=ENTEleve)", _PUPIL_ATTRS):
        child_id = _first(entry, "entsyncId") or uid_of(entry.dn)
        if child_id is None:
            continue
        school = _first(entry, "ENTPersonStructRattach")
        children[child_id] = ChildFacts(
            child_id=child_id,
            first_name=_first(entry, "givenName") or "",
            school_dn=school,
            school_name=school_names.get(school.lower()) if school else None,
            birth_date=_ldap_date(entry.get("ENTPersonDateNaissance")),
        )
    guardians = {}
    for entry in search_entries(params, people, GUARDIAN_FILTER, _GUARDIAN_ATTRS):
        facts = _guardian(entry, children)
        if facts is not None:
            guardians[facts.guardian_id] = facts
    return Snapshot(run_at=run_at, guardians=guardians, children=children)


def person_exists(params: LdapParams, base_dn: str, entity_id: str, object_class: str) -> bool:
    entry = read_entry(params, dit.people_dn(entity_id, base_dn), ("objectClass",))
    return entry is not None and object_class.lower() in {
        c.lower() for c in entry.get("objectClass")
    }


def write_bridge_attributes(
    params: LdapParams,
    dn: str,
    desired: Mapping[str, tuple[str, ...]],
    *,
    entity_id: str,
    cause: Cause,
    audit_key: bytes,
) -> DirectoryChanged | None:
    """Bring the bridge's attributes of ``dn`` to ``desired``; the audit event, or None if equal.

    Only :data:`sync.bridge.BRIDGE_ATTRIBUTES` are read and replaced. The entry must exist: the
    bridge never creates people.
    """
    entry = read_entry(params, dn, BRIDGE_ATTRIBUTES)
    if entry is None:
        raise BridgeDirectoryError(f"guardian entry {entity_id} is not in the directory")
    current = {name: entry.get(name) for name in BRIDGE_ATTRIBUTES}
    before = present(current)
    after = present(desired)
    op = diff(dn, after, before)
    if op is None:
        return None
    assert isinstance(op, ModifyEntry)
    with connection(params) as conn:
        changes = {name: [(MODIFY_REPLACE, list(values))] for name, values in op.changes.items()}
        if not conn.modify(dn, changes):
            code, name, message = result_of(conn)
            raise DirectoryWriteError("modify", dn, code, name, message)
    return audit(
        op,
        before=before,
        after=after,
        entity_id=entity_id,
        entity_kind="guardian",
        cause=cause,
        digest_key=audit_key,
    )

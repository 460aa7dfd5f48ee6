"""Whole-directory helpers: base DIT, deterministic LDIF export, counting and searching.

Each call opens its own connection: these are for setup, tests and admin commands, not for the
hot write path (see :mod:`connectors.ldap.writer`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ldap3 import BASE, LEVEL, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from connectors.ldap.connection import LdapParams, connection, result_of
from connectors.ldap.errors import BaseEntryError, DirectoryWriteError

# Branches under the base DN. manual-groups holds groups people manage: the feed never writes it.
BRANCHES: Final = ("structures", "people", "groups", "manual-groups")
NO_SUCH_ATTRIBUTE: Final = 16  # a value to remove is not there
ATTRIBUTE_OR_VALUE_EXISTS: Final = 20  # a value to add is there already
NO_SUCH_OBJECT: Final = 32
ALREADY_EXISTS: Final = 68
PAGE_SIZE: Final = 500

Scope = Literal["base", "one", "sub"]
_SCOPES = {"base": BASE, "one": LEVEL, "sub": SUBTREE}


@dataclass(frozen=True)
class DirectoryEntry:
    """An entry as read back: attribute names as the server spelled them, values as text."""

    dn: str
    attributes: dict[str, tuple[str, ...]]

    def get(self, name: str) -> tuple[str, ...]:
        """Values of ``name`` (case-insensitive), empty if absent."""
        lowered = name.lower()
        for key, values in self.attributes.items():
            if key.lower() == lowered:
                return values
        return ()


def dn_sort_key(dn: str) -> tuple[tuple[str, str], ...]:
    """Hierarchical order: a parent sorts before its children, siblings by RDN, case-folded."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except Exception:  # unparsable DN from a foreign server: still sort deterministically
        return ((dn.lower(), ""),)
    return tuple((attr.lower(), value.lower()) for attr, value, _sep in reversed(parts))


def _base_entry(base_dn: str) -> dict[str, list[str]]:
    attr, value, _sep = parse_dn(base_dn, escape=False, strip=True)[0]
    attr = attr.lower()
    if attr == "dc":
        return {"objectClass": ["top", "dcObject", "organization"], "dc": [value], "o": [value]}
    if attr == "o":
        return {"objectClass": ["top", "organization"], "o": [value]}
    if attr == "ou":
        return {"objectClass": ["top", "organizationalUnit"], "ou": [value]}
    raise ValueError(f"base DN must start with dc=, o= or ou=, not {attr}=")


def _add_if_missing(conn: Connection, dn: str, attributes: dict[str, list[str]]) -> bool:
    if conn.add(dn, attributes=attributes):
        return True
    code, name, message = result_of(conn)
    if code == ALREADY_EXISTS:
        return False
    raise DirectoryWriteError("add", dn, code, name, message)


def _exists(conn: Connection, dn: str) -> bool:
    if conn.search(dn, "(objectClass=*)", BASE, attributes=["1.1"]):
        return True
    code, name, message = result_of(conn)
    if code == NO_SUCH_OBJECT:
        return False
    raise DirectoryWriteError("search", dn, code, name, message)


def naming_contexts(conn: Connection) -> list[str]:
    """The suffixes the server holds, from its root DSE."""
    if not conn.search("", "(objectClass=*)", BASE, attributes=["namingContexts"]):
        return []
    for item in conn.response or []:
        raw = (item.get("raw_attributes") or {}).get("namingContexts") or []
        return [value.decode("utf-8", errors="replace") for value in raw]
    return []


def _parent(dn: str) -> str | None:
    parts = parse_dn(dn, escape=True, strip=True)
    if len(parts) < 2:
        return None
    return ",".join(f"{attr}={value}" for attr, value, _sep in parts[1:])


def _may_create_base(conn: Connection, base_dn: str) -> None:
    """Create the base entry only where it belongs to this server: it is one of its naming
    contexts, or its parent exists. Anything else is a wrong base DN or a server that holds
    another tree: refuse, saying which suffixes it holds."""
    contexts = naming_contexts(conn)
    if any(dn_sort_key(c) == dn_sort_key(base_dn) for c in contexts):
        return
    parent = _parent(base_dn)
    if parent is not None and _exists(conn, parent):
        return
    held = ", ".join(repr(c) for c in contexts) or "none published"
    raise BaseEntryError(
        f"the base DN {base_dn!r} does not exist, is not a naming context of the server "
        f"(it holds: {held}) and its parent does not exist either: create it, or set "
        "ENTSYNC_LDAP_BASE_DN to an entry under one of those naming contexts"
    )


def ensure_base_dit(
    params: LdapParams, base_dn: str, branches: Sequence[str] = BRANCHES
) -> list[str]:
    """Create the base entry and the ``ou=<branch>`` entries that are missing; return their DNs.

    Idempotent: an empty list when everything was there. The base entry itself is created only
    when it is the server's naming context or its parent exists (see :func:`_may_create_base`).
    """
    created: list[str] = []
    with connection(params) as conn:
        if not _exists(conn, base_dn):
            _may_create_base(conn, base_dn)
            if _add_if_missing(conn, base_dn, _base_entry(base_dn)):
                created.append(base_dn)
        for branch in branches:
            dn = f"ou={branch},{base_dn}"
            if _add_if_missing(
                conn, dn, {"objectClass": ["top", "organizationalUnit"], "ou": [branch]}
            ):
                created.append(dn)
    return created


def _decode(raw: dict[str, list[bytes]]) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(value.decode("utf-8", errors="replace") for value in values)
        for name, values in raw.items()
        if values
    }


def _iter_raw(
    conn: Connection, base_dn: str, search_filter: str, attributes: Sequence[str], scope: Scope
) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    """(dn, raw attributes) of matching entries, paged; a missing base yields nothing."""
    results = conn.extend.standard.paged_search(
        base_dn,
        search_filter,
        search_scope=_SCOPES[scope],
        attributes=list(attributes),
        paged_size=PAGE_SIZE,
        generator=True,
    )
    for item in results:
        if item.get("type") == "searchResEntry":
            yield item["dn"], item.get("raw_attributes") or {}
    code, name, message = result_of(conn)
    if code not in (0, NO_SUCH_OBJECT):
        raise DirectoryWriteError("search", base_dn, code, name, message)


def search_entries(
    params: LdapParams,
    base_dn: str,
    search_filter: str = "(objectClass=*)",
    attributes: Sequence[str] = ("*",),
    *,
    scope: Scope = "sub",
) -> list[DirectoryEntry]:
    """Matching entries in hierarchical DN order."""
    with connection(params) as conn:
        entries = [
            DirectoryEntry(dn, _decode(raw))
            for dn, raw in _iter_raw(conn, base_dn, search_filter, attributes, scope)
        ]
    return sorted(entries, key=lambda entry: dn_sort_key(entry.dn))


def read_entry(
    params: LdapParams, dn: str, attributes: Sequence[str] = ("*",)
) -> DirectoryEntry | None:
    entries = search_entries(params, dn, attributes=attributes, scope="base")
    return entries[0] if entries else None


def holders(params: LdapParams, base_dn: str, attribute: str, value: str) -> list[str]:
    """DNs of the entries under ``base_dn`` whose ``attribute`` equals ``value`` (as the
    directory compares it)."""
    search_filter = f"({attribute}={escape_filter_chars(value)})"
    return [e.dn for e in search_entries(params, base_dn, search_filter, ["1.1"])]


def count_entries(
    params: LdapParams,
    base_dn: str,
    search_filter: str = "(objectClass=*)",
    *,
    scope: Scope = "sub",
) -> int:
    """How many entries match (the base entry itself included with scope "sub")."""
    with connection(params) as conn:
        return sum(1 for _ in _iter_raw(conn, base_dn, search_filter, ["1.1"], scope))


def clear_subtree(params: LdapParams, dn: str, *, keep_root: bool = True) -> int:
    """Delete every entry below ``dn`` (and ``dn`` unless ``keep_root``); return the count."""
    with connection(params) as conn:
        dns = [found for found, _raw in _iter_raw(conn, dn, "(objectClass=*)", ["1.1"], "sub")]
        # Deepest first: LDAP refuses to delete an entry that still has children.
        dns.sort(key=dn_sort_key, reverse=True)
        root = dn_sort_key(dn)
        deleted = 0
        for target in dns:
            if keep_root and dn_sort_key(target) == root:
                continue
            if conn.delete(target):
                deleted += 1
                continue
            code, name, message = result_of(conn)
            if code != NO_SUCH_OBJECT:
                raise DirectoryWriteError("delete", target, code, name, message)
    return deleted


# RFC 2849: a SAFE-STRING starts with neither space, ":" nor "<", and holds only ASCII
# characters other than NUL, LF and CR; anything else is written base64 ("::").
def _ldif_line(name: str, value: bytes) -> str:
    safe = (
        value
        and value[0] not in b" :<"
        and value[-1:] != b" "
        and all(0 < byte < 128 and byte not in (10, 13) for byte in value)
    )
    if not value:
        return f"{name}:"
    if safe:
        return f"{name}: {value.decode('ascii')}"
    return f"{name}:: {base64.b64encode(value).decode('ascii')}"


def export_ldif(params: LdapParams, base_dn: str, *, operational: bool = False) -> str:
    """The subtree at ``base_dn`` as deterministic LDIF, for comparing directories.

    Entries in hierarchical DN order (parents first, so the output can be loaded back),
    attribute names sorted case-insensitively, values sorted bytewise, lines not folded.
    Server-maintained attributes (entryUUID, timestamps, creatorsName...) only if
    ``operational``.
    """
    attributes = ["*", "+"] if operational else ["*"]
    with connection(params) as conn:
        entries = list(_iter_raw(conn, base_dn, "(objectClass=*)", attributes, "sub"))
    entries.sort(key=lambda item: dn_sort_key(item[0]))
    blocks = ["version: 1"]
    for dn, raw in entries:
        lines = [_ldif_line("dn", dn.encode("utf-8"))]
        for name in sorted(raw, key=lambda key: (key.lower(), key)):
            lines.extend(_ldif_line(name, value) for value in sorted(raw[name]))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"

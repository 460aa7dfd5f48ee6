"""Test utility: read the whole directory under a base and find the DNs that name no entry."""

from __future__ import annotations

from connectors.ldap import search_entries
from connectors.ldap.connection import LdapParams
from sync.references import Reference, dangling

Directory = dict[str, dict[str, tuple[str, ...]]]


def read_directory(params: LdapParams, base_dn: str) -> Directory:
    """Every entry under ``base_dn`` (included), by DN."""
    return {e.dn: dict(e.attributes) for e in search_entries(params, base_dn, "(objectClass=*)")}


def dangling_references(params: LdapParams, base_dn: str) -> list[Reference]:
    """Every value of a DN-valued attribute entsync writes that names no entry under the base."""
    return dangling(read_directory(params, base_dn))

"""Directory preflight: read the server's schema, compare it with what entsync writes.

The comparison itself is pure (:func:`sync.preflight.compare`); this module only reads the
server's subschema entry (through ldap3's ``get_info=SCHEMA``) and our shipped schema files.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from ldap3 import SCHEMA

from connectors.ldap.connection import LdapParams, connection
from connectors.ldap.directory import ensure_base_dit
from connectors.ldap.errors import DirectoryError, PreflightError
from schemas.ldap_schema import SchemaDefs, parse_subschema, shipped_schema
from sync.preflight import Problem, compare, report
from sync.written import written_shapes

log = structlog.get_logger(__name__)


def _text(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


def server_schema(params: LdapParams) -> SchemaDefs:
    """The attribute types and object classes the server publishes."""
    with connection(params, get_info=SCHEMA) as conn:
        schema = conn.server.schema
    raw = getattr(schema, "raw", None) or {}
    attribute_types, object_classes = raw.get("attributeTypes"), raw.get("objectClasses")
    if not attribute_types or not object_classes:
        raise DirectoryError(
            f"the LDAP server at {params.url} did not publish its schema to "
            f"{params.bind_dn!r} (subschemaSubentry not readable): cannot check it"
        )
    return parse_subschema(_text(attribute_types), _text(object_classes))


def schema_problems(params: LdapParams) -> list[Problem]:
    """What in the server's schema would make entsync's writes fail (empty: none)."""
    return compare(shipped_schema(), written_shapes(), server_schema(params))


def check_schema(params: LdapParams) -> None:
    """Raise PreflightError, with every problem in one message, if the schema does not fit."""
    problems = schema_problems(params)
    if problems:
        log.error("directory.preflight_refused", problems=[p.subject for p in problems])
        raise PreflightError(report(problems))
    log.info("directory.preflight_passed")


def prepare_directory(params: LdapParams, base_dn: str) -> list[str]:
    """At worker start: check the schema, then create the base entries that are missing
    (return their DNs). Raises PreflightError, BaseEntryError, or another DirectoryError."""
    check_schema(params)
    created = ensure_base_dit(params, base_dn)
    if created:
        log.info("directory.base_entries_created", dns=created)
    return created

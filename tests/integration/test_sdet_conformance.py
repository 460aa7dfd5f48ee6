"""Our ``sdet.schema`` is the published SDET schema: slapd's reading of it, fact by fact.

``tests/data/sdet_published.json`` holds the published definitions (names, OIDs, syntaxes,
matching rules, SINGLE-VALUE, superiors, kinds, MUST/MAY lists), read from the only public copy of
the SDET schema files and checked in (no download at test time). The local slapd loads our
rewritten file; its subschema must state exactly those facts for every published attribute type
and object class, so the local directory refuses what a real SDET directory refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import SCHEMA, Connection, Server

from connectors.ldap.connection import LdapParams

pytestmark = pytest.mark.integration

FACTS = json.loads((Path(__file__).parents[1] / "data" / "sdet_published.json").read_text())


@pytest.fixture(scope="module")
def schema(ldap_params: LdapParams) -> Iterator[Any]:
    server = Server(ldap_params.url, get_info=SCHEMA)
    connection = Connection(server, ldap_params.bind_dn, ldap_params.password, auto_bind=True)
    yield server.schema
    connection.unbind()


def _names(values: Any) -> list[str]:
    if not values:
        return []
    return [values] if isinstance(values, str) else list(values)


def _attribute_facts(info: Any) -> dict[str, Any]:
    """slapd's definition of one attribute type, in the shape of the published facts."""
    facts: dict[str, Any] = {"oid": info.oid, "name": _names(info.name)}
    if info.superior:
        facts["sup"] = _names(info.superior)
    for key, value in (
        ("equality", info.equality),
        ("ordering", info.ordering),
        # ldap3's parser stores SUBSTR as ``substr``, not in the ``substring`` it declares
        ("substr", getattr(info, "substr", None) or info.substring),
    ):
        if value:
            facts[key] = value[0] if isinstance(value, list | tuple) else value
    if info.syntax and not info.superior:
        facts["syntax"] = info.syntax
    if info.min_length:
        facts["syntax_len"] = int(info.min_length)
    if info.single_value:
        facts["single_value"] = True
    return facts


def _published_attribute(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if key != "file"}


@pytest.mark.parametrize("name", sorted(FACTS["attributes"]))
def test_attribute_type_is_as_published(schema: Any, name: str) -> None:
    info = schema.attribute_types.get(name)
    assert info is not None, f"{name} is not defined by our sdet.schema"
    assert _attribute_facts(info) == _published_attribute(FACTS["attributes"][name])


@pytest.mark.parametrize("name", sorted(FACTS["classes"]))
def test_object_class_is_as_published(schema: Any, name: str) -> None:
    info = schema.object_classes.get(name)
    assert info is not None, f"{name} is not defined by our sdet.schema"
    published = FACTS["classes"][name]
    assert info.oid == published["oid"]
    assert _names(info.superior) == published["sup"]
    assert info.kind == published["kind"]
    assert _names(info.must_contain) == published.get("must", [])
    assert _names(info.may_contain) == published.get("may", [])


def test_nothing_more_than_published_under_the_sdet_arcs(schema: Any) -> None:
    """Every attribute and class our file defines under the SDET OIDs is a published one."""
    arcs = ("1.1.1.", "1.1.2.")
    ours = {n for n, i in schema.attribute_types.items() if i.oid.startswith(arcs)}
    ours |= {n for n, i in schema.object_classes.items() if i.oid.startswith(arcs)}
    published = {n.lower() for n in (*FACTS["attributes"], *FACTS["classes"])}
    assert {n.lower() for n in ours} == published

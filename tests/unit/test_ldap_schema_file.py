"""The schema parser, on the shipped schema files and on server-style descriptions."""

from __future__ import annotations

import re

import pytest

from schemas.ldap_schema import (
    SHIPPED_DIR,
    SHIPPED_FILES,
    SchemaParseError,
    parse_attribute_type,
    parse_object_class,
    parse_schema_file,
    parse_subschema,
    shipped_schema,
)

DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"


def _directive_names(keyword: str) -> set[str]:
    """NAMEs of the directives of the shipped files, found independently of the parser."""
    pattern = re.compile(rf"^{keyword}\s*\(\s*\S+\s+NAME\s+'([^']+)'", re.MULTILINE | re.I)
    text = "\n".join((SHIPPED_DIR / name).read_text() for name in SHIPPED_FILES)
    return set(pattern.findall(text))


def test_every_definition_of_the_shipped_files_is_read() -> None:
    defs = shipped_schema()
    assert {a.name for a in defs.attribute_definitions()} == _directive_names("attributetype")
    assert {c.name for c in defs.class_definitions()} == _directive_names("objectclass")


def test_shipped_attribute_facts() -> None:
    defs = shipped_schema()
    login = defs.attribute("entpersonlogin")  # case-insensitive
    assert login is not None and login.name == "ENTPersonLogin"
    assert login.single_value and login.syntax == DIRECTORY_STRING  # {256} bound dropped
    assert login.equality == "caseIgnoreMatch"
    assert defs.attribute(login.oid) is login  # also by OID
    profiles = defs.attribute("ENTPersonProfils")
    assert profiles is not None and not profiles.single_value
    assert defs.syntax("ENTPersonStructRattach") == DN_SYNTAX


def test_shipped_class_facts() -> None:
    defs = shipped_schema()
    guardian = defs.object_class("ENTAuxPersRelEleve")
    assert guardian is not None and guardian.kind == "AUXILIARY"
    assert guardian.must == ("ENTAuxPersRelEleveEleve",)
    pupil = defs.object_class("ENTEleve")
    assert pupil is not None and pupil.kind == "STRUCTURAL" and pupil.sup == ("ENTPerson",)
    # MUST of a class includes its superiors'.
    assert defs.required(["ENTEleve"]) == {
        "entpersonlogin",
        "entpersonjointure",
        "entelevestatuteleve",
        "entelevemef",
        "entelevelibellemef",
        "entelevenivformation",
        "entelevefiliere",
        "enteleveclasses",
        "entelevemajeur",
    }
    operational = defs.object_class("entsyncOperational")
    assert operational is not None and "entsyncBlockedMessage" in operational.may


def test_oid_macros_and_continuation_lines() -> None:
    text = """
# a comment ( with parentheses
objectidentifier myArc 1.2.3
objectIdentifier myAttrs myArc:1
attributetype ( myAttrs:7 NAME 'myAttr'
	DESC 'has ( parentheses ) and $ inside'
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} SINGLE-VALUE )
objectclass ( myArc:2.1 NAME 'myClass' AUXILIARY
	MAY ( myAttr $ cn ) )
"""
    defs = parse_schema_file(text)
    attribute = defs.attribute("myAttr")
    assert attribute is not None and attribute.oid == "1.2.3.1.7"
    assert attribute.single_value and attribute.syntax == DIRECTORY_STRING
    klass = defs.object_class("1.2.3.2.1")
    assert klass is not None and klass.name == "myClass" and klass.may == ("myAttr", "cn")


def test_server_descriptions_with_aliases_inheritance_and_extensions() -> None:
    defs = parse_subschema(
        [
            "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch "
            "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name "
            "X-ORIGIN ( 'RFC 4519' 'core' ) )",
        ],
        ["( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )"],
    )
    assert defs.attribute("commonName") is defs.attribute("CN")
    assert defs.syntax("cn") == DIRECTORY_STRING and defs.equality("cn") == "caseIgnoreMatch"
    assert defs.canonical("commonname") == "cn"
    top = defs.object_class("top")
    assert top is not None and top.kind == "ABSTRACT" and top.must == ("objectClass",)


def test_structural_is_the_default_kind() -> None:
    assert parse_object_class("( 1.2 NAME 'x' SUP top )").kind == "STRUCTURAL"


@pytest.mark.parametrize(
    "text",
    [
        "1.2 NAME 'x'",  # no parentheses
        "( 1.2 NAME 'x' FROBNICATE yes )",  # unknown keyword
        "( 1.2 NAME )",  # keyword without value
        "( 1.2 NAME 'x' STRUCTURAL AUXILIARY )",
    ],
)
def test_malformed_descriptions_are_refused(text: str) -> None:
    with pytest.raises(SchemaParseError):
        if "STRUCTURAL" in text:
            parse_object_class(text)
        else:
            parse_attribute_type(text)

"""The schema comparison of the directory preflight, on in-memory server schemas.

The server side starts from a real OpenLDAP 2.4 subschema (the copy ldap3 ships for offline
use) plus our shipped files, i.e. the directory the README asks for; each test breaks it in one
way and checks that exactly that is reported.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from ldap3.protocol.schemas.slapd24 import slapd_2_4_schema

from schemas.ldap_schema import (
    AttributeType,
    ObjectClass,
    SchemaDefs,
    parse_subschema,
    shipped_schema,
)
from sync.preflight import Problem, can_hold, compare, report
from sync.written import EntryShape, written_shapes

DN = "1.3.6.1.4.1.1466.115.121.1.12"
DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
IA5 = "1.3.6.1.4.1.1466.115.121.1.26"


def server_schema() -> SchemaDefs:
    raw = json.loads(slapd_2_4_schema)["raw"]
    defs = parse_subschema(raw["attributeTypes"], raw["objectClasses"])
    ours = shipped_schema()
    for attribute in ours.attribute_definitions():
        defs.add_attribute(attribute)
    for klass in ours.class_definitions():
        defs.add_class(klass)
    return defs


def without(defs: SchemaDefs, name: str) -> SchemaDefs:
    """``defs`` without the attribute type or object class ``name`` (all its keys)."""
    for table in (defs.attributes, defs.classes):
        found = table.get(name.lower())
        if found is not None:
            for key in [k for k, v in table.items() if v is found]:
                del table[key]
    return defs


def changed_attribute(defs: SchemaDefs, name: str, **changes: object) -> SchemaDefs:
    current = defs.attribute(name)
    assert isinstance(current, AttributeType)
    defs.add_attribute(dataclasses.replace(current, **changes))  # type: ignore[arg-type]
    return defs


def changed_class(defs: SchemaDefs, name: str, **changes: object) -> SchemaDefs:
    current = defs.object_class(name)
    assert isinstance(current, ObjectClass)
    defs.add_class(dataclasses.replace(current, **changes))  # type: ignore[arg-type]
    return defs


def problems(server: SchemaDefs) -> list[Problem]:
    return compare(shipped_schema(), written_shapes(), server)


def test_the_directory_the_readme_asks_for_accepts_everything() -> None:
    assert problems(server_schema()) == []
    assert report([]) == ""


def test_missing_attribute_is_reported_alone() -> None:
    found = problems(without(server_schema(), "entsyncBlockedMessage"))
    assert [p.subject for p in found] == ["entsyncBlockedMessage"]
    assert "unknown to the server" in found[0].detail


def test_missing_standard_attribute_is_reported() -> None:
    # Not defined by our files, but written (guardians' phones): must exist.
    found = problems(without(server_schema(), "homePhone"))
    assert [p.subject for p in found] == ["homePhone"]


def test_missing_class_is_reported_alone() -> None:
    found = problems(without(server_schema(), "ENTAuxNonEnsEtab"))
    assert found == [Problem("ENTAuxNonEnsEtab", "object class unknown to the server")]


def test_single_value_on_the_server_where_we_write_several() -> None:
    found = problems(changed_attribute(server_schema(), "ENTPersonProfils", single_value=True))
    assert [p.subject for p in found] == ["ENTPersonProfils"]
    assert "SINGLE-VALUE" in found[0].detail


def test_single_value_on_the_server_where_we_write_one_is_fine() -> None:
    # The published SDET ENTPersonJointure is multi-valued, ours single: the other way round.
    server = changed_attribute(server_schema(), "ENTPersonJointure", single_value=False)
    assert problems(server) == []


def test_syntax_that_cannot_hold_our_values() -> None:
    # Ours is a Directory String (free text, accents): a DN syntax cannot hold it.
    found = problems(changed_attribute(server_schema(), "ENTEleveClasses", syntax=DN))
    assert [p.subject for p in found] == ["ENTEleveClasses"]
    assert DN in found[0].detail and "syntax" in found[0].detail


def test_wider_syntax_on_the_server_holds_our_values() -> None:
    # Our DNs are text: a Directory String attribute holds them (a directory whose
    # ENTEleveParents were free text).
    server = changed_attribute(server_schema(), "ENTEleveParents", syntax=DIRECTORY_STRING)
    assert problems(server) == []
    assert can_hold(DIRECTORY_STRING, DN) and not can_hold(DN, DIRECTORY_STRING)
    assert not can_hold(IA5, DIRECTORY_STRING)


def test_case_insensitive_equality_where_we_keep_case_apart() -> None:
    server = changed_attribute(server_schema(), "entsyncSchool", equality="caseIgnoreMatch")
    server = changed_attribute(server, "ENTPersonProfils", equality="caseExactMatch")
    # entsyncSchool is a DN (distinguishedNameMatch): nothing to say; exact on the server for
    # an attribute we compare ignoring case is stricter, also fine.
    assert problems(server) == []
    ours = shipped_schema()
    ours = changed_attribute(ours, "ENTEleveClasses", equality="caseExactMatch")
    found = compare(ours, written_shapes(), server_schema())
    assert [p.subject for p in found] == ["ENTEleveClasses"] and "EQUALITY" in found[0].detail


def test_must_attribute_we_do_not_write() -> None:
    # A directory whose ENTStructure requires an e-mail address: entsync never writes one.
    server = server_schema()
    school = server.object_class("ENTStructure")
    assert school is not None
    server = changed_class(server, "ENTStructure", must=(*school.must, "ENTStructureEmail"))
    found = problems(server)
    assert [p.subject for p in found] == ["ENTStructure"]
    assert "MUST ENTStructureEmail" in found[0].detail and "school" in found[0].detail


def test_attribute_the_server_class_does_not_allow() -> None:
    # A directory whose ENTEleve does not allow the INE.
    server = server_schema()
    pupil = server.object_class("ENTEleve")
    assert pupil is not None
    server = changed_class(
        server, "ENTEleve", may=tuple(a for a in pupil.may if a != "ENTEleveINE")
    )
    found = problems(server)
    assert [p.subject for p in found] == ["ENTEleveINE"]
    assert "not allowed" in found[0].detail and "pupil" in found[0].detail


def test_class_of_another_kind() -> None:
    found = problems(changed_class(server_schema(), "ENTAuxEnseignant", kind="STRUCTURAL"))
    subjects = [p.subject for p in found]
    assert "ENTAuxEnseignant" in subjects
    assert any("STRUCTURAL on the server" in p.detail for p in found)
    # ...and, as a second structural class beside inetOrgPerson, it breaks the teachers' chain.
    assert any("chain" in p.detail and "teacher" in p.detail for p in found)


def test_report_lists_every_problem_in_one_message() -> None:
    server = without(without(server_schema(), "entsyncBlockedMessage"), "ENTAuxNonEnsEtab")
    message = report(problems(server))
    assert "2 problems" in message
    assert "entsyncBlockedMessage" in message and "ENTAuxNonEnsEtab" in message
    assert "entsync.schema" in message


@pytest.mark.parametrize("label", ["pupil", "guardian", "teacher", "school", "class group"])
def test_shapes_cover_every_kind(label: str) -> None:
    assert any(shape.label == label for shape in written_shapes())


def test_shape_with_extensible_object_allows_anything() -> None:
    names = frozenset({"ou", "mail"})
    plain = EntryShape("odd", ("top", "organizationalUnit"), names, frozenset())
    assert [p.subject for p in compare(shipped_schema(), [plain], server_schema())] == ["mail"]
    extensible = dataclasses.replace(plain, classes=(*plain.classes, "extensibleObject"))
    assert compare(shipped_schema(), [extensible], server_schema()) == []

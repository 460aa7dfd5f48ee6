"""slapd enforces our schema: SDET entries are accepted, what the schema forbids is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE, NONE, Connection, Server

from connectors.ldap.connection import LdapParams
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

OBJECT_CLASS_VIOLATION = 65
UNDEFINED_ATTRIBUTE = 17
CONSTRAINT_VIOLATION = 19
INVALID_SYNTAX = 21

Entry = dict[str, list[str]]


@pytest.fixture
def conn(clean_directory: LdapParams) -> Iterator[Connection]:
    # No schema on the client side: the point is that slapd itself refuses.
    server = Server(clean_directory.url, get_info=NONE)
    connection = Connection(server, clean_directory.bind_dn, clean_directory.password)
    assert connection.bind()
    yield connection
    connection.unbind()


class Dit:
    def __init__(self, base: str) -> None:
        self.base = base
        self.school = f"ou=0750001A,ou=structures,{base}"
        self.pupil = f"uid=p-1,ou=people,{base}"
        self.guardian = f"uid=g-1,ou=people,{base}"
        self.teacher = f"uid=t-1,ou=people,{base}"
        self.staff = f"uid=s-1,ou=people,{base}"
        self.klass = f"cn=0750001A-CP-A-pupils,ou=groups,{base}"
        self.group = f"cn=0750001A-guardians,ou=groups,{base}"
        self.manual = f"cn=2024-choir,ou=manual-groups,{base}"


@pytest.fixture
def dit(local_services: LocalServices) -> Dit:
    return Dit(local_services.base_dn)


PERSON = ["top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson"]


def person(uid: str, login: str, **extra: list[str]) -> Entry:
    entry: Entry = {
        "objectClass": [*PERSON, "entsyncOperational"],
        "uid": [uid],
        "cn": ["Given Family"],
        "sn": ["Family"],
        "givenName": ["Given"],
        "ENTPersonLogin": [login],
        "ENTPersonJointure": [f"ONDE${uid}"],
        "entsyncId": [uid],
        "entsyncAccountState": ["active"],
    }
    entry.update(extra)
    return entry


def school(dit: Dit) -> Entry:
    return {
        "objectClass": ["top", "organizationalUnit", "ENTStructure", "entsyncOperational"],
        "ou": ["0750001A"],
        "ENTStructureJointure": ["ONDE$0750001A"],
        "ENTStructureUAI": ["0750001A"],
        "ENTStructureNomCourant": ["ECOLE ELEMENTAIRE DU CENTRE"],
        "ENTStructureTypeStruct": ["ECOLE ELEMENTAIRE"],
        "ENTStructureSIREN": ["213105554"],
        "l": ["PARIS"],
        "entsyncId": ["school-1"],
        "entsyncKind": ["school"],
    }


def pupil(dit: Dit) -> Entry:
    entry = person(
        "p-1",
        "given.family",
        ENTPersonDateNaissance=["01/02/2017"],
        ENTPersonStructRattach=[dit.school],
        ENTPersonProfils=["National_1"],
        ENTPersonAutresPrenoms=["Second", "Third"],
        ENTPersonNomPatro=["Family"],
        personalTitle=["M"],
        ENTEleveINE=["1234567890A"],
        ENTEleveClasses=[f"{dit.school}$CP-A"],
        ENTEleveNivFormation=["CP"],
        ENTEleveStatutEleve=["SCOLAIRE"],
        ENTEleveMEF=["CP"],
        ENTEleveLibelleMEF=["COURS PREPARATOIRE"],
        ENTEleveFiliere=["PREMIER DEGRE"],
        ENTEleveMajeur=["N"],
        entsyncCycle=["CYCLE 2"],
        ENTEleveParents=[dit.guardian],
        entsyncKind=["pupil"],
        entsyncSchool=[dit.school],
        entsyncManual=["FALSE"],
        entsyncActivated=["TRUE"],
        entsyncDisappearedAt=["20240828000000Z"],
    )
    entry["objectClass"] = [*PERSON, "ENTEleve", "entsyncOperational"]
    return entry


def guardian(dit: Dit) -> Entry:
    entry = person(
        "g-1",
        "parent.family",
        ENTPersonProfils=["National_2"],
        ENTPersonMobileSMS=["+33 6 12 34 56 78"],
        ENTAuxPersRelEleveEleve=[dit.pupil],
        entsyncKind=["guardian"],
        entsyncAccountOrigin=["FranceConnect"],
        entsyncPredeletedAt=["20250101120000Z"],
    )
    entry["objectClass"].append("ENTAuxPersRelEleve")
    return entry


def teacher(dit: Dit) -> Entry:
    entry = person(
        "t-1",
        "teacher.family",
        ENTPersonProfils=["National_3"],
        ENTPersonFonctions=["0750001A$ENS$ENSEIGNANT"],
        ENTPersonStructRattach=[dit.school],
        entsyncSchool=[dit.school],
        ENTAuxEnsClasses=[f"{dit.school}$CP-A"],
        entsyncKind=["staff"],
    )
    entry["objectClass"].append("ENTAuxEnseignant")
    return entry


def staff(dit: Dit) -> Entry:
    entry = person(
        "s-1",
        "staff.family",
        ENTPersonProfils=["National_6"],
        ENTPersonFonctions=["0750001A$ADM$SECRETARIAT"],
        entsyncKind=["staff"],
    )
    entry["objectClass"].append("ENTAuxNonEnsEtab")
    return entry


def klass(dit: Dit) -> Entry:
    return {
        "objectClass": ["top", "groupOfNames", "ENTClasse", "entsyncOperational"],
        "cn": ["0750001A-CP-A-pupils"],
        "member": [dit.pupil],
        "entsyncGroupName": ["CP A"],
        "entsyncClassCode": ["CP-A"],
        "entsyncSchoolYear": ["2024-2025"],
        "entsyncSchool": [dit.school],
        "entsyncGroupProfile": ["National_1"],
    }


def group(dit: Dit) -> Entry:
    return {
        "objectClass": ["top", "groupOfNames", "ENTGroupe", "entsyncOperational"],
        "cn": ["0750001A-guardians"],
        "member": [dit.guardian],
        "entsyncGroupProfile": ["National_2"],
        "entsyncSchool": [dit.school],
        "entsyncBlockedFrom": ["20240828000000Z"],
        "entsyncBlockedUntil": ["20240906235900Z"],
        "entsyncBlockedMessage": ["Accounts are being prepared for the new school year."],
    }


def add(conn: Connection, dn: str, entry: Entry) -> dict[str, Any]:
    conn.add(dn, attributes=entry)
    result: dict[str, Any] = conn.result
    return result


def test_valid_sdet_entries_are_accepted(conn: Connection, dit: Dit) -> None:
    for dn, entry in [
        (dit.school, school(dit)),
        (dit.pupil, pupil(dit)),
        (dit.guardian, guardian(dit)),
        (dit.teacher, teacher(dit)),
        (dit.staff, staff(dit)),
        (dit.klass, klass(dit)),
        (dit.group, group(dit)),
        (dit.manual, {"objectClass": ["ENTGroupe"], "cn": ["2024-choir"], "member": [dit.pupil]}),
    ]:
        assert add(conn, dn, entry)["result"] == 0, (dn, conn.result)
    assert conn.search(dit.pupil, "(objectClass=*)", "BASE", attributes=["structuralObjectClass"])
    assert conn.entries[0]["structuralObjectClass"].value == "ENTEleve"
    # Matching rules: logins and jointures case-insensitive (SDET), time ordering works.
    assert conn.search(f"ou=people,{dit.base}", "(ENTPersonLogin=GIVEN.Family)")
    assert len(conn.entries) == 1
    assert conn.search(f"ou=people,{dit.base}", "(ENTPersonJointure=onde$P-1)")
    assert len(conn.entries) == 1
    assert conn.search(f"ou=people,{dit.base}", "(entsyncDisappearedAt<=20240901000000Z)")
    assert len(conn.entries) == 1
    assert conn.search(f"ou=people,{dit.base}", f"(ENTAuxPersRelEleveEleve={dit.pupil.upper()})")
    assert len(conn.entries) == 1


def without(entry: Entry, name: str) -> Entry:
    return {key: values for key, values in entry.items() if key != name}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("pupil without login", OBJECT_CLASS_VIOLATION),
        ("pupil without jointure", OBJECT_CLASS_VIOLATION),
        ("guardian without pupils", OBJECT_CLASS_VIOLATION),
        ("school without SIREN", OBJECT_CLASS_VIOLATION),
        ("pupil without MEF", OBJECT_CLASS_VIOLATION),
        ("pupil without classes", OBJECT_CLASS_VIOLATION),
        ("cycle under its SDET-less name", UNDEFINED_ATTRIBUTE),
        ("unknown attribute", UNDEFINED_ATTRIBUTE),
        ("attribute outside the classes", OBJECT_CLASS_VIOLATION),
        ("two logins", CONSTRAINT_VIOLATION),
        ("DN attribute not a DN", INVALID_SYNTAX),
        ("boolean not TRUE/FALSE", INVALID_SYNTAX),
        ("bad GeneralizedTime", INVALID_SYNTAX),
        ("unknown account state", CONSTRAINT_VIOLATION),
    ],
)
def test_schema_refuses(conn: Connection, dit: Dit, case: str, code: int) -> None:
    dn, entry = {
        "pupil without login": (dit.pupil, without(pupil(dit), "ENTPersonLogin")),
        "pupil without jointure": (dit.pupil, without(pupil(dit), "ENTPersonJointure")),
        "guardian without pupils": (
            dit.guardian,
            without(guardian(dit), "ENTAuxPersRelEleveEleve"),
        ),
        "school without SIREN": (dit.school, without(school(dit), "ENTStructureSIREN")),
        "pupil without MEF": (dit.pupil, without(pupil(dit), "ENTEleveMEF")),
        "pupil without classes": (dit.pupil, without(pupil(dit), "ENTEleveClasses")),
        "cycle under its SDET-less name": (dit.pupil, {**pupil(dit), "ENTEleveCycle": ["2"]}),
        "unknown attribute": (dit.pupil, {**pupil(dit), "ENTPersonShoeSize": ["32"]}),
        # An SDET pupil attribute on a plain ENTPerson.
        "attribute outside the classes": (
            dit.staff,
            {**staff(dit), "ENTEleveINE": ["1234567890A"]},
        ),
        "two logins": (dit.pupil, {**pupil(dit), "ENTPersonLogin": ["a.b", "c.d"]}),
        "DN attribute not a DN": (
            dit.pupil,
            {**pupil(dit), "ENTPersonStructRattach": ["not a dn"]},
        ),
        "boolean not TRUE/FALSE": (dit.pupil, {**pupil(dit), "entsyncManual": ["yes"]}),
        "bad GeneralizedTime": (dit.pupil, {**pupil(dit), "entsyncDisappearedAt": ["28/08/2024"]}),
        "unknown account state": (dit.pupil, {**pupil(dit), "entsyncAccountState": ["gone"]}),
    }[case]
    result = add(conn, dn, entry)
    assert result["result"] == code, (case, result)


def test_duplicate_login_refused_by_unique_overlay(conn: Connection, dit: Dit) -> None:
    assert add(conn, dit.pupil, pupil(dit))["result"] == 0
    twin = guardian(dit)
    twin["ENTPersonLogin"] = ["GIVEN.FAMILY"]  # same login, other case
    assert add(conn, dit.guardian, twin)["result"] == CONSTRAINT_VIOLATION
    # Renaming an existing account onto a taken login is refused too.
    assert add(conn, dit.guardian, guardian(dit))["result"] == 0
    conn.modify(dit.guardian, {"ENTPersonLogin": [(MODIFY_REPLACE, ["given.family"])]})
    assert conn.result["result"] == CONSTRAINT_VIOLATION


def test_operational_class_alone_on_foreign_entries(conn: Connection, dit: Dit) -> None:
    """entsyncOperational can decorate any entry, e.g. a manual group we only bookkeep."""
    entry: Entry = {
        "objectClass": ["groupOfNames", "entsyncOperational"],
        "cn": ["2024-choir"],
        "member": [dit.pupil],
        "entsyncManual": ["TRUE"],
    }
    assert add(conn, dit.manual, entry)["result"] == 0

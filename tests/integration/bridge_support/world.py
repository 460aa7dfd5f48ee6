"""A small directory for the bridge's tests, written straight into the real slapd.

Two schools; a mother (ONDE source key ``ONDE$G-MERE``) with two children in the first school
(Léa, born 2017-03-14; Hugo, born 2015-09-02) and, through a second guardian record from the
other school (``ONDE$G-MERE-2``), a third child (Zoé); a father matching nobody; two homonym
guardians (FranceConnect must not pick one); a foster-family manual account.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldap3 import Connection

from connectors.ldap.connection import LdapParams, connection
from sync import dit

PERSON = ["top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson"]


@dataclass(frozen=True)
class World:
    base: str
    school_a: str = "0310100R"
    school_b: str = "0310200S"

    def dn(self, entity_id: str) -> str:
        return dit.people_dn(entity_id, self.base)


def _person(
    uid: str, last: str, first: str, jointure: str, **extra: list[str]
) -> dict[str, list[str]]:
    entry = {
        "objectClass": [*PERSON, "entsyncOperational"],
        "uid": [uid],
        "cn": [f"{first} {last}"],
        "sn": [last],
        "givenName": [first],
        "ENTPersonLogin": [f"{first}.{last}.{uid}".lower()],
        "ENTPersonJointure": [jointure],
        "entsyncId": [uid],
        "entsyncAccountState": ["active"],
    }
    entry.update(extra)
    return entry


def _school(jointure: str, name: str) -> dict[str, list[str]]:
    return {
        "objectClass": ["top", "organizationalUnit", "ENTStructure", "entsyncOperational"],
        "ou": [jointure],
        "ENTStructureJointure": [jointure],
        "ENTStructureUAI": [jointure],
        "ENTStructureNomCourant": [name],
        "ENTStructureSIREN": ["213105554"],
        "entsyncId": [f"st-{jointure.lower()}"],
        "entsyncKind": ["school"],
    }


def _pupil(w: World, uid: str, first: str, born: str, school: str) -> dict[str, list[str]]:
    entry = _person(
        uid,
        "Martin",
        first,
        f"ONDE$E-{uid}",
        ENTPersonDateNaissance=[born],
        ENTPersonStructRattach=[dit.school_dn(school, w.base)],
        ENTPersonProfils=["National_1"],
        entsyncKind=["pupil"],
        # what the published SDET schema makes mandatory for a pupil (README: SDET values)
        ENTEleveStatutEleve=["SCOLAIRE"],
        ENTEleveMEF=["CP"],
        ENTEleveLibelleMEF=["COURS PREPARATOIRE"],
        ENTEleveNivFormation=["CP"],
        ENTEleveFiliere=["PREMIER DEGRE"],
        ENTEleveClasses=[f"{dit.school_dn(school, w.base)}$CP"],
        ENTEleveMajeur=["N"],
    )
    entry["objectClass"] = [*PERSON, "ENTEleve", "entsyncOperational"]
    return entry


def _guardian(
    uid: str, last: str, first: str, jointure: str, children: list[str], **extra: list[str]
) -> dict[str, list[str]]:
    entry = _person(
        uid,
        last,
        first,
        jointure,
        ENTPersonProfils=["National_2"],
        entsyncKind=["guardian"],
        **extra,
    )
    if children:
        entry["objectClass"] = [*entry["objectClass"], "ENTAuxPersRelEleve"]
        entry["ENTAuxPersRelEleveEleve"] = children
    return entry


def seed(params: LdapParams, base: str) -> World:
    w = World(base)
    entries: list[tuple[str, dict[str, list[str]]]] = [
        (dit.school_dn(w.school_a, base), _school(w.school_a, "École Jean Jaurès")),
        (dit.school_dn(w.school_b, base), _school(w.school_b, "École des Tilleuls")),
        (w.dn("el-lea"), _pupil(w, "el-lea", "Léa", "14/03/2017", w.school_a)),
        (w.dn("el-hugo"), _pupil(w, "el-hugo", "Hugo", "02/09/2015", w.school_a)),
        (w.dn("el-zoe"), _pupil(w, "el-zoe", "Zoé", "20/06/2018", w.school_b)),
        (w.dn("el-other"), _pupil(w, "el-other", "Noé", "01/01/2016", w.school_a)),
        (
            w.dn("re-mere"),
            _guardian(
                "re-mere",
                "Martin",
                "Claire",
                "ONDE$G-MERE",
                [w.dn("el-lea"), w.dn("el-hugo")],
                mobile=["+33612345678"],
                ENTPersonMobileSMS=["+33612345678"],
            ),
        ),
        (
            w.dn("re-mere-2"),
            _guardian("re-mere-2", "Martin", "Claire", "ONDE$G-MERE-2", [w.dn("el-zoe")]),
        ),
        (
            w.dn("re-fc"),
            _guardian(
                "re-fc",
                "Lefèvre-Durand",
                "Jean",
                "ONDE$G-FC",
                [w.dn("el-other")],
                ENTPersonDateNaissance=["04/05/1979"],
            ),
        ),
        *(
            (
                w.dn(uid),
                _guardian(
                    uid,
                    "Petit",
                    "Paul",
                    jointure,
                    [w.dn("el-other")],
                    ENTPersonDateNaissance=["01/01/1980"],
                ),
            )
            for uid, jointure in (("re-homo-1", "ONDE$H1"), ("re-homo-2", "ONDE$H2"))
        ),
        # As ONDE sends guardians: no birth date, so FranceConnect claims cannot confirm it.
        (
            w.dn("re-sans-date"),
            _guardian("re-sans-date", "Durand", "Marc", "ONDE$G-SD", [w.dn("el-other")]),
        ),
        (
            w.dn("re-accueil"),
            _guardian(
                "re-accueil",
                "Bernard",
                "Sophie",
                "MANUAL$ACC1",
                [w.dn("el-other")],
                entsyncManual=["TRUE"],
                ENTPersonDateNaissance=["07/08/1985"],
            ),
        ),
    ]
    with connection(params) as conn:
        for dn, attributes in entries:
            _add(conn, dn, attributes)
    return w


def _add(conn: Connection, dn: str, attributes: dict[str, list[str]]) -> None:
    if not conn.add(dn, attributes=attributes):
        raise AssertionError(f"cannot add {dn}: {conn.result}")


def set_children(params: LdapParams, dn: str, children: list[str]) -> None:
    """What the reconciler does when ONDE drops a legal responsibility."""
    from ldap3 import MODIFY_REPLACE

    with connection(params) as conn:
        assert conn.modify(dn, {"ENTAuxPersRelEleveEleve": [(MODIFY_REPLACE, children)]})

"""No dangling reference on the real broker and slapd (issue 19, item 4).

A pupil naming a guardian who is in no file is written without that guardian's DN, which appears
once the guardian comes in a later file; a person the directory refused to add is in no group;
at every step every DN-valued attribute in slapd names an entry.
"""

from __future__ import annotations

import pytest

from connectors.ldap import search_entries
from schemas.feed import ClassAssignment, Guardian, Pupil, School, Staff
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.directory_walk import dangling_references
from tests.integration.test_pipeline_e2e import Pipeline, _publish, add_foreign_login

fresh_broker, pipeline = e2e.fresh_broker, e2e.pipeline

pytestmark = pytest.mark.integration

SCHOOL = School(jointure="0310998A", uai="0310998A", name="École des liens", siren="213105554")


def _pupil() -> Pupil:
    return Pupil(
        jointure="P1",
        ine="1234567890A",
        last_name="Lefèvre",
        first_name="Zoé",
        school_jointure=SCHOOL.jointure,
        classes=(ClassAssignment(school_jointure=SCHOOL.jointure, code="CP", label="CP"),),
        guardian_jointures=("G1", "G9"),
    )


def _guardian(jointure: str, first: str) -> Guardian:
    return Guardian(
        jointure=jointure, last_name="Lefèvre", first_name=first, pupil_jointures=("P1",)
    )


def _person(p: Pipeline, jointure: str) -> tuple[str, dict[str, tuple[str, ...]]] | None:
    found = search_entries(
        p.ldap, f"ou=people,{p.base_dn}", f"(ENTPersonJointure={jointure})", ["*"]
    )
    return (found[0].dn, dict(found[0].attributes)) if found else None


def _dn(p: Pipeline, jointure: str) -> str:
    person = _person(p, jointure)
    assert person is not None, jointure
    return person[0].lower()


def _parents(p: Pipeline) -> set[str]:
    person = _person(p, "ONDE$P1")
    assert person is not None
    return {v.lower() for v in person[1].get("ENTEleveParents", ())}


def test_no_dn_names_an_entry_that_does_not_exist(pipeline: Pipeline) -> None:
    p = pipeline
    # G9 is in no file: the pupil names G1 only.
    _publish(p, SCHOOL, _pupil(), _guardian("G1", "Anne"))
    p.ok("worker", "--until-idle", "--timeout", "120")
    assert _person(p, "ONDE$G9") is None
    assert _parents(p) == {_dn(p, "ONDE$G1")}
    assert dangling_references(p.ldap, p.base_dn) == []

    # G9 comes in a later file: its entry, and its DN on the pupil.
    _publish(p, _guardian("G9", "Bruno"))
    p.ok("worker", "--until-idle", "--timeout", "120")
    assert _parents(p) == {_dn(p, "ONDE$G1"), _dn(p, "ONDE$G9")}
    g9 = _person(p, "ONDE$G9")
    assert g9 is not None
    assert [v.lower() for v in g9[1]["ENTAuxPersRelEleveEleve"]] == [_dn(p, "ONDE$P1")]
    assert dangling_references(p.ldap, p.base_dn) == []

    # A teacher whose academic login another tool took: the directory refuses the teacher's
    # entry, and no group names the teacher (the links sent with the add are withdrawn).
    add_foreign_login(p.ldap, p.base_dn, "paul.martin")
    teacher = Staff(
        jointure="T1",
        last_name="Martin",
        first_name="Paul",
        academic_login="paul.martin",
        attachment_school_jointure=SCHOOL.jointure,
        school_jointures=(SCHOOL.jointure,),
        is_teacher=True,
    )
    _publish(p, teacher)
    done = p.cli("worker", "--until-idle", "--timeout", "120")
    assert done.returncode == 4, done.stdout + done.stderr  # the refused write is reported
    assert _person(p, "AAF$T1") is None
    groups = search_entries(p.ldap, f"ou=groups,{p.base_dn}", "(objectClass=groupOfNames)", ["*"])
    assert not [g.dn for g in groups if g.get("entsyncGroupProfile") == ("teachers",)]
    assert dangling_references(p.ldap, p.base_dn) == []

    # The academy corrects the login: the teacher's entry, then the group naming it.
    _publish(p, teacher.model_copy(update={"academic_login": "pmartin"}))
    p.ok("worker", "--until-idle", "--timeout", "120")
    groups = search_entries(p.ldap, f"ou=groups,{p.base_dn}", "(objectClass=groupOfNames)", ["*"])
    (teachers,) = [g for g in groups if g.get("entsyncGroupProfile") == ("teachers",)]
    assert [m.lower() for m in teachers.get("member")] == [_dn(p, "AAF$T1")]
    assert dangling_references(p.ldap, p.base_dn) == []

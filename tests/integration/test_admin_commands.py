"""``entsync admin`` on real services: the CLI checks the directory, the worker applies.

Each test gets a fresh broker (the ``fresh_broker`` / ``pipeline`` fixtures of the end-to-end
tests) and an empty directory, syncs a small generated extract with ``entsync run``, then runs the
real ``entsync admin`` and ``entsync worker --until-idle`` commands and reads LDAP.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import DirectoryEntry, read_entry, search_entries
from connectors.stream.reader import read_topic
from schemas.admin import AdminCommandDecided
from schemas.audit import DirectoryChanged
from schemas.entities import GroupSpec
from schemas.topics import ADMIN_DECISIONS
from sync import dit
from sync.entries import class_value, source_key
from tests.integration import test_pipeline_e2e as e2e
from tests.integration.test_pipeline_e2e import Pipeline

pytestmark = pytest.mark.integration

# The end-to-end tests' fixtures: a broker of this test's own, and the CLI environment.
fresh_broker = e2e.fresh_broker
pipeline = e2e.pipeline


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("admin-extract")
    generated = generate(out, GeneratorConfig(schools=1, pupils_per_school=8, seed=3))
    return [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]


def _entries(p: Pipeline, branch: str, search_filter: str) -> list[DirectoryEntry]:
    return search_entries(p.ldap, f"ou={branch},{p.base_dn}", search_filter, ["*"], scope="one")


def _one(entry: DirectoryEntry, name: str) -> str:
    (value,) = entry.get(name)
    return value


def _teachers(p: Pipeline) -> list[DirectoryEntry]:
    return _entries(p, "people", "(objectClass=ENTAuxEnseignant)")


def _school_and_class(p: Pipeline) -> tuple[DirectoryEntry, str]:
    """The school and the code of one of its classes, as the directory has them."""
    (school,) = _entries(p, "structures", "(objectClass=ENTStructure)")
    classes = _entries(p, "groups", "(&(objectClass=ENTClasse)(entsyncGroupProfile=pupils))")
    assert classes
    return school, _one(classes[0], "entsyncClassCode")


def _refused(p: Pipeline, *args: str) -> str:
    done = p.cli("admin", *args)
    assert done.returncode == 1, f"entsync admin {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return " ".join(done.stderr.split())


def _audits(p: Pipeline) -> list[DirectoryChanged]:
    return e2e.directory_changes(p.bootstrap)


def _work(p: Pipeline) -> list[DirectoryChanged]:
    """Run the worker until idle; the audit events of the admin commands it applied."""
    before = {a.event_id for a in _audits(p)}
    p.ok("worker", "--until-idle", "--timeout", "120")
    new = [a for a in _audits(p) if a.event_id not in before]
    return [a for a in new if a.cause.rule.startswith("admin.")]


def _members(p: Pipeline, dn: str) -> set[str] | None:
    entry = read_entry(p.ldap, dn, ["member"])
    return None if entry is None else {m.lower() for m in entry.get("member")}


def _classes(p: Pipeline, dn: str) -> tuple[str, ...]:
    entry = read_entry(p.ldap, dn, ["ENTAuxEnsClasses"])
    assert entry is not None
    return entry.get("ENTAuxEnsClasses")


def test_attach_teachers_and_gar_managers(pipeline: Pipeline, files: list[str]) -> None:
    pipeline.ok("run", *files)
    school, code = _school_and_class(pipeline)
    jointure = source_key(_one(school, "ENTStructureJointure"))
    uai = _one(school, "ENTStructureUAI")
    teacher, other = _teachers(pipeline)[:2]
    teacher_dn, other_dn = teacher.dn.lower(), other.dn.lower()
    by_jointure, by_login = _one(teacher, "ENTPersonJointure"), _one(teacher, "ENTPersonLogin")
    other_login = _one(other, "ENTPersonLogin")
    klass = f"{uai}/{code}"
    value = class_value(jointure, code, pipeline.base_dn)
    teachers_dn = dit.group_dn(
        GroupSpec(school_jointure=jointure, profile="teachers", class_code=code), pipeline.base_dn
    )
    gar_dn = dit.gar_group_dn(jointure, pipeline.base_dn)

    # Refused by the directory check, with a clear message: nothing is published.
    assert "does not exist" in _refused(
        pipeline, "attach-teacher", "--teacher", by_jointure, "--class", f"{uai}/NOPE"
    )
    assert "no person" in _refused(
        pipeline, "attach-teacher", "--teacher", "nobody.here", "--class", klass
    )
    assert "no school" in _refused(
        pipeline, "attach-teacher", "--teacher", by_jointure, "--class", f"0000000Z/{code}"
    )
    pupil = _entries(pipeline, "people", "(objectClass=ENTEleve)")[0]
    assert "not a member of staff" in _refused(
        pipeline, "gar-manager", "--school", uai, "--teacher", _one(pupil, "ENTPersonLogin")
    )

    # Attach a teacher to the class (by jointure, class by UAI); make both GAR managers.
    out = pipeline.ok("admin", "attach-teacher", "--teacher", by_jointure, "--class", klass)
    assert "published: attach teacher" in out
    assert "does not exist yet" in pipeline.ok(
        "admin", "gar-manager", "--school", jointure, "--teacher", other_login
    )
    pipeline.ok("admin", "gar-manager", "--school", uai, "--teacher", by_login)
    applied = _work(pipeline)
    assert _classes(pipeline, teacher.dn) == (value,)
    assert _members(pipeline, teachers_dn) == {teacher_dn}
    assert _members(pipeline, gar_dn) == {teacher_dn, other_dn}
    gar = read_entry(pipeline.ldap, gar_dn)
    assert gar is not None and gar.get("entsyncGroupName") == ("Resp-Affect-GAR",)
    changes = {(a.dn.lower(), a.action, a.cause.rule) for a in applied}
    assert {
        (teacher_dn, "modify", "admin.attach-teacher"),
        (teachers_dn.lower(), "add", "admin.attach-teacher"),
        (gar_dn.lower(), "add", "admin.gar-manager-add"),
    } <= changes
    assert {rule for dn, _, rule in changes if dn == gar_dn.lower()} == {"admin.gar-manager-add"}

    # The same attach again (by login) changes nothing; then detach; one GAR manager leaves.
    again = pipeline.ok("admin", "attach-teacher", "--teacher", by_login, "--class", klass)
    assert "already shows this attachment" in again
    pipeline.ok("admin", "attach-teacher", "--teacher", by_login, "--class", klass, "--detach")
    pipeline.ok("admin", "gar-manager", "--school", uai, "--teacher", other_login, "--remove")
    applied = _work(pipeline)
    assert _classes(pipeline, teacher.dn) == ()
    assert _members(pipeline, teachers_dn) is None
    assert _members(pipeline, gar_dn) == {teacher_dn}
    rules = {a.cause.rule for a in applied}
    assert rules == {"admin.detach-teacher", "admin.gar-manager-remove"}  # no second attach
    assert (teachers_dn.lower(), "delete") in {(a.dn.lower(), a.action) for a in applied}

    # An operator cannot remove the last GAR manager.
    message = _refused(
        pipeline, "gar-manager", "--school", uai, "--teacher", by_jointure, "--remove"
    )
    assert "last member" in message and "never deleted" in message
    assert _members(pipeline, gar_dn) == {teacher_dn}

    # Every command the worker applied was decided on the admin-decisions topic.
    decisions = [
        AdminCommandDecided.model_validate_json(m.value)
        for m in asyncio.run(read_topic(pipeline.kafka, ADMIN_DECISIONS.name))
        if m.value is not None
    ]
    accepted = {d.command for d in decisions if d.outcome == "accepted"}
    assert accepted == {"attach-teacher", "detach-teacher", "gar-manager-add", "gar-manager-remove"}
    assert all(d.reason is None for d in decisions if d.outcome != "refused")


def test_detach_teacher_from_a_school_but_never_from_the_attachment_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    generated = generate(tmp_path, GeneratorConfig(schools=2, pupils_per_school=6, seed=5))
    pipeline.ok("run", *(str(p) for k, p in sorted(generated.files.items()) if k != "delta"))
    teacher = next(t for t in _teachers(pipeline) if len(t.get("entsyncSchool")) == 2)
    login = _one(teacher, "ENTPersonLogin")
    attachment = _one(teacher, "ENTPersonStructRattach")
    (other,) = [s for s in teacher.get("entsyncSchool") if s != attachment]
    school_of = {e.dn: e for e in _entries(pipeline, "structures", "(objectClass=ENTStructure)")}
    home_uai = _one(school_of[attachment], "ENTStructureUAI")
    other_jointure = source_key(_one(school_of[other], "ENTStructureJointure"))

    message = _refused(pipeline, "detach-teacher", "--teacher", login, "--school", home_uai)
    assert "attachment school" in message

    pipeline.ok("admin", "detach-teacher", "--teacher", login, "--school", other_jointure)
    audits = _work(pipeline)
    assert audits and {a.cause.rule for a in audits} == {"admin.detach-from-school"}
    entry = read_entry(pipeline.ldap, teacher.dn, ["entsyncSchool"])
    assert entry is not None and entry.get("entsyncSchool") == (attachment,)
    teachers_dn = dit.group_dn(
        GroupSpec(school_jointure=other_jointure, profile="teachers"), pipeline.base_dn
    )
    assert teacher.dn.lower() not in (_members(pipeline, teachers_dn) or set())


def test_bulk_block_then_lifted_by_the_sweeper(pipeline: Pipeline, files: list[str]) -> None:
    pipeline.ok("run", *files)
    (school,) = _entries(pipeline, "structures", "(objectClass=ENTStructure)")
    uai = _one(school, "ENTStructureUAI")
    refused = pipeline.cli(
        "admin",
        "block",
        "--school",
        uai,
        "--profile",
        "pupils",
        "--from",
        "2026-09-06",
        "--to",
        "2026-08-28",
        "--message",
        "x",
    )
    assert refused.returncode == 2 and "--to must be after --from" in refused.stderr
    pipeline.ok(
        "admin",
        "block",
        "--school",
        uai,
        "--profile",
        "pupils,guardians",
        "--from",
        "2026-08-28T00:00",
        "--to",
        "2026-09-06T23:59",
        "--message",
        "Rentrée : accès fermé jusqu'au 6 septembre.",
    )
    audits = _work(pipeline)
    assert audits and {a.cause.rule for a in audits} == {"admin.block"}
    people = _entries(pipeline, "people", "(|(objectClass=ENTEleve)(ENTPersonProfils=National_2))")
    blocked = [p for p in people if p.get("entsyncBlockedUntil")]
    assert people and len(blocked) == len(people)
    assert {p.get("entsyncBlockedUntil") for p in blocked} == {("20260906215900Z",)}
    teachers = _teachers(pipeline)
    assert teachers and not any(t.get("entsyncBlockedUntil") for t in teachers)

    pipeline.ok("lifecycle", "sweep", "--now", "2026-09-07T00:00:00+02:00")
    pipeline.ok("worker", "--until-idle", "--timeout", "120")
    people = _entries(pipeline, "people", "(entsyncBlockedUntil=*)")
    assert people == []


def test_manual_accounts_created_and_deleted(pipeline: Pipeline, files: list[str]) -> None:
    pipeline.ok("run", *files)
    (school,) = _entries(pipeline, "structures", "(objectClass=ENTStructure)")
    uai = _one(school, "ENTStructureUAI")
    out = pipeline.ok(
        "admin",
        "create-manual",
        "--profile",
        "guardian",
        "--first-name",
        "Marie",
        "--last-name",
        "Accueil",
        "--school",
        uai,
    )
    entity = re.search(r"create manual account (ma-[a-z0-9]+)", out)
    assert entity is not None, out
    audits = _work(pipeline)
    assert {a.cause.rule for a in audits} == {"admin.create-manual"}
    (account,) = _entries(pipeline, "people", f"(entsyncId={entity.group(1)})")
    assert _one(account, "entsyncManual") == "TRUE" and _one(account, "ENTPersonLogin")

    feed_pupil = _entries(pipeline, "people", "(objectClass=ENTEleve)")[0]
    refused = _refused(pipeline, "delete-manual", "--account", _one(feed_pupil, "ENTPersonLogin"))
    assert "not a manual account" in refused

    pipeline.ok("admin", "delete-manual", "--account", _one(account, "ENTPersonLogin"))
    _work(pipeline)
    assert _entries(pipeline, "people", f"(entsyncId={entity.group(1)})") == []

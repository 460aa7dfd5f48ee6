"""Admin commands through the pure core: teacher–class attachment and the GAR group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.entities import (
    EntityInput,
    GarManagerRequested,
    GroupSpec,
    LinkSet,
    TeacherClassRequested,
)
from schemas.feed import FeedEvent, Staff
from sync import commands, dit, ids
from sync.commands import CommandError, parse_class_ref
from sync.effective import view
from sync.entries import staff_schools
from sync.reconcile import Context, ContractError, decide
from sync.simulator import Directory, RunResult, World, run_to_quiescence
from tests.unit.core_factories import (
    BASE,
    NS,
    guardian,
    letters,
    pupil,
    school,
    staff,
    with_causes,
)

CTX = Context(base_dn=BASE, namespace=NS)
AT = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)
T1, T2, T3 = (ids.staff_id(NS, j) for j in ("T1", "T2", "T3"))


def attach(
    teacher: str, code: str, *, school_: str = "S1", detach: bool = False, n: int = 0
) -> TeacherClassRequested:
    return commands.teacher_class_request(
        NS,
        teacher_id=teacher,
        school_jointure=school_,
        class_code=code,
        attach=not detach,
        at=AT + timedelta(minutes=n),
    )


def gar(
    teacher: str, *, school_: str = "S1", remove: bool = False, n: int = 0
) -> GarManagerRequested:
    return commands.gar_manager_request(
        NS,
        teacher_id=teacher,
        school_jointure=school_,
        add=not remove,
        at=AT + timedelta(minutes=n),
    )


def base_feed() -> list[FeedEvent]:
    """School S1 with one pupil in CP-A; teachers T1 and T3 in S1 (T3 needs a login), T2 in S2."""
    return [
        school("S1"),
        school("S2", "0750002B"),
        guardian("G1", first="Anne"),
        pupil("P1", first="Alice", ine="1234567890A", guardians=["G1"]),
        staff("T1", first="Paul", academic_login="ppaul"),
        staff("T2", first="Rose", attachment="S2", academic_login="rrose"),
        staff("T3", first="Ines"),
    ]


def settled() -> World:
    world = World()
    run_to_quiescence(with_causes(base_feed()), ctx=CTX, world=world)
    return world


def run(world: World, *inputs: EntityInput, events: list[FeedEvent] | None = None) -> RunResult:
    return run_to_quiescence(
        with_causes(events or [], start=1000), ctx=CTX, world=world, inputs=inputs, redeliver=True
    )


def entry(directory: Directory, entity_id: str) -> dict[str, tuple[str, ...]]:
    return directory[dit.people_dn(entity_id, BASE)]


def class_value(code: str, school_: str = "S1") -> str:
    return f"{dit.school_dn(school_, BASE)}${code}"


def class_teachers_dn(code: str, school_: str = "S1") -> str:
    spec = GroupSpec(school_jointure=school_, profile="teachers", class_code=code)
    return dit.group_dn(spec, BASE)


def class_dn(code: str, school_: str = "S1") -> str:
    return dit.group_dn(commands.class_spec(school_, code), BASE)


# ---------------------------------------------------------------- teacher–class attachment


def test_attach_is_accepted_by_an_existing_class() -> None:
    world = settled()
    result = run(world, attach(T1, "CP-A"))
    (decided,) = result.outcomes
    assert (decided.command, decided.outcome, decided.reason) == (
        "attach-teacher",
        "accepted",
        None,
    )
    assert (decided.teacher_id, decided.school_jointure, decided.class_code) == (T1, "S1", "CP-A")
    assert entry(world.directory, T1)["ENTAuxEnsClasses"] == (class_value("CP-A"),)
    group = world.directory[class_teachers_dn("CP-A")]
    assert group["member"] == (dit.people_dn(T1, BASE),)
    assert "ENTClasse" in group["objectClass"] and group["entsyncGroupName"] == ("CP A",)
    assert group["cn"] == ("S1$CP-A$teachers",)
    # Every change it led to is audited as the command.
    assert {(a.dn, a.action) for a in result.audits} == {
        (dit.people_dn(T1, BASE), "modify"),
        (class_teachers_dn("CP-A"), "add"),
    }
    assert {a.cause.rule for a in result.audits} == {"admin.attach-teacher"}
    assert all(a.cause.at == AT for a in result.audits)


def test_same_attach_twice_changes_nothing_the_second_time() -> None:
    world = settled()
    run(world, attach(T1, "CP-A"))
    before = {dn: dict(e) for dn, e in world.directory.items()}
    again = run(world, attach(T1, "CP-A", n=5))
    assert again.ops == () and again.audits == ()
    assert [d.outcome for d in again.outcomes] == ["unchanged"]
    assert world.directory == before


def test_attach_to_a_missing_class_is_refused_without_change() -> None:
    world = settled()
    before = {dn: dict(e) for dn, e in world.directory.items()}
    result = run(world, attach(T1, "CM2"), attach(T1, "CP-A", school_="S2"))
    assert result.ops == () and result.audits == ()
    assert {(d.outcome, d.reason) for d in result.outcomes} == {("refused", "class-missing")}
    assert world.directory == before
    missing = ids.group_id(NS, commands.class_spec("S1", "CM2"))
    assert world.entities[missing].class_teachers == {}
    # Refused is final: the class appearing later does not attach the teacher.
    run(world, events=[pupil("P2", first="Bob", ine="1234567891A", classes=[("CM2", "CM2")])])
    assert class_dn("CM2") in world.directory
    assert "ENTAuxEnsClasses" not in entry(world.directory, T1)


def test_detach_removes_the_value_and_the_empty_teachers_group() -> None:
    world = settled()
    run(world, attach(T1, "CP-A"), attach(T3, "CP-A", n=1))
    detached = run(world, attach(T1, "CP-A", detach=True, n=2))
    assert [d.outcome for d in detached.outcomes] == ["accepted"]
    assert "ENTAuxEnsClasses" not in entry(world.directory, T1)
    assert world.directory[class_teachers_dn("CP-A")]["member"] == (dit.people_dn(T3, BASE),)
    assert {a.cause.rule for a in detached.audits} == {"admin.detach-teacher"}
    run(world, attach(T3, "CP-A", detach=True, n=3))
    assert class_teachers_dn("CP-A") not in world.directory
    assert [d.outcome for d in run(world, attach(T3, "CP-A", detach=True, n=4)).outcomes] == [
        "unchanged"
    ]


def test_attach_again_after_a_detach_is_audited_with_new_event_ids() -> None:
    world = settled()
    first = run(world, attach(T1, "CP-A"))
    run(world, attach(T1, "CP-A", detach=True, n=1))
    again = run(world, attach(T1, "CP-A", n=2))
    assert [(a.dn, a.action) for a in again.audits] == [(a.dn, a.action) for a in first.audits]
    assert not {a.event_id for a in again.audits} & {a.event_id for a in first.audits}
    assert {d.event_id for d in again.outcomes}.isdisjoint(d.event_id for d in first.outcomes)


def test_class_disappearing_withdraws_its_teacher_links() -> None:
    world = settled()
    run(world, attach(T1, "CP-A"), attach(T3, "CP-A", n=1))
    second_class = pupil("P2", first="Bob", ine="1234567891A", classes=[("CE1", "CE1")])
    run(world, events=[second_class])
    run(world, attach(T1, "CE1", n=2))
    assert set(entry(world.directory, T1)["ENTAuxEnsClasses"]) == {
        class_value("CP-A"),
        class_value("CE1"),
    }
    # The only pupil of CP-A moves to CE1: CP-A is gone, and so are its teacher links.
    moved = pupil(
        "P1", first="Alice", ine="1234567890A", guardians=["G1"], classes=[("CE1", "CE1")]
    )
    result = run(world, events=[moved])
    assert class_dn("CP-A") not in world.directory
    assert class_teachers_dn("CP-A") not in world.directory
    assert entry(world.directory, T1)["ENTAuxEnsClasses"] == (class_value("CE1"),)
    assert "ENTAuxEnsClasses" not in entry(world.directory, T3)
    # Each withdrawal is audited with the feed message that emptied the class as its cause.
    rules = {a.dn: a.cause.rule for a in result.audits}
    assert rules[dit.people_dn(T1, BASE)] == rules[dit.people_dn(T3, BASE)] == "link.class-teacher"
    assert rules[class_teachers_dn("CP-A")] == "link.group-member"
    assert {a.cause.offset for a in result.audits} == {1000}
    cp_a = ids.group_id(NS, commands.class_spec("S1", "CP-A"))
    assert world.entities[cp_a].class_teachers == {}
    # The class comes back (a new pupil): it has no teacher until one is attached again.
    run(world, events=[pupil("P3", first="Cyd", ine="1234567892A", classes=[("CP-A", "CP A")])])
    assert class_dn("CP-A") in world.directory
    assert class_teachers_dn("CP-A") not in world.directory
    assert [d.outcome for d in run(world, attach(T3, "CP-A", n=9)).outcomes] == ["accepted"]
    assert entry(world.directory, T3)["ENTAuxEnsClasses"] == (class_value("CP-A"),)


def test_class_relabelled_relabels_its_teachers_group() -> None:
    world = settled()
    run(world, attach(T1, "CP-A"))
    relabelled = pupil(
        "P1", first="Alice", ine="1234567890A", guardians=["G1"], classes=[("CP-A", "CP Azur")]
    )
    run(world, events=[relabelled])
    assert world.directory[class_teachers_dn("CP-A")]["entsyncGroupName"] == ("CP Azur",)


def test_attachment_reaching_a_teacher_before_its_record_and_login_is_kept() -> None:
    world = World()
    without_t3 = [e for e in base_feed() if e.key != "staff:T3"]
    run_to_quiescence(with_causes(without_t3), ctx=CTX, world=world)
    # The class accepts and tells T3 before T3's record (and then its login) arrive.
    run(world, attach(T3, "CP-A"), events=[staff("T3", first="Ines")])
    assert entry(world.directory, T3)["ENTAuxEnsClasses"] == (class_value("CP-A"),)
    assert world.directory[class_teachers_dn("CP-A")]["member"] == (dit.people_dn(T3, BASE),)


def test_staff_that_is_not_a_teacher_gets_no_class_value() -> None:
    world = World()
    events = [*base_feed(), staff("N1", first="Nora", teacher=False, academic_login="nnora")]
    run_to_quiescence(with_causes(events), ctx=CTX, world=world)
    n1 = ids.staff_id(NS, "N1")
    result = run(world, attach(n1, "CP-A"))
    assert [d.outcome for d in result.outcomes] == ["accepted"]  # the class cannot tell
    assert "ENTAuxEnsClasses" not in entry(world.directory, n1)
    assert class_teachers_dn("CP-A") not in world.directory


def test_teacher_class_command_contracts() -> None:
    world = settled()
    command = attach(T1, "CP-A")
    other_class = ids.group_id(NS, commands.class_spec("S1", "CE1"))
    with pytest.raises(ContractError):
        decide(None, command.model_copy(update={"entity_id": other_class}), CTX)
    with pytest.raises(ContractError):
        decide(
            None,
            command.model_copy(
                update={"teacher_id": ids.pupil_id(NS, pupil("P1", first="A").pupil)}
            ),
            CTX,
        )
    forged = LinkSet(
        entity_id=T1,
        cause=command.cause,
        relation="class",
        member_id=other_class,
        present=True,
        group=commands.class_spec("S1", "CP-A"),
    )
    with pytest.raises(ContractError):
        decide(world.entities[T1], forged, CTX)


def test_parse_class_ref() -> None:
    assert parse_class_ref("0750001A/CP-A") == ("0750001A", "CP-A")
    assert parse_class_ref(" S1/CE1/CE2 ") == ("S1", "CE1/CE2")
    for bad in ("CP-A", "/CP-A", "S1/", ""):
        with pytest.raises(CommandError):
            parse_class_ref(bad)


# ---------------------------------------------------------------- GAR group


def gar_dn(school_: str = "S1") -> str:
    return dit.gar_group_dn(school_, BASE)


def test_gar_group_is_created_at_its_first_member() -> None:
    world = settled()
    assert gar_dn() not in world.directory
    result = run(world, gar(T1))
    assert [(d.command, d.outcome) for d in result.outcomes] == [("gar-manager-add", "accepted")]
    group = world.directory[gar_dn()]
    assert group["cn"] == ("S1$Resp-Affect-GAR",)
    assert group["entsyncGroupName"] == ("Resp-Affect-GAR",)
    assert group["member"] == (dit.people_dn(T1, BASE),)
    assert "ENTGroupe" in group["objectClass"]
    ((added,),) = [[a for a in result.audits if a.dn == gar_dn()]]
    assert added.action == "add" and added.cause.rule == "admin.gar-manager-add"
    assert [d.outcome for d in run(world, gar(T1, n=1)).outcomes] == ["unchanged"]


def test_gar_refuses_a_teacher_of_another_school() -> None:
    world = settled()
    result = run(world, gar(T2))
    assert [(d.outcome, d.reason) for d in result.outcomes] == [
        ("refused", "teacher-not-in-school")
    ]
    assert result.ops == () and gar_dn() not in world.directory


def test_gar_refuses_removing_the_last_manager() -> None:
    world = settled()
    run(world, gar(T1))
    refused = run(world, gar(T1, remove=True, n=1))
    assert [(d.outcome, d.reason) for d in refused.outcomes] == [("refused", "last-gar-manager")]
    assert refused.ops == ()
    assert world.directory[gar_dn()]["member"] == (dit.people_dn(T1, BASE),)
    # With a second manager in, the first one can leave.
    run(world, gar(T3, n=2))
    removed = run(world, gar(T1, remove=True, n=3))
    assert [d.outcome for d in removed.outcomes] == ["accepted"]
    assert world.directory[gar_dn()]["member"] == (dit.people_dn(T3, BASE),)
    assert {a.cause.rule for a in removed.audits} == {"admin.gar-manager-remove"}
    assert [d.outcome for d in run(world, gar(T1, remove=True, n=4)).outcomes] == ["unchanged"]


def test_a_gar_manager_leaving_the_school_leaves_the_gar_group() -> None:
    """The GAR group never names an entry that may go: a manager moved to another school by
    the staff feed is out of it; once its last manager has left, the group is removed."""
    world = settled()
    run(world, gar(T1))
    run(world, gar(T3, n=1))
    run(world, events=[staff("T1", first="Paul", academic_login="ppaul", attachment="S2")])
    assert world.directory[gar_dn()]["member"] == (dit.people_dn(T3, BASE),)
    assert (
        T1 not in world.entities[ids.group_id(NS, commands.school_teachers_spec("S1"))].gar_managers
    )
    # The last one leaves too: the group goes; an operator can name a new manager later.
    run(world, events=[staff("T3", first="Ines", attachment="S2")])
    assert gar_dn() not in world.directory


def test_a_gar_group_emptied_is_removed() -> None:
    world = settled()
    run(world, gar(T1))
    gar_id = ids.group_id(NS, dit.gar_group_spec("S1"))
    stray = LinkSet(
        entity_id=gar_id,
        cause=gar(T1).cause,
        relation="member",
        member_id=T1,
        present=False,
    )
    decision = decide(world.entities[gar_id], stray, CTX)
    assert [type(op).__name__ for op in decision.ops] == ["DeleteEntry"]


def test_gar_command_contracts() -> None:
    command = gar(T1)
    with pytest.raises(ContractError):
        decide(None, command.model_copy(update={"school_jointure": "S2"}), CTX)
    for teacher in ("gr-aaaaaaaaaaaaaaaa", "not-an-id"):
        with pytest.raises(ContractError):
            decide(None, command.model_copy(update={"teacher_id": teacher}), CTX)


# ---------------------------------------------------------------- group names


PARTS = st.sampled_from(["S", "S-1", "S$1", "S%241", "1", "S$1$pupils"])
CODES = st.sampled_from([None, "A", "1-A", "A$B", "B%24", "pupils"])
PROFILES = st.sampled_from(["pupils", "teachers", "gar"])


@given(st.tuples(PARTS, CODES, PROFILES), st.tuples(PARTS, CODES, PROFILES))
def test_group_names_are_distinct_for_distinct_groups(
    a: tuple[str, str | None, str], b: tuple[str, str | None, str]
) -> None:
    specs = [
        GroupSpec(
            school_jointure=school_,
            profile=profile,  # type: ignore[arg-type]
            class_code=None if profile == "gar" else code,
        )
        for school_, code, profile in (a, b)
    ]
    same_group = ids.group_id(NS, specs[0]) == ids.group_id(NS, specs[1])
    assert (dit.group_name(specs[0]) == dit.group_name(specs[1])) == same_group


def test_hyphens_no_longer_collide() -> None:
    one = GroupSpec(school_jointure="S-1", profile="pupils", class_code="A")
    two = GroupSpec(school_jointure="S", profile="pupils", class_code="1-A")
    assert dit.group_name(one) == "S-1$A$pupils" and dit.group_name(two) == "S$1-A$pupils"
    assert dit.group_dn(one, BASE) != dit.group_dn(two, BASE)


# ---------------------------------------------------------------- properties

CLASSES = ("A", "B", "C")
SCHOOLS = ("S1", "S2")


@st.composite
def admin_worlds(draw: st.DrawFn) -> tuple[list[FeedEvent], list[EntityInput]]:
    """Pupils moving between classes or leaving, teachers of one or two schools, and commands."""
    keyed: list[list[FeedEvent]] = [[school("S1")], [school("S2", "0750002B")]]
    for i in range(draw(st.integers(1, 5))):
        home = draw(st.sampled_from(("S1", "S1", "S1", "S2")))
        first = draw(st.sampled_from(CLASSES))
        common = {"first": letters(i), "ine": f"{i:010d}X", "guardians": ["G1"]}
        versions: list[FeedEvent] = [
            pupil(f"P{i}", school_jointure=home, classes=[(first, first)], **common)
        ]
        later = draw(st.sampled_from([None, "move", "leave"]))
        if later == "move":
            other = draw(st.sampled_from(CLASSES))
            versions.append(
                pupil(f"P{i}", school_jointure=home, classes=[(other, other)], **common)
            )
        elif later == "leave":  # to another school: the class loses a pupil
            versions.append(pupil(f"P{i}", school_jointure="S9", classes=[("X", "X")], **common))
        keyed.append(versions)
    keyed.append([guardian("G1", first="Anne")])
    teachers: list[str] = []
    for j in range(draw(st.integers(1, 3))):
        schools = draw(st.sampled_from([{"S1"}, {"S1"}, {"S2"}, {"S1", "S2"}]))
        attachment, *others = sorted(schools)
        login = draw(st.sampled_from([None, f"t{letters(j).lower()}"]))
        keyed.append(
            [
                staff(
                    f"T{j}",
                    first=letters(50 + j),
                    attachment=attachment,
                    schools=others,
                    academic_login=login,
                )
            ]
        )
        teachers.append(ids.staff_id(NS, f"T{j}"))
    order = draw(st.permutations(range(len(keyed))))
    events = [e for k in order for e in keyed[k]]
    inputs: list[EntityInput] = []
    attached: list[tuple[str, str, str]] = []
    managers: list[tuple[str, str]] = []
    for n in range(draw(st.integers(0, 8))):
        teacher = draw(st.sampled_from(teachers))
        school_ = draw(st.sampled_from(("S1", "S1", "S2")))
        action = draw(st.sampled_from(["attach", "attach", "detach", "gar", "gar", "ungar"]))
        if action == "detach" and attached:
            teacher, school_, code = draw(st.sampled_from(attached))
            inputs.append(attach(teacher, code, school_=school_, detach=True, n=n))
        elif action in ("attach", "detach"):
            code = draw(st.sampled_from((*CLASSES, "D")))
            attached.append((teacher, school_, code))
            inputs.append(attach(teacher, code, school_=school_, n=n))
        elif action == "ungar" and managers:
            teacher, school_ = draw(st.sampled_from(managers))
            inputs.append(gar(teacher, school_=school_, remove=True, n=n))
        else:
            managers.append((teacher, school_))
            inputs.append(gar(teacher, school_=school_, n=n))
    return events, inputs


def works_at(world: World, teacher: str) -> set[str]:
    state = world.entities.get(teacher)
    record = view(state).record if state is not None else None
    return set(staff_schools(record)) if isinstance(record, Staff) else set()


def assert_consistent(world: World) -> None:
    """The directory agrees with the authorities, whatever order things arrived in."""
    directory = world.directory
    staff_ids = {e.entity_id for e in world.entities.values() if e.kind == "staff"}
    for school_ in SCHOOLS:
        for code in (*CLASSES, "D"):
            authority = world.entities.get(ids.group_id(NS, commands.class_spec(school_, code)))
            # A teacher shows a class only while working at its school (the staff feed decides).
            attached = {
                t
                for t in (authority.class_teachers if authority is not None else {})
                if school_ in works_at(world, t)
            }
            with_value = {
                t
                for t in staff_ids
                if class_value(code, school_) in entry(directory, t).get("ENTAuxEnsClasses", ())
            }
            assert with_value == attached
            if class_dn(code, school_) not in directory:
                assert not attached
            group = directory.get(class_teachers_dn(code, school_))
            assert (group is not None) == bool(attached)
            if group is not None:
                assert set(group["member"]) == {dit.people_dn(t, BASE) for t in attached}
        teachers_group = world.entities.get(
            ids.group_id(NS, commands.school_teachers_spec(school_))
        )
        managers = set(teachers_group.gar_managers) if teachers_group is not None else set()
        gar_entry = directory.get(gar_dn(school_))
        assert (gar_entry is not None) == bool(managers)
        if gar_entry is not None:
            assert set(gar_entry["member"]) == {dit.people_dn(t, BASE) for t in managers}
        for t in managers:  # only teachers of the school (none changes school here)
            assert dit.school_dn(school_, BASE) in entry(directory, t)["entsyncSchool"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(admin_worlds(), st.data())
def test_commands_and_feed_in_any_interleaving_stay_consistent(
    world_plan: tuple[list[FeedEvent], list[EntityInput]], data: st.DataObject
) -> None:
    events, inputs = world_plan

    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    world = World()
    result = run_to_quiescence(
        with_causes(events), ctx=CTX, world=world, inputs=inputs, choose=choose, redeliver=True
    )
    assert len(result.outcomes) == len(inputs)
    assert all((d.outcome == "refused") == (d.reason is not None) for d in result.outcomes)
    assert_consistent(world)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(admin_worlds(), st.data())
def test_commands_after_the_feed_converge_under_any_interleaving(
    world_plan: tuple[list[FeedEvent], list[EntityInput]], data: st.DataObject
) -> None:
    """Each target gets its commands in the order published; across targets, any order."""
    events, inputs = world_plan
    feed = with_causes(events)

    def settled_world() -> World:
        world = World()
        run_to_quiescence(feed, ctx=CTX, world=world)
        return world

    reference = settled_world()
    expected = run_to_quiescence([], ctx=CTX, world=reference, inputs=inputs)

    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    world = settled_world()
    result = run_to_quiescence(
        [], ctx=CTX, world=world, inputs=inputs, choose=choose, redeliver=True
    )
    assert world.directory == reference.directory
    assert sorted(d.event_id for d in result.outcomes) == sorted(
        d.event_id for d in expected.outcomes
    )
    assert_consistent(world)

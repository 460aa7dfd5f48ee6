"""The pure part of the replay: external inputs, their merge, stages, prediction and the diff."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.stream.partition_scans import sweep_requests
from schemas.entities import (
    Cause,
    EntityMessage,
    GarManagerRequested,
    LinkSet,
    SweepRequested,
)
from schemas.feed import Category, FeedEvent, FeedMessage, SnapshotCompleted
from schemas.lifecycle import (
    FeedTopicMessage,
    SnapshotRef,
    SnapshotScan,
    SnapshotTally,
    YearCommand,
)
from sync import absence, lifecycle
from sync.replay import (
    ExternalInput,
    ReplayInputError,
    TopicRecord,
    cause_of,
    diff_directories,
    entity_commands,
    feed_inputs,
    merge,
    predict,
    schools_of,
    stages,
    summarize,
    window,
)
from sync.simulator import World, run_to_quiescence, sweep_world
from tests.unit.core_factories import BASE, T0, guardian, pupil, school
from tests.unit.lifecycle_helpers import CTX, snapshot, year

FEED, ENTITIES = "entsync.feed.v1", "entsync.entities.v1"
MS = int(T0.timestamp() * 1000)


def rec(topic: str, partition: int, offset: int, at_ms: int, value: bytes | None) -> TopicRecord:
    return TopicRecord(topic, partition, offset, at_ms, b"k", value)


def feed_value(message: object) -> bytes:
    return FeedTopicMessage(message).model_dump_json().encode()  # type: ignore[arg-type]


def timeline(messages: list[object], step_ms: int = 1000) -> list[ExternalInput]:
    """Feed messages on one partition, then entity commands, one second apart."""
    feed: list[TopicRecord] = []
    ents: list[TopicRecord] = []
    for i, m in enumerate(messages):
        if isinstance(m, SweepRequested | GarManagerRequested):
            value = EntityMessage(m).model_dump_json().encode()
            ents.append(
                rec(
                    ENTITIES,
                    m.partition if isinstance(m, SweepRequested) else 0,
                    i,
                    MS + i * step_ms,
                    value,
                )
            )
        else:
            feed.append(rec(FEED, 0, i, MS + i * step_ms, feed_value(m)))
    return merge([*feed_inputs(feed), *entity_commands(ents)])


def scenario() -> tuple[list[FeedEvent], list[FeedEvent]]:
    """A school, two pupils and a guardian; then a complete extract without the second pupil."""
    s = school("0750001A", uai="0750001A")
    g = guardian("G1", first="Anne", pupils=("P1", "P2"))
    p1 = pupil("P1", first="Zoe", ine="1234567890A", school_jointure="0750001A", guardians=("G1",))
    p2 = pupil("P2", first="Leo", ine="1234567891B", school_jointure="0750001A", guardians=("G1",))
    first = [s, g, *snapshot(Category.PUPILS, "0750001A", "a" * 64, [p1, p2])]
    second = snapshot(Category.PUPILS, "0750001A", "b" * 64, [p1])
    return first, second


# ----------------------------------------------------------------------------- external inputs


def test_feed_inputs_keep_ingest_events_and_operator_controls_only() -> None:
    first, _ = scenario()
    scan = SnapshotScan(
        key="snapshot:Eleve:0750001A",
        snapshot=SnapshotRef(
            snapshot_id="a" * 64, category=Category.PUPILS, scope="0750001A", started_at=T0
        ),
        phase="tally",
        partition=0,
        partitions=1,
        rule="lifecycle.absent-from-snapshot",
    )
    tally = SnapshotTally(
        key=scan.key, snapshot_id="a" * 64, partition=0, partitions=1, active=1, absent=0
    )
    records = [rec(FEED, 0, i, MS + i, feed_value(m)) for i, m in enumerate([*first, scan, tally])]
    records.append(rec(FEED, 0, 99, MS + 99, None))  # a tombstone
    records.append(rec(FEED, 0, 100, MS + 100, feed_value(year("freeze", T0))))
    kept = list(feed_inputs(records))
    assert [i.message for i in kept] == [*first, year("freeze", T0)]
    assert all(i.role == "feed" for i in kept)


def test_a_broken_message_is_named_without_its_content() -> None:
    secret = b'{"type":"pupil.upserted","pupil":{"last_name":"Dupont-Secret"}}'
    with pytest.raises(ReplayInputError) as caught:
        list(feed_inputs([rec(FEED, 2, 17, MS, secret)]))
    assert "entsync.feed.v1 partition 2 offset 17" in str(caught.value)
    assert "Secret" not in str(caught.value)
    with pytest.raises(ReplayInputError, match="partition 0 offset 3"):
        list(entity_commands([rec(ENTITIES, 0, 3, MS, b'{"type":"admin.nonsense"}')]))


def test_entity_commands_are_the_operators_only() -> None:
    cause = Cause(topic=ENTITIES, rule="link.guardian-child", at=T0)
    link = LinkSet(entity_id="e1", cause=cause, relation="child", member_id="e2", present=True)
    gar = GarManagerRequested(
        entity_id="g1",
        cause=cause.model_copy(update={"rule": "admin.gar-manager-add"}),
        teacher_id="t1",
        school_jointure="0750001A",
        present=True,
    )
    sweeps = sweep_requests(T0, 2)
    records = [
        rec(ENTITIES, 0, i, MS, EntityMessage(m).model_dump_json().encode())
        for i, m in enumerate([link, gar, *sweeps])
    ]
    assert [i.message for i in entity_commands(records)] == [gar, *sweeps]


# ------------------------------------------------------------------------------ merge, stages


@given(
    st.lists(st.lists(st.integers(min_value=0, max_value=50), max_size=8), min_size=1, max_size=4)
)
def test_merge_keeps_every_partition_in_its_own_order(lanes: list[list[int]]) -> None:
    value = feed_value(year("freeze", T0))
    records = [
        rec(FEED, p, offset, MS + t, value)
        for p, times in enumerate(lanes)
        for offset, t in enumerate(times)
    ]
    merged = merge(feed_inputs(reversed(records)))
    assert sorted((i.record.partition, i.record.offset) for i in merged) == sorted(
        (r.partition, r.offset) for r in records
    )
    for p in range(len(lanes)):
        offsets = [i.record.offset for i in merged if i.record.partition == p]
        assert offsets == sorted(offsets)


def test_merge_orders_partitions_by_broker_time() -> None:
    value = feed_value(year("freeze", T0))
    a = [rec(FEED, 0, 0, MS + 10, value), rec(FEED, 0, 1, MS + 30, value)]
    b = [rec(FEED, 1, 0, MS + 20, value)]
    merged = merge(feed_inputs([*a, *b]))
    assert [(i.record.partition, i.record.offset) for i in merged] == [(0, 0), (1, 0), (0, 1)]


def test_stages_cut_after_snapshots_and_around_commands() -> None:
    first, second = scenario()
    freeze = [year("freeze", T0).model_copy(update={"partition": p}) for p in range(3)]
    sweeps = sweep_requests(T0 + timedelta(days=91), 3)
    inputs = timeline([*first, *freeze, *second, *sweeps, *second])
    plan = stages(inputs)
    sizes = [len(s) for s in plan]
    # school + guardian + snapshot | 3 freeze copies | snapshot | 3 sweep copies | snapshot
    assert sizes == [len(first), 3, len(second), 3, len(second)]
    assert isinstance(plan[0][-1].message, SnapshotCompleted)
    cut = stages(inputs, cut_at=inputs[1].at)
    assert [len(s) for s in cut][:2] == [1, len(first) - 1]


def test_window_stops_at_until() -> None:
    first, _ = scenario()
    inputs = timeline(list(first))
    assert window(inputs, inputs[2].at) == inputs[:3]
    assert window(inputs, None) == inputs


# ---------------------------------------------------------------------------------- prediction


def test_prediction_is_the_pure_pipeline_with_commands_at_their_time() -> None:
    first, second = scenario()
    later = T0 + timedelta(days=120)
    sweeps = sweep_requests(later, 4)
    copies = [year("unfreeze", T0).model_copy(update={"partition": p}) for p in range(4)]
    inputs = timeline([*first, *copies, *second, *sweeps])
    policy = lifecycle.Policy()
    predicted = predict(inputs, ctx=CTX, guard=absence.Guard(), policy=policy)

    world = World()
    feed = [i for i in inputs if i.role == "feed"]
    events = [(i.message, cause_of(i)) for i in feed if not isinstance(i.message, YearCommand)]
    run_to_quiescence(events[: len(first)], ctx=CTX, world=world)  # type: ignore[arg-type]
    run_to_quiescence([(copies[0], cause_of(feed[len(first)]))], ctx=CTX, world=world)
    run_to_quiescence(events[len(first) :], ctx=CTX, world=world)  # type: ignore[arg-type]
    sweep = next(i for i in inputs if i.role == "entities")
    sweep_world(world, later, policy=policy, cause=cause_of(sweep, "lifecycle.sweep"), ctx=CTX)
    assert predicted.directory == world.directory
    states = [a.get("entsyncAccountState") for a in world.directory.values()]
    assert ("predeleted",) in states  # the second pupil left, and the sweep moved him on
    # The disappearance is dated by the evidence: the second snapshot's completion.
    gone = [a for a in world.directory.values() if "entsyncDisappearedAt" in a]
    completed = next(i for i in inputs[::-1] if isinstance(i.message, SnapshotCompleted))
    assert gone and gone[0]["entsyncDisappearedAt"] == (completed.at.strftime("%Y%m%d%H%M%SZ"),)


def test_since_reports_only_what_changed_from_then_on() -> None:
    first, second = scenario()
    inputs = timeline([*first, *second])
    full = predict(inputs, ctx=CTX, guard=absence.Guard(), policy=lifecycle.Policy())
    since = predict(
        inputs,
        ctx=CTX,
        guard=absence.Guard(),
        policy=lifecycle.Policy(),
        since=inputs[len(first)].at,
    )
    assert since.directory == full.directory
    assert since.touched and since.touched < full.touched
    assert all("uid=" in dn or "cn=" in dn for dn in since.touched)


# ------------------------------------------------------------------------------------- the diff

PEOPLE = f"ou=people,{BASE}"
SCHOOL = f"ou=0750001A,ou=structures,{BASE}"


def person(
    login: str, school_dn: str = SCHOOL, **more: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    return {
        "objectClass": ("ENTPerson",),
        "ENTPersonLogin": (login,),
        "ENTPersonStructRattach": (school_dn,),
        **more,
    }


def directory() -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        SCHOOL: {"ou": ("0750001A",), "objectClass": ("ENTStructure",)},
        f"uid=a,{PEOPLE}": person("zoe.martin"),
        f"uid=b,{PEOPLE}": person("zoe.martin1"),
        f"uid=c,{PEOPLE}": person("leo.petit", f"ou=0750002B,ou=structures,{BASE}"),
        f"cn=0750001A$pupils,ou=groups,{BASE}": {"member": (f"uid=a,{PEOPLE}",)},
    }


def test_same_directories_differ_in_nothing() -> None:
    assert diff_directories(directory(), directory(), base_dn=BASE) == []


def test_an_edit_and_a_deletion_are_reported_by_attribute_name_only() -> None:
    actual = directory()
    actual[f"uid=a,{PEOPLE}"] = {**actual[f"uid=a,{PEOPLE}"], "mail": ("secret@example.org",)}
    del actual[f"uid=c,{PEOPLE}"]
    actual[f"uid=z,{PEOPLE}"] = person("extra.one")
    changes = diff_directories(directory(), actual, base_dn=BASE)
    assert [(c.dn, c.action, c.attributes) for c in changes] == [
        (f"uid=a,{PEOPLE}", "modify", ("mail",)),
        (f"uid=c,{PEOPLE}", "add", ("entpersonlogin", "entpersonstructrattach", "objectclass")),
        (f"uid=z,{PEOPLE}", "delete", ("entpersonlogin", "entpersonstructrattach", "objectclass")),
    ]
    lines = "".join(c.to_json() for c in changes)
    assert "secret" not in lines and "zoe" not in lines
    assert json.loads(changes[1].to_json())["schools"] == ["0750002B"]
    assert summarize(changes) == {"0750001A": {"modify": 1, "delete": 1}, "0750002B": {"add": 1}}


def test_homonyms_served_in_another_order_are_not_a_difference() -> None:
    swapped = directory()
    swapped[f"uid=a,{PEOPLE}"] = person("zoe.martin1")
    swapped[f"uid=b,{PEOPLE}"] = person("zoe.martin")
    assert diff_directories(directory(), swapped, base_dn=BASE) == []
    renamed = directory()
    renamed[f"uid=b,{PEOPLE}"] = person("zoe.martin2")
    (change,) = diff_directories(directory(), renamed, base_dn=BASE)
    assert change.dn == f"uid=b,{PEOPLE}" and change.attributes == ("entpersonlogin",)


def test_bridge_attributes_and_unmanaged_branches_are_not_compared() -> None:
    actual = directory()
    actual[f"uid=a,{PEOPLE}"] = {**actual[f"uid=a,{PEOPLE}"], "entsyncBridgeId": ("br-1",)}
    actual[f"cn=family,ou=manual-groups,{BASE}"] = {"cn": ("family",)}
    assert diff_directories(directory(), actual, base_dn=BASE) == []


def test_scope_and_only_restrict_the_report() -> None:
    actual = {dn: {**attrs, "description": ("x",)} for dn, attrs in directory().items()}
    everything = diff_directories(directory(), actual, base_dn=BASE)
    assert len(everything) == 5
    scoped = diff_directories(directory(), actual, base_dn=BASE, scope="0750002b")
    assert [c.dn for c in scoped] == [f"uid=c,{PEOPLE}"]
    only = diff_directories(directory(), actual, base_dn=BASE, only={f"uid=a,{PEOPLE}".lower()})
    assert [c.dn for c in only] == [f"uid=a,{PEOPLE}"]


def test_schools_of_an_entry() -> None:
    assert schools_of(SCHOOL, [], BASE) == {"0750001A"}
    assert schools_of(f"cn=0750001A$CP$pupils,ou=groups,{BASE}", [], BASE) == {"0750001A"}
    classes = {"ENTEleveClasses": (f"ou=0750002B,ou=structures,{BASE}$CP",)}
    assert schools_of(f"uid=x,{PEOPLE}", [person("a.b"), classes], BASE) == {
        "0750001A",
        "0750002B",
    }


@given(st.sampled_from(sorted(directory())), st.text(min_size=1, max_size=5))
def test_one_changed_value_is_exactly_one_change(dn: str, value: str) -> None:
    actual = directory()
    actual[dn] = {**actual[dn], "description": (value,)}
    (change,) = diff_directories(directory(), actual, base_dn=BASE)
    assert (change.dn, change.action, change.attributes) == (dn, "modify", ("description",))


def test_feed_message_round_trip_is_the_ingest_form() -> None:
    first, _ = scenario()
    raw = FeedMessage(first[0]).model_dump_json().encode()
    (item,) = feed_inputs([rec(FEED, 0, 0, MS, raw)])
    assert item.message == first[0] and item.at.timestamp() == MS / 1000

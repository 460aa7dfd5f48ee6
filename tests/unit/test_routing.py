"""Routing feed events to entity inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.entities import RecordSet
from schemas.feed import Category, FeedEvent, SnapshotCompleted, SnapshotStarted
from schemas.state import SourceState
from sync import ids
from sync.routing import route
from tests.unit.core_factories import (
    NS,
    cause,
    deleted,
    guardian,
    pupil,
    school,
    source,
    staff,
)


def test_upsert_routes_a_record_set() -> None:
    event = pupil("P1", first="Lea", ine="1234567890A")
    routed = route(None, event, cause(1), NS)
    assert routed.state == SourceState(
        key="pupil:P1",
        kind="pupil",
        entity_id=ids.pupil_id(NS, event.pupil),
        version=event.version,
        scope=event.source.scope,
        category=Category.PUPILS,
        snapshot_id=event.source.snapshot_id,
        at=cause(1).at,
    )
    (inp,) = routed.inputs
    assert inp.entity_id == ids.pupil_id(NS, event.pupil)
    assert inp.source_key == "pupil:P1" and inp.version == event.version
    assert inp.pupil == event.pupil and inp.entity_kind == "pupil"
    assert inp.cause == cause(1)


def test_each_kind_goes_to_its_entity() -> None:
    cases: list[tuple[FeedEvent, str, str]] = [
        (school("S1"), ids.school_id(NS, "S1"), "school"),
        (guardian("G1", first="Ann"), ids.guardian_id(NS, "G1"), "guardian"),
        (staff("T1", first="Tom"), ids.staff_id(NS, "T1"), "staff"),
    ]
    for event, entity_id, kind in cases:
        (inp,) = route(None, event, cause(1), NS).inputs
        assert (inp.entity_id, inp.entity_kind) == (entity_id, kind)
        assert getattr(inp, kind) is not None


def test_same_version_is_a_no_op() -> None:
    event = school("S1")
    first = route(None, event, cause(1), NS)
    again = route(first.state, event, cause(2), NS)
    assert again.inputs == ()
    assert again.state is not None and first.state is not None
    # Only the evidence of presence moves: the key was fed again, later.
    assert again.state.model_copy(update={"at": first.state.at}) == first.state
    assert again.state.at == cause(2).at


def test_new_version_routes_again() -> None:
    first = route(None, school("S1", name="A"), cause(1), NS)
    second = route(first.state, school("S1", name="B"), cause(2), NS)
    assert len(second.inputs) == 1 and second.inputs[0].school is not None
    assert second.inputs[0].school.name == "B"


def test_pupil_getting_an_ine_moves_to_a_new_entity() -> None:
    without = pupil("P1", first="Lea")
    with_ine = pupil("P1", first="Lea", ine="1234567890A")
    first = route(None, without, cause(1), NS)
    second = route(first.state, with_ine, cause(2), NS)
    removal, record = second.inputs
    assert removal == RecordSet(
        entity_id=ids.pupil_id(NS, without.pupil),
        cause=cause(2),
        entity_kind="pupil",
        source_key="pupil:P1",
        version=None,
    )
    assert record.entity_id == ids.pupil_id(NS, with_ine.pupil) != removal.entity_id
    assert second.state is not None and second.state.entity_id == record.entity_id


def test_deletion_retracts_the_record() -> None:
    first = route(None, guardian("G1", first="Ann"), cause(1), NS)
    gone = route(first.state, deleted("guardian", "G1"), cause(2), NS)
    (inp,) = gone.inputs
    assert inp.entity_id == ids.guardian_id(NS, "G1") and inp.version is None
    assert inp.guardian is None
    assert gone.state is not None and gone.state.version is None
    assert route(gone.state, deleted("guardian", "G1"), cause(3), NS).inputs == ()


def test_deletion_of_unknown_key_routes_nothing() -> None:
    routed = route(None, deleted("pupil", "P9"), cause(1), NS)
    assert routed == route(None, deleted("pupil", "P9"), cause(1), NS)
    assert routed.state is None and routed.inputs == ()


def test_record_coming_back_after_deletion() -> None:
    event = guardian("G1", first="Ann")
    first = route(None, event, cause(1), NS)
    gone = route(first.state, deleted("guardian", "G1"), cause(2), NS)
    back = route(gone.state, event, cause(3), NS)
    (inp,) = back.inputs  # no removal sent again to the same entity
    assert inp.version == event.version


def test_deleted_then_new_entity_sends_no_second_removal() -> None:
    first = route(None, pupil("P1", first="Lea"), cause(1), NS)
    gone = route(first.state, deleted("pupil", "P1"), cause(2), NS)
    back = route(gone.state, pupil("P1", first="Lea", ine="1234567890A"), cause(3), NS)
    assert len(back.inputs) == 1 and back.inputs[0].version is not None


def test_snapshot_markers_route_nothing() -> None:
    started = SnapshotStarted(
        key="snapshot:0750001A",
        version="v",
        source=source("pupil"),
        snapshot_id="d",
        scope="0750001A",
        category=Category.PUPILS,
        extract_date=None,
    )
    completed = SnapshotCompleted(
        key="snapshot:0750001A",
        version="v",
        source=source("pupil"),
        snapshot_id="d",
        scope="0750001A",
        category=Category.PUPILS,
        extract_date=None,
        record_count=0,
        record_keys_digest="0" * 64,
    )
    assert route(None, started, cause(1), NS).inputs == ()
    assert route(None, completed, cause(2), NS).inputs == ()


events = st.one_of(
    st.builds(lambda n: school("S1", name=n), st.sampled_from(["A", "B"])),
    st.builds(
        lambda ine, n: pupil("P1", first=n, ine=ine),
        st.sampled_from([None, "1234567890A", "1234567890B"]),
        st.sampled_from(["Lea", "Zoe"]),
    ),
    st.just(deleted("pupil", "P1")),
    st.just(deleted("school", "S1")),
)


@given(st.lists(events, max_size=12))
def test_routing_is_idempotent(sequence: list[FeedEvent]) -> None:
    states: dict[str, SourceState | None] = {}
    for offset, event in enumerate(sequence):
        routed = route(states.get(event.key), event, cause(offset), NS)
        again = route(routed.state, event, cause(offset), NS)
        assert again.inputs == ()
        assert again.state == routed.state
        states[event.key] = routed.state

"""Bulk blocking of a school's accounts: ``entsync admin block`` through the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.entities import Cause
from sync import commands, dit, ids
from sync.commands import CommandError
from sync.reconcile import Context
from sync.simulator import RunResult, World, run_to_quiescence, sweep_world
from tests.unit.core_factories import BASE, NS, guardian, pupil, school, staff, with_causes

CTX = Context(base_dn=BASE, namespace=NS)
START = datetime(2026, 8, 28, 0, 0, tzinfo=UTC)
END = datetime(2026, 9, 6, 23, 59, tzinfo=UTC)
MESSAGE = "L'ENT prépare la rentrée : accès fermé jusqu'au 6 septembre."
BLOCKED = ("entsyncBlockedFrom", "entsyncBlockedUntil", "entsyncBlockedMessage")


def world() -> World:
    events = [
        school("S1"),
        pupil("P1", first="Lea", ine="0000000001A", guardians=["G1"]),
        guardian("G1", first="Ann"),
        staff("T1", first="Tom"),
    ]
    return run_to_quiescence(with_causes(events), ctx=CTX).world


def block(w: World, profile: str, *, cancel: bool = False, n: int = 0) -> RunResult:
    command = commands.block_request(
        NS,
        school_jointure="S1",
        profile=profile,  # type: ignore[arg-type]
        start=START,
        end=END,
        message=MESSAGE,
        cancel=cancel,
        at=START - timedelta(days=1) + timedelta(minutes=n),
    )
    return run_to_quiescence((), ctx=CTX, world=w, inputs=[command])


def entry(w: World, entity_id: str) -> dict[str, tuple[str, ...]]:
    return w.directory[dit.people_dn(entity_id, BASE)]


PUPIL = ids.entity_id(NS, "pupil", "ine:0000000001A")
GUARDIAN = ids.guardian_id(NS, "G1")
TEACHER = ids.staff_id(NS, "T1")


def test_a_block_reaches_every_account_of_the_profile_and_only_them() -> None:
    w = world()
    result = block(w, "pupils")
    assert [d.outcome for d in result.outcomes] == ["accepted"]
    blocked = entry(w, PUPIL)
    assert blocked["entsyncBlockedFrom"] == ("20260828000000Z",)
    assert blocked["entsyncBlockedUntil"] == ("20260906235900Z",)
    assert blocked["entsyncBlockedMessage"] == (MESSAGE,)
    assert not set(BLOCKED) & set(entry(w, GUARDIAN)) and not set(BLOCKED) & set(entry(w, TEACHER))
    assert {a.cause.rule for a in result.audits} == {"admin.block"}
    assert [d.outcome for d in block(w, "pupils", n=1).outcomes] == ["unchanged"]


def test_a_newcomer_is_blocked_too_and_the_sweeper_lifts_the_block_at_its_end() -> None:
    w = world()
    block(w, "pupils")
    late = pupil("P2", first="Zoe", ine="0000000002B")
    run_to_quiescence(with_causes([late], start=100), ctx=CTX, world=w)
    newcomer = ids.entity_id(NS, "pupil", "ine:0000000002B")
    assert entry(w, newcomer)["entsyncBlockedMessage"] == (MESSAGE,)
    cause = Cause(topic="entsync.entities.v1", rule="sweep", at=END)
    early = sweep_world(w, END - timedelta(hours=1), cause=cause, ctx=CTX)
    assert early.ops == ()
    swept = sweep_world(w, END + timedelta(minutes=1), cause=cause, ctx=CTX)
    assert {a.cause.rule for a in swept.audits} == {"lifecycle.block-ended"}
    for person in (PUPIL, newcomer):
        assert not set(BLOCKED) & set(entry(w, person))


def test_a_cancelled_block_is_lifted_at_once() -> None:
    w = world()
    block(w, "guardians")
    assert entry(w, GUARDIAN)["entsyncBlockedMessage"] == (MESSAGE,)
    result = block(w, "guardians", cancel=True, n=1)
    assert [d.outcome for d in result.outcomes] == ["accepted"]
    assert not set(BLOCKED) & set(entry(w, GUARDIAN))


def test_a_block_must_end_after_it_starts() -> None:
    with pytest.raises(CommandError):
        commands.block_request(
            NS,
            school_jointure="S1",
            profile="pupils",
            start=END,
            end=START,
            message="x",
            cancel=False,
            at=START,
        )

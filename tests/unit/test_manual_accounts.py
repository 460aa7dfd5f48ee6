"""Manual accounts (foster families, guests) through the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.entities import Cause, GroupSpec, ManualAccount
from schemas.feed import Category
from sync import commands, dit
from sync.simulator import RunResult, World, run_to_quiescence, sweep_world
from tests.unit.core_factories import BASE, NS, guardian, school
from tests.unit.lifecycle_helpers import CTX, Clock, snapshot

AT = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)


def create(w: World, token: str, profile: str = "guardian") -> tuple[str, RunResult]:
    account = ManualAccount(
        profile=profile,  # type: ignore[arg-type]
        first_name="Marie",
        last_name="Accueil",
        school_jointure="S1",
        email=None,
    )
    command = commands.manual_account_request(NS, token=token, account=account, at=AT)
    return command.entity_id, run_to_quiescence((), ctx=CTX, world=w, inputs=[command])


def delete(w: World, entity_id: str, *, activated: bool, n: int = 1) -> RunResult:
    command = commands.manual_deletion(entity_id, activated=activated, at=AT + timedelta(minutes=n))
    return run_to_quiescence((), ctx=CTX, world=w, inputs=[command])


def entry(w: World, entity_id: str) -> dict[str, tuple[str, ...]] | None:
    return w.directory.get(dit.people_dn(entity_id, BASE))


def sweep(w: World, at: datetime) -> RunResult:
    return sweep_world(w, at, cause=Cause(topic="t", rule="sweep", at=at), ctx=CTX)


def guardians_group(w: World) -> tuple[str, ...]:
    spec = GroupSpec(school_jointure="S1", profile="guardians")
    return w.directory.get(dit.group_dn(spec, BASE), {}).get("member", ())


def test_a_foster_family_gets_a_parent_account_in_its_school() -> None:
    w = run_to_quiescence([(school("S1"), Cause(topic="t", rule="r", at=AT))], ctx=CTX).world
    entity, result = create(w, "token-1")
    assert [d.outcome for d in result.outcomes] == ["accepted"]
    account = entry(w, entity)
    assert account is not None
    assert account["entsyncManual"] == ("TRUE",) and account["ENTPersonProfils"] == ("National_2",)
    assert account["ENTPersonLogin"] == ("marie.accueil",)
    assert account["ENTPersonStructRattach"] == (dit.school_dn("S1", BASE),)
    assert dit.people_dn(entity, BASE) in guardians_group(w)
    assert {a.cause.rule for a in result.audits} == {"admin.create-manual"}


def test_deleting_a_never_activated_account_removes_it_at_once() -> None:
    w = World()
    entity, _ = create(w, "token-2")
    result = delete(w, entity, activated=False)
    assert entry(w, entity) is None and [d.outcome for d in result.outcomes] == ["accepted"]
    assert [d.outcome for d in delete(w, entity, activated=False, n=2).outcomes] == ["unchanged"]


def test_deleting_an_activated_account_predeletes_it_then_the_sweeper_deletes() -> None:
    w = World()
    entity, _ = create(w, "token-3")
    delete(w, entity, activated=True)
    account = entry(w, entity)
    assert account is not None and account["entsyncAccountState"] == ("predeleted",)
    assert dit.people_dn(entity, BASE) not in guardians_group(w)
    assert sweep(w, AT + timedelta(days=89)).ops == ()
    sweep(w, AT + timedelta(days=91))
    assert entry(w, entity) is None


def test_a_deleted_guest_goes_at_the_next_sweep() -> None:
    w = World()
    entity, _ = create(w, "token-4", profile="guest")
    guest = entry(w, entity)
    assert guest is not None and "ENTPersonProfils" not in guest
    delete(w, entity, activated=True)
    assert entry(w, entity) is not None
    sweep(w, AT + timedelta(hours=12))
    assert entry(w, entity) is None


def test_manual_accounts_never_disappear_with_the_feeds() -> None:
    clock = Clock()
    clock.feed([school("S1")])
    entity, _ = create(clock.world, "token-5")
    clock.feed(snapshot(Category.GUARDIANS, "0750001A", "g1", [guardian("G1", first="Ann")]))
    clock.feed(snapshot(Category.GUARDIANS, "0750001A", "g2", []))
    sweep(clock.world, clock.now + timedelta(days=400))
    account = entry(clock.world, entity)
    assert account is not None and account["entsyncAccountState"] == ("active",)

"""The python-ldap writer's pipeline, against an in-memory directory that answers out of order
and plays faults (see :mod:`tests.unit.fake_libldap`): a refused write among many loses none of
the others, healing on 68/32/20/16 within one batch, a busy server, a lost or silent
connection, the retry budget, abort, a refused certificate, the bound on requests in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ldap import libldap
from connectors.ldap.batch import RetryPolicy, chain_key
from connectors.ldap.connection import LdapParams, TransientLdapError
from connectors.ldap.errors import (
    DirectoryTlsError,
    DirectoryUnavailableError,
    DirectoryWriteError,
    WriterStoppedError,
)
from connectors.ldap.healing import Action
from connectors.ldap.pipelined import PipelinedWriter
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry
from tests.unit.fake_libldap import REFUSED_MARK, FakeDirectory

PEOPLE = "ou=people,dc=x"
PARAMS = LdapParams("ldap://127.0.0.1:1", "cn=admin,dc=x", "secret", receive_timeout=0.5)
QUICK = RetryPolicy(initial_delay=0.01, max_delay=0.05, total=5.0)


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDirectory]:
    fake = FakeDirectory()
    monkeypatch.setattr(libldap, "open_connection", fake.connect)
    yield fake


def person(uid: str, sn: str = "Family", **more: tuple[str, ...]) -> Attributes:
    return {"objectClass": ("top", "person"), "uid": (uid,), "sn": (sn,), **more}


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


async def apply(ops: list[DirectoryOp], **kwargs: Any) -> list[Any]:
    async with PipelinedWriter(PARAMS, retry=kwargs.pop("retry", QUICK), **kwargs) as writer:
        return await writer.apply(ops)


async def test_replies_out_of_order_reach_their_ops_and_the_window_holds(
    directory: FakeDirectory,
) -> None:
    ops: list[DirectoryOp] = [AddEntry(dn(f"a{i}"), person(f"a{i}")) for i in range(100)]
    ops += [ModifyEntry(dn(f"a{i}"), {"sn": (f"v{i}",)}) for i in range(100)]
    results = await apply(ops, max_in_flight=8)
    assert [r.op for r in results] == ops
    assert {r.action for r in results[:100]} == {Action.ADDED}
    assert {r.action for r in results[100:]} == {Action.MODIFIED}
    assert all(directory.values(dn(f"a{i}"), "sn") == [f"v{i}"] for i in range(100))
    assert directory.peak_in_flight == 8
    assert directory.opened == 1


async def test_one_refused_write_among_many_loses_none_of_the_others(
    directory: FakeDirectory,
) -> None:
    ops: list[DirectoryOp] = [AddEntry(dn(f"b{i}"), person(f"b{i}")) for i in range(60)]
    ops[30] = AddEntry(dn("bad"), person("bad", sn=REFUSED_MARK))
    ops.append(ModifyEntry(dn("bad"), {"cn": ("never",)}))  # the same DN after it: skipped
    with pytest.raises(DirectoryWriteError) as caught:
        await apply(ops, max_in_flight=4)
    error = caught.value
    assert (error.dn, error.result_code, error.result_name) == (
        dn("bad"),
        65,
        "objectClassViolation",
    )
    assert error.errors == [error]
    assert error.results[30] is None and error.results[60] is None
    done = [r for i, r in enumerate(error.results) if i not in (30, 60)]
    assert all(r is not None and r.action is Action.ADDED for r in done)
    assert len(directory.entries) == 59


async def test_healing_in_one_pipelined_batch(directory: FakeDirectory) -> None:
    for i in range(10):
        directory.put(dn(f"e{i}"), objectClass=["top", "person"], uid=[f"e{i}"], sn=["Old"])
        directory.put(dn(f"v{i}"), objectClass=["top"], description=["a", "b"])  # b is there
        directory.put(dn(f"r{i}"), objectClass=["top"], description=["a"])  # c is gone
    believed = {"description": ("a", "c")}  # what the core last wrote
    ops: list[DirectoryOp] = []
    for i in range(10):
        ops.append(AddEntry(dn(f"e{i}"), person(f"e{i}", sn="New")))  # 68: differing replaced
        ops.append(ModifyEntry(dn(f"v{i}"), {"description": ("a", "b")}, previous=believed))  # 20
        ops.append(ModifyEntry(dn(f"r{i}"), {"description": ("a", "d")}, previous=believed))  # 16
        ops.append(ModifyEntry(dn(f"g{i}"), {"sn": ("G",)}, desired=person(f"g{i}", sn="G")))
        ops.append(DeleteEntry(dn(f"gone{i}")))  # 32 on delete: nothing to do
    results = await apply(ops, max_in_flight=6)
    actions = [r.action for r in results]
    assert actions == [Action.HEALED, Action.HEALED, Action.HEALED, Action.HEALED, Action.NOOP] * 10
    assert {r.detail for r in results[1:3]} == {"values replaced whole"}
    for i in range(10):
        assert directory.values(dn(f"e{i}"), "sn") == ["New"]
        assert sorted(directory.values(dn(f"v{i}"), "description") or []) == ["a", "b"]
        assert sorted(directory.values(dn(f"r{i}"), "description") or []) == ["a", "d"]
        assert directory.values(dn(f"g{i}"), "sn") == ["G"]


async def test_a_busy_server_retries_that_op_alone(directory: FakeDirectory) -> None:
    directory.busy[dn("c3").lower()] = 2
    ops: list[DirectoryOp] = [AddEntry(dn(f"c{i}"), person(f"c{i}")) for i in range(10)]
    results = await apply(ops, max_in_flight=4)
    assert [r.retries for r in results] == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert {r.action for r in results} == {Action.ADDED}
    assert directory.opened == 1  # the connection was fine


async def test_a_lost_connection_sends_the_ops_under_way_again(
    directory: FakeDirectory,
) -> None:
    directory.drop_after = 25  # applied, but their replies lost with the connection
    ops: list[DirectoryOp] = [AddEntry(dn(f"d{i}"), person(f"d{i}")) for i in range(80)]
    ops += [DeleteEntry(dn(f"d{i}")) for i in range(40)]
    results = await apply(ops, max_in_flight=8)
    assert directory.opened == 2
    assert [r.action for r in results] == [Action.ADDED] * 80 + [Action.DELETED] * 40
    retried = [r for r in results if r.retries]
    assert retried and all(r.retries == 1 for r in retried)
    # applied before the loss, found complete when sent again
    assert any(r.detail == "entry found complete after a retry" for r in retried)
    assert sorted(directory.entries) == sorted(dn(f"d{i}").lower() for i in range(40, 80))


async def test_a_silent_connection_is_given_up_after_the_receive_timeout(
    directory: FakeDirectory,
) -> None:
    directory.silent = True
    ops: list[DirectoryOp] = [AddEntry(dn(f"s{i}"), person(f"s{i}")) for i in range(5)]
    results = await apply(ops, max_in_flight=8)
    assert directory.opened == 2
    assert {r.action for r in results} == {Action.ADDED}  # applied, then found complete
    assert len(directory.entries) == 5


async def test_an_unreachable_directory_ends_the_call_after_the_budget(
    directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise TransientLdapError("Can't contact LDAP server", maybe_applied=False)

    monkeypatch.setattr(libldap, "open_connection", refuse)
    ops: list[DirectoryOp] = [AddEntry(dn(f"u{i}"), person(f"u{i}")) for i in range(20)]
    started = time.monotonic()
    budget = RetryPolicy(initial_delay=0.02, max_delay=0.1, total=0.5)
    with pytest.raises(DirectoryUnavailableError, match="abandoned") as caught:
        await apply(ops, max_in_flight=8, retry=budget)
    assert time.monotonic() - started < 3
    assert all(result is None for result in caught.value.results)


async def test_abort_stops_the_retries_at_once(
    directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise TransientLdapError("Can't contact LDAP server", maybe_applied=False)

    monkeypatch.setattr(libldap, "open_connection", refuse)
    patient = RetryPolicy(initial_delay=0.05, max_delay=0.2, total=600.0)
    async with PipelinedWriter(PARAMS, retry=patient) as writer:
        task = asyncio.create_task(writer.apply([AddEntry(dn("w"), person("w"))]))
        await asyncio.sleep(0.3)
        assert not task.done()
        started = time.monotonic()
        writer.abort()
        with pytest.raises(WriterStoppedError):
            await task
        assert time.monotonic() - started < 1
        with pytest.raises(WriterStoppedError):
            await writer.apply([AddEntry(dn("w"), person("w"))])


async def test_a_refused_certificate_is_not_retried(
    directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        calls.append(1)
        raise DirectoryTlsError("TLS with the LDAP server failed: certificate verify failed")

    monkeypatch.setattr(libldap, "open_connection", refuse)
    ops: list[DirectoryOp] = [AddEntry(dn(f"t{i}"), person(f"t{i}")) for i in range(3)]
    with pytest.raises(DirectoryTlsError):
        await apply(ops, retry=RetryPolicy(total=30.0))
    assert calls == [1]


async def test_the_connection_serves_the_next_call(directory: FakeDirectory) -> None:
    async with PipelinedWriter(PARAMS, retry=QUICK) as writer:
        for i in range(3):
            await writer.apply([AddEntry(dn(f"n{i}"), person(f"n{i}"))])
    assert directory.opened == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("uid=A,ou=People,dc=x", "uid=a,ou=people,dc=x"),
        ("uid=a, ou=people ,dc=x", "uid=a,ou=people,dc=x"),
        ("cn=Jean Dupont,dc=x", "cn=jean dupont, dc=x"),
        (" uid=a,dc=x", "UID=a,dc=x"),
    ],
)
def test_every_spelling_of_a_dn_is_one_chain(one: str, other: str) -> None:
    assert chain_key(one) == chain_key(other)


def test_distinct_dns_are_distinct_chains() -> None:
    assert chain_key("cn=a\\,b,dc=x") != chain_key("cn=a,b,dc=x")
    assert chain_key("uid=a,dc=x") != chain_key("uid=b,dc=x")


async def test_a_long_chain_on_one_dn_runs_in_order(directory: FakeDirectory) -> None:
    """One DN's ops one after the other, however many (ops with nothing to send included)."""
    ops: list[DirectoryOp] = [AddEntry(dn("l"), person("l"))]
    for i in range(3000):
        ops.append(ModifyEntry(dn("l"), {}))  # nothing to send: done at once
        ops.append(
            ModifyEntry(dn("l"), {"sn": (f"v{i}",)}) if i % 100 == 0 else DeleteEntry(dn("x"))
        )
    results = await apply(ops, max_in_flight=4)
    assert [r.op for r in results] == ops
    assert directory.values(dn("l"), "sn") == ["v2900"]

"""The directory writers against slapd: ops, healing, ordering, concurrency, retries; LDIF
export. Every behaviour holds for the python-ldap writer (pipelined) and the ldap3 writer (in
threads or in processes of its own)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ldap3 import Connection

from connectors.ldap import pipelined
from connectors.ldap.batch import BatchWriter
from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import (
    clear_subtree,
    count_entries,
    export_ldif,
    read_entry,
    search_entries,
)
from connectors.ldap.errors import DirectoryUnavailableError, DirectoryWriteError
from connectors.ldap.pipelined import PipelinedWriter
from connectors.ldap.writer import Action, DirectoryWriter, OpResult, RetryPolicy
from connectors.services.process import pid_alive
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

PERSON = ("top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson")


def person(uid: str, *, name: str = "Family", **extra: tuple[str, ...]) -> Attributes:
    attributes: dict[str, tuple[str, ...]] = {
        "objectClass": (*PERSON, "entsyncOperational"),
        "uid": (uid,),
        "cn": (f"Given {name}",),
        "sn": (name,),
        "ENTPersonLogin": (f"login.{uid}",),
        "ENTPersonJointure": (f"ONDE${uid}",),
        "entsyncId": (uid,),
        "entsyncAccountState": ("active",),
    }
    attributes.update(extra)
    return attributes


@pytest.fixture
def people(local_services: LocalServices, clean_directory: LdapParams) -> str:
    return f"ou=people,{local_services.base_dn}"


WRITERS = ["python-ldap", "python-ldap-process", "threads", "processes"]


def make_writer(kind: str, params: LdapParams, **options: Any) -> BatchWriter:
    """A python-ldap writer (here, or in a process of its own), or an ldap3 one (in threads,
    or in two processes)."""
    if kind.startswith("python-ldap"):
        return PipelinedWriter(params, processes=1 if kind.endswith("process") else 0, **options)
    return DirectoryWriter(params, processes=2 if kind == "processes" else 0, **options)


@pytest.fixture(params=WRITERS)
async def writer(
    clean_directory: LdapParams, request: pytest.FixtureRequest
) -> AsyncIterator[BatchWriter]:
    async with make_writer(
        request.param, clean_directory, max_in_flight=8, retry=RetryPolicy(total=20.0)
    ) as instance:
        instance.start()
        yield instance


def values(params: LdapParams, dn: str, name: str) -> tuple[str, ...] | None:
    entry = read_entry(params, dn)
    return None if entry is None else entry.get(name)


async def test_add_modify_delete(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    dn = f"uid=a,{people}"
    [added] = await writer.apply([AddEntry(dn, person("a", ENTPersonProfils=("National_1",)))])
    assert added.action is Action.ADDED and added.dn == dn
    assert "ENTPersonLogin" in added.attributes
    assert values(clean_directory, dn, "sn") == ("Family",)

    change = ModifyEntry(dn, {"sn": ("Other",), "ENTPersonProfils": ()})
    [modified] = await writer.apply([change])
    assert modified.action is Action.MODIFIED
    assert modified.attributes == ("ENTPersonProfils", "sn")
    assert values(clean_directory, dn, "sn") == ("Other",)
    assert values(clean_directory, dn, "ENTPersonProfils") == ()

    [nothing] = await writer.apply([ModifyEntry(dn, {})])
    assert nothing.action is Action.NOOP

    [deleted] = await writer.apply([DeleteEntry(dn)])
    assert deleted.action is Action.DELETED
    assert read_entry(clean_directory, dn) is None


async def test_add_on_existing_entry_heals(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    dn = f"uid=b,{people}"
    await writer.apply([AddEntry(dn, person("b", ENTPersonProfils=("National_1",)))])
    desired = dict(person("b", name="Renamed"))
    desired["objectClass"] = (*PERSON, "entsyncOperational", "ENTAuxEnseignant")
    desired["ENTPersonProfils"] = ()  # absent in the desired state: removed
    [healed] = await writer.apply([AddEntry(dn, desired)])
    assert healed.action is Action.HEALED
    assert healed.attributes == ("ENTPersonProfils", "cn", "objectClass", "sn")
    entry = read_entry(clean_directory, dn)
    assert entry is not None
    assert entry.get("sn") == ("Renamed",)
    assert "ENTAuxEnseignant" in entry.get("objectClass")
    assert entry.get("ENTPersonProfils") == ()

    [again] = await writer.apply([AddEntry(dn, desired)])
    assert again.action is Action.NOOP and again.attributes == ()


async def test_modify_on_missing_entry(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    dn = f"uid=c,{people}"
    desired = person("c", name="Desired")
    [healed] = await writer.apply([ModifyEntry(dn, {"sn": ("Desired",)}, desired=desired)])
    assert healed.action is Action.HEALED
    assert values(clean_directory, dn, "sn") == ("Desired",)

    missing = f"uid=nobody,{people}"
    with pytest.raises(DirectoryWriteError) as caught:
        await writer.apply([ModifyEntry(missing, {"sn": ("X",)})])
    assert caught.value.dn == missing
    assert caught.value.result_name == "noSuchObject"
    assert caught.value.results == [None]


async def test_delete_missing_entry_is_noop(writer: BatchWriter, people: str) -> None:
    [result] = await writer.apply([DeleteEntry(f"uid=nobody,{people}")])
    assert result.action is Action.NOOP


async def test_permanent_error_names_dn_and_result_not_values(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    first, twin = f"uid=d1,{people}", f"uid=d2,{people}"
    await writer.apply([AddEntry(first, person("d1", ENTPersonLogin=("secret.login",)))])
    broken = f"uid=broken,{people}"
    ops: list[DirectoryOp] = [
        AddEntry(twin, person("d2", ENTPersonLogin=("Secret.Login",))),
        AddEntry(broken, {k: v for k, v in person("x").items() if k != "ENTPersonLogin"}),
        ModifyEntry(broken, {"sn": ("Never",)}),  # same DN after a failure: skipped
        AddEntry(f"uid=fine,{people}", person("fine")),
    ]
    with pytest.raises(DirectoryWriteError) as caught:
        await writer.apply(ops)
    error = caught.value
    assert error.dn == twin
    assert error.result_name == "constraintViolation"
    assert twin in str(error)
    assert "secret" not in str(error).lower()
    assert [e.dn for e in error.errors if isinstance(e, DirectoryWriteError)] == [twin, broken]
    assert error.errors[1].result_name == "objectClassViolation"  # type: ignore[attr-defined]
    done = error.results
    assert done[0] is None and done[1] is None and done[2] is None
    assert done[3] is not None and done[3].action is Action.ADDED
    assert read_entry(clean_directory, f"uid=fine,{people}") is not None


async def test_ops_on_one_dn_keep_their_order(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    dns = [f"uid=o{i},{people}" for i in range(40)]
    ops: list[DirectoryOp] = []
    # Round-robin over DNs, so each DN's ops are spread through the batch.
    for step in range(5):
        for i, dn in enumerate(dns):
            uid = f"o{i}"
            lifecycle: list[DirectoryOp] = [
                AddEntry(dn, person(uid, name="v1")),
                ModifyEntry(dn, {"sn": ("v2",)}),
                ModifyEntry(dn, {"sn": ("v3",)}),
                DeleteEntry(dn),
                AddEntry(dn, person(uid, name="v5")),
            ]
            ops.append(lifecycle[step])
    results = await writer.apply(ops)
    assert [r.op for r in results] == ops
    by_dn: dict[str, list[Action]] = {}
    for result in results:
        by_dn.setdefault(result.dn, []).append(result.action)
    expected = [Action.ADDED, Action.MODIFIED, Action.MODIFIED, Action.DELETED, Action.ADDED]
    assert all(actions == expected for actions in by_dn.values())
    found = search_entries(clean_directory, people, "(uid=o*)", ["sn"])
    assert len(found) == len(dns)
    assert {entry.get("sn") for entry in found} == {("v5",)}


class CountingWriter(DirectoryWriter):
    """Measures how many ops run at once (each op made slow enough to overlap)."""

    def __init__(self, params: LdapParams, *, max_in_flight: int) -> None:
        super().__init__(params, max_in_flight=max_in_flight)
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _apply_once(self, conn: Connection, op: DirectoryOp, uncertain: bool) -> OpResult:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.01)
            return super()._apply_once(conn, op, uncertain)
        finally:
            with self.lock:
                self.running -= 1


async def test_concurrency_is_bounded(clean_directory: LdapParams, people: str) -> None:
    async with CountingWriter(clean_directory, max_in_flight=4) as counting:
        ops = [AddEntry(f"uid=n{i},{people}", person(f"n{i}")) for i in range(60)]
        results = await counting.apply(ops)
    assert all(r.action is Action.ADDED for r in results)
    assert counting.peak == 4
    assert count_entries(clean_directory, people, "(uid=n*)") == 60


class PausingWriter(DirectoryWriter):
    """Once ``pause_after`` ops are done, every thread waits for ``resume`` after its op."""

    def __init__(
        self, params: LdapParams, *, pause_after: int, max_in_flight: int, retry: RetryPolicy
    ) -> None:
        super().__init__(params, max_in_flight=max_in_flight, retry=retry)
        self.pause_after = pause_after
        self.done = 0
        self.lock = threading.Lock()
        self.reached = threading.Event()
        self.resume = threading.Event()

    def _apply_once(self, conn: Connection, op: DirectoryOp, uncertain: bool) -> OpResult:
        result = super()._apply_once(conn, op, uncertain)
        with self.lock:
            self.done += 1
            if self.done >= self.pause_after:
                self.reached.set()
        if self.reached.is_set():
            self.resume.wait(30)
        return result


def kill(pid: int) -> None:
    """Crash slapd (SIGKILL by pid, as a power cut of the process would) and wait for it."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid)


async def test_retries_until_slapd_is_back(
    local_services: LocalServices, clean_directory: LdapParams, people: str
) -> None:
    ops = [AddEntry(f"uid=r{i},{people}", person(f"r{i}")) for i in range(200)]
    async with PausingWriter(
        clean_directory, pause_after=50, max_in_flight=4, retry=RetryPolicy(total=30.0)
    ) as pausing:
        task = asyncio.create_task(pausing.apply(ops))
        assert await asyncio.to_thread(pausing.reached.wait, 20)
        old_pid = local_services.pid("slapd")
        kill(old_pid)
        pausing.resume.set()
        await asyncio.sleep(0.8)  # the writer now retries against a dead server
        assert not task.done()
        started = await asyncio.to_thread(local_services.up)
        assert started == ("slapd",)
        assert local_services.pid("slapd") != old_pid
        results = await asyncio.wait_for(task, 60)
    assert len(results) == len(ops)
    assert all(r.action is Action.ADDED for r in results)
    assert any(r.retries > 0 for r in results)
    assert count_entries(clean_directory, people, "(uid=r*)") == len(ops)


async def test_the_pipelined_writer_retries_until_slapd_is_back(
    local_services: LocalServices,
    clean_directory: LdapParams,
    people: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """slapd killed with requests in flight: they are sent again on a new connection once it
    is back; what slapd had applied is found complete."""
    reached, resume = threading.Event(), threading.Event()
    finish = pipelined._Run._finish
    done = [0]

    def pausing(run: pipelined._Run, o: Any, outcome: Any) -> None:
        finish(run, o, outcome)
        done[0] += 1
        if done[0] == 50:  # requests in flight meanwhile; the writer's thread waits here
            reached.set()
            resume.wait(30)

    monkeypatch.setattr(pipelined._Run, "_finish", pausing)
    ops = [AddEntry(f"uid=q{i},{people}", person(f"q{i}")) for i in range(300)]
    async with PipelinedWriter(
        clean_directory, max_in_flight=16, retry=RetryPolicy(total=30.0)
    ) as writer:
        task = asyncio.create_task(writer.apply(ops))
        assert await asyncio.to_thread(reached.wait, 20)
        old_pid = local_services.pid("slapd")
        kill(old_pid)
        resume.set()
        await asyncio.sleep(0.8)  # the writer now retries against a dead server
        assert not task.done()
        assert await asyncio.to_thread(local_services.up) == ("slapd",)
        results = await asyncio.wait_for(task, 60)
    assert [r.action for r in results] == [Action.ADDED] * len(ops)
    assert any(r.retries > 0 for r in results)
    assert count_entries(clean_directory, people, "(uid=q*)") == len(ops)


async def test_one_refused_write_among_many_loses_none_of_the_others(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    ops: list[DirectoryOp] = [AddEntry(f"uid=k{i},{people}", person(f"k{i}")) for i in range(200)]
    broken = f"uid=k77,{people}"
    ops[77] = AddEntry(broken, {k: v for k, v in person("k77").items() if k != "sn"})
    ops.append(ModifyEntry(broken, {"cn": ("never",)}))  # the same DN after it: skipped
    ops += [ModifyEntry(f"uid=k{i},{people}", {"sn": (f"s{i}",)}) for i in range(100, 120)]
    with pytest.raises(DirectoryWriteError) as caught:
        await writer.apply(ops)
    error = caught.value
    assert error.dn == broken and error.result_name == "objectClassViolation"
    assert error.errors == [error]
    assert error.results[77] is None and error.results[200] is None
    assert all(
        result is not None and result.action in (Action.ADDED, Action.MODIFIED)
        for i, result in enumerate(error.results)
        if i not in (77, 200)
    )
    assert count_entries(clean_directory, people, "(uid=k*)") == 199
    assert values(clean_directory, f"uid=k110,{people}", "sn") == ("s110",)


async def test_a_batch_heals_every_kind_of_difference(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    """One batch, many entries not as the core believes: an add on an existing entry (68), a
    value to add there already (20), a value to remove gone already (16), a modify of a
    missing entry (32), a delete of a missing one."""
    believed = ("National_1", "National_3")
    setup: list[DirectoryOp] = []
    for i in range(30):
        setup.append(AddEntry(f"uid=x{i},{people}", person(f"x{i}", name="Old")))
        profils = ("National_1", "National_4")  # 4 added by someone else, 3 removed
        setup.append(AddEntry(f"uid=y{i},{people}", person(f"y{i}", ENTPersonProfils=profils)))
        setup.append(
            AddEntry(f"uid=z{i},{people}", person(f"z{i}", ENTPersonProfils=("National_1",)))
        )
    await writer.apply(setup)
    ops: list[DirectoryOp] = []
    for i in range(30):
        ops.append(AddEntry(f"uid=x{i},{people}", person(f"x{i}", name="New")))
        ops.append(
            ModifyEntry(
                f"uid=y{i},{people}",
                {"ENTPersonProfils": ("National_1", "National_4")},
                previous={"ENTPersonProfils": believed},
            )
        )
        ops.append(
            ModifyEntry(
                f"uid=z{i},{people}",
                {"ENTPersonProfils": ("National_1", "National_2")},
                previous={"ENTPersonProfils": believed},
            )
        )
        ops.append(
            ModifyEntry(f"uid=w{i},{people}", {"sn": ("W",)}, desired=person(f"w{i}", name="W"))
        )
        ops.append(DeleteEntry(f"uid=v{i},{people}"))
    results = await writer.apply(ops)
    expected = [Action.HEALED] * 4 + [Action.NOOP]
    assert [r.action for r in results] == expected * 30
    for i in range(30):
        assert values(clean_directory, f"uid=x{i},{people}", "sn") == ("New",)
        y = values(clean_directory, f"uid=y{i},{people}", "ENTPersonProfils")
        assert set(y or ()) == {"National_1", "National_4"}
        z = values(clean_directory, f"uid=z{i},{people}", "ENTPersonProfils")
        assert set(z or ()) == {"National_1", "National_2"}
        assert values(clean_directory, f"uid=w{i},{people}", "sn") == ("W",)


@pytest.mark.parametrize("kind", ["python-ldap", "threads"])
async def test_gives_up_after_the_retry_budget(
    local_services: LocalServices, clean_directory: LdapParams, people: str, kind: str
) -> None:
    local_services.stop("slapd")
    try:
        async with make_writer(
            kind, clean_directory, retry=RetryPolicy(initial_delay=0.05, total=0.8)
        ) as impatient:
            started = time.monotonic()
            with pytest.raises(DirectoryUnavailableError, match="abandoned"):
                await impatient.apply([AddEntry(f"uid=late,{people}", person("late"))])
            assert time.monotonic() - started < 5
    finally:
        assert local_services.up() == ("slapd",)
    assert read_entry(clean_directory, f"uid=late,{people}") is None


async def test_ldif_export_is_deterministic(
    local_services: LocalServices, clean_directory: LdapParams, people: str
) -> None:
    base = local_services.base_dn
    specs = {
        f"uid=e{i},{people}": person(
            f"e{i}",
            name="Élodie" if i == 1 else f"N{i}",
            ENTPersonProfils=("National_2", "National_1"),
        )
        for i in range(6)
    }

    async def load(order: list[str], reverse_values: bool) -> str:
        ops: list[DirectoryOp] = []
        for dn in order:
            attributes = {
                name: tuple(reversed(vals)) if reverse_values else vals
                for name, vals in reversed(list(specs[dn].items()))
            }
            ops.append(AddEntry(dn, attributes))
        async with DirectoryWriter(clean_directory, max_in_flight=3) as fresh:
            await fresh.apply(ops)
        return export_ldif(clean_directory, base)

    first = await load(list(specs), reverse_values=False)
    clear_subtree(clean_directory, people)
    second = await load(list(reversed(specs)), reverse_values=True)
    assert first == second

    lines = first.splitlines()
    assert lines[0] == "version: 1"
    dns = [line[4:] for line in lines if line.startswith("dn: ")]
    assert dns[0] == base  # parents before children
    assert dns.index(f"ou=people,{base}") < dns.index(f"uid=e0,{people}")
    assert "entryUUID" not in first and "createTimestamp" not in first
    assert "sn:: " in first  # non-ASCII value, base64 per RFC 2849
    profils = [line for line in lines if line.startswith("ENTPersonProfils")]
    assert profils[:2] == ["ENTPersonProfils: National_1", "ENTPersonProfils: National_2"]

    with_operational = export_ldif(clean_directory, base, operational=True)
    assert "entryUUID: " in with_operational and "modifiersName: " in with_operational


@pytest.mark.parametrize("kind", ["python-ldap-process", "processes"])
async def test_writer_processes_import_the_writer_not_the_program(
    clean_directory: LdapParams, kind: str
) -> None:
    """A spawned process would import the parent's main module (here pytest; in production the
    whole CLI): the writer's processes import what they run and nothing else."""
    from connectors.ldap.writer_processes import main_imported

    async with make_writer(kind, clean_directory, max_in_flight=4) as instance:
        instance.start()
        imported = [instance._executor.submit(main_imported).result() for _ in range(4)]
        assert imported == [False] * 4


async def test_multi_valued_attributes_change_by_their_values(
    writer: BatchWriter, clean_directory: LdapParams, people: str
) -> None:
    """A profile list gaining a value: only that value is sent; a value added twice or removed
    twice (a retry, another writer) heals by giving the attribute its whole values."""
    dn = f"uid=m,{people}"
    await writer.apply([AddEntry(dn, person("m", ENTPersonProfils=("National_1", "National_3")))])
    old = ("National_1", "National_3")
    new = ("National_1", "National_3", "National_4")
    [modified] = await writer.apply(
        [ModifyEntry(dn, {"ENTPersonProfils": new}, previous={"ENTPersonProfils": old})]
    )
    assert modified.action is Action.MODIFIED
    assert set(values(clean_directory, dn, "ENTPersonProfils") or ()) == set(new)
    # The same change again: National_4 is there already.
    [again] = await writer.apply(
        [ModifyEntry(dn, {"ENTPersonProfils": new}, previous={"ENTPersonProfils": old})]
    )
    assert again.action is Action.HEALED
    assert set(values(clean_directory, dn, "ENTPersonProfils") or ()) == set(new)
    # A removal of a value someone else removed already.
    fewer = ("National_1",)
    stale = ("National_1", "National_2")
    [removed] = await writer.apply(
        [ModifyEntry(dn, {"ENTPersonProfils": fewer}, previous={"ENTPersonProfils": stale})]
    )
    assert removed.action is Action.HEALED
    assert values(clean_directory, dn, "ENTPersonProfils") == fewer

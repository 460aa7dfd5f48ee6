"""Several workers in one consumer group, on a broker of each test's own and the session's slapd.

Each worker is a real ``entsync worker --until-idle`` process with a state directory of its own
(connections and the audit digest key set explicitly, as in a deployment). The group shares the
partitions, a killed member's partitions move to the others, and every worker stops once the
whole group's input is done; the directory is the one the pure core predicts for the same
events, with one entry per person and no login given twice, namesakes spread over partitions
held by different workers included. Settle times are printed (``-s``), never asserted.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.aaf import events_many, scan_many
from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import LdapParams, count_entries
from connectors.services import broker
from connectors.services.process import free_port, stop_pid
from connectors.stream.group import describe_group, group_position, stream_partitions
from connectors.stream.partition_scans import partition_of
from schemas.feed import ClassAssignment, FeedEvent, Guardian, Pupil, School
from schemas.topics import ENTITIES, FEED
from sync import ids
from sync.reconcile import Context
from sync.simulator import run_to_quiescence
from tests.integration.test_pipeline_e2e import (
    AUDIT_DIGEST_KEY,
    ENTSYNC,
    Pipeline,
    _feed_event,
    _publish,
    assert_audit_trail_covers,
    assert_same_directory,
    audits_of,
    directory_of,
    with_causes,
)

pytestmark = pytest.mark.integration

GROUP = "entsync"  # the default app id, the workers' consumer group
NAMESPACE = "entsync"
FIRST, LAST, PARENT = "Zéphyrin", "Quatrebarbes", "Ombeline"
PUPIL_BASE, GUARDIAN_BASE = "zephyrin.quatrebarbes", "ombeline.quatrebarbes"


@dataclass
class Member:
    """One ``entsync worker --until-idle`` of the group, in a session of its own."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and its writer processes
        self.proc.wait(timeout=30)

    def finish(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where it hangs: faulthandler (PYTHONFAULTHANDLER) prints every thread's stack.
            self.proc.send_signal(signal.SIGABRT)
            time.sleep(2)
            self.kill()
            pytest.fail(f"worker {self.name} still running after {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.text()[-4000:]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[str]:
    layout = broker.BrokerLayout(tmp_path / "broker")
    layout.state_dir.mkdir()
    port = free_port()
    pid = broker.start(broker.find_broker(), layout, port)
    try:
        broker.wait_ready(port=port, pid=pid, layout=layout, timeout=20)
        yield broker.bootstrap(port)
    finally:
        stop_pid(pid, marker=broker.marker(port))


@pytest.fixture
def pipeline(
    own_broker: str, clean_directory: LdapParams, local_services: Any, tmp_path: Path
) -> Pipeline:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": own_broker,
        "ENTSYNC_LDAP_URL": clean_directory.url,
        "ENTSYNC_LDAP_BIND_DN": clean_directory.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": clean_directory.password,
        "ENTSYNC_LDAP_BASE_DN": local_services.base_dn,
        "ENTSYNC_AUDIT_DIGEST_KEY": AUDIT_DIGEST_KEY,
        "ENTSYNC_LOG_FORMAT": "json",
        "PYTHONFAULTHANDLER": "1",
        # GROUP_LOG_LEVEL=DEBUG: faust's own rebalance and recovery messages in the logs
        "ENTSYNC_LOG_LEVEL": os.environ.get("GROUP_LOG_LEVEL", "INFO"),
        # Two workers and their writers share this machine's cores with the services.
        "ENTSYNC_LDAP_WRITER_PROCESSES": "1",
    }
    return Pipeline(
        env=env, bootstrap=own_broker, ldap=clean_directory, base_dn=local_services.base_dn
    )


@pytest.fixture
def members(pipeline: Pipeline, tmp_path: Path) -> Iterator[Callable[..., Member]]:
    started: list[Member] = []

    def start(name: str, **extra: str) -> Member:
        env = {**pipeline.env, "ENTSYNC_STATE_DIR": str(tmp_path / f"state-{name}"), **extra}
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [ENTSYNC, "worker", "--until-idle", "--timeout", "240"],
                env=env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        started.append(Member(name, proc, out, err))
        return started[-1]

    yield start
    for member in started:  # every process of every worker, by pid
        member.kill()


def _spread(partitions: int, per_partition: int, entity_id: Callable[[int], str]) -> list[int]:
    """Numbers whose entity ids cover every partition ``per_partition`` times."""
    chosen: list[int] = []
    count = dict.fromkeys(range(partitions), 0)
    n = 0
    while min(count.values()) < per_partition:
        p = partition_of(entity_id(n).encode(), partitions)
        if count[p] < per_partition:
            count[p] += 1
            chosen.append(n)
        n += 1
    return chosen


def namesakes(partitions: int) -> list[School | Pupil | Guardian]:
    """A school whose pupils all share one name, and whose guardians share another, spread so
    that every partition holds some of each: their login requests come from every worker."""
    school = School(jointure="0319990Z", uai="0319990Z", name="École Homonymes", siren="213105554")
    cp = ClassAssignment(school_jointure=school.jointure, code="CP", label="CP")

    def pupil(n: int, guardian: int = 0) -> Pupil:
        return Pupil(
            jointure=f"HP{n}",
            ine=f"{n:010d}K",
            last_name=LAST,
            first_name=FIRST,
            school_jointure=school.jointure,
            classes=(cp,),
            guardian_jointures=(f"HG{guardian}",),
        )

    numbers = _spread(partitions, 2, lambda n: ids.pupil_id(NAMESPACE, pupil(n)))
    parents = _spread(partitions, 2, lambda n: ids.guardian_id(NAMESPACE, f"HG{n}"))
    pupils = [pupil(n, g) for n, g in zip(numbers, parents, strict=True)]
    guardians = [
        Guardian(
            jointure=p.guardian_jointures[0],
            last_name=LAST,
            first_name=PARENT,
            pupil_jointures=(p.jointure,),
        )
        for p in pupils
    ]
    return [school, *pupils, *guardians]


def predicted(pipeline: Pipeline, feed: list[FeedEvent]) -> dict[str, Any]:
    return run_to_quiescence(
        with_causes(feed), ctx=Context(base_dn=pipeline.base_dn)
    ).world.directory


def logins(directory: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    return [v[0] for e in directory.values() for k, v in e.items() if k == "ENTPersonLogin"]


def assert_namesakes_numbered(found: list[str], base: str, count: int) -> None:
    """``count`` persons of one login base hold base, base2 ... base<count>: none twice."""
    mine = sorted(x for x in found if re.fullmatch(rf"{re.escape(base)}\d*", x))
    assert mine == sorted([base] + [f"{base}{n}" for n in range(2, count + 1)]), mine


def position(pipeline: Pipeline, partitions: int) -> Any:
    tps = stream_partitions((FEED.name, ENTITIES.name), partitions)
    return asyncio.run(group_position(pipeline.kafka, GROUP, tps))


def group_state(pipeline: Pipeline) -> tuple[str, int]:
    """The group's state on the broker and its number of members."""
    group = asyncio.run(describe_group(pipeline.kafka, GROUP))
    return group.state, len(group.members)


def wait_until(what: str, check: Callable[[], bool], alive: list[Member], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for member in alive:
            assert member.proc.poll() is None, f"{member.name} exited ({what}):\n{member.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_workers_one_killed_mid_load_converge_to_the_predicted_directory(
    pipeline: Pipeline, members: Callable[..., Member], tmp_path: Path
) -> None:
    generated = generate(
        tmp_path / "extract", GeneratorConfig(schools=4, pupils_per_school=40, seed=11)
    )
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    pipeline.ok("ingest", *files)
    extra = namesakes(4)
    _publish(pipeline, *extra)
    feed = list(events_many(scan_many(files).scans))
    feed += [_feed_event(i, r) for i, r in enumerate(extra)]

    first = members("first")
    second = members("second")
    people = f"ou=people,{pipeline.base_dn}"
    wait_until(
        "both workers in the group, and writes",
        lambda: (
            group_state(pipeline) == ("Stable", 2)
            and count_entries(pipeline.ldap, people, scope="one") >= 20
        ),
        [first, second],
        timeout=180,
    )
    shared_after = time.monotonic() - second.started
    first.kill()  # mid-load: no commit, no LeaveGroup; its partitions wait for its session
    killed = time.monotonic()
    partial = count_entries(pipeline.ldap, people, scope="one")
    behind = position(pipeline, 4).behind
    print(f"\nshared: group stable with 2 members {shared_after:.1f} s after the second start")
    print(f"killed 'first' with {partial} people written; partitions behind: {len(behind)}")

    # Settle: each partition left behind by the kill moves again (or the group is done).
    moved: dict[Any, float] = {}
    committed = position(pipeline, 4).committed
    while len(moved) < len(behind) and second.proc.poll() is None:
        now = position(pipeline, 4)
        for tp in behind:
            if tp not in moved and (now.committed[tp] > committed[tp] or not now.behind.get(tp)):
                moved[tp] = time.monotonic() - killed
        if time.monotonic() - killed > 180:
            break
        time.sleep(0.1)
    code = second.finish(timeout=240)
    done = time.monotonic() - killed
    assert code == 0, second.tail()
    session = os.environ["ENTSYNC_KAFKA_SESSION_TIMEOUT_S"]
    each = ", ".join(f"{tp.topic[8:]}/{tp.partition} {s:.1f}" for tp, s in sorted(moved.items()))
    print(
        f"after the kill (session timeout {session} s): every partition behind moved again "
        f"within {max(moved.values(), default=0):.1f} s ({each}); "
        f"the survivor idle and stopped {done:.1f} s after the kill"
    )

    actual = directory_of(pipeline)
    assert len(actual) > partial
    assert position(pipeline, 4).done
    assert_same_directory(actual, predicted(pipeline, feed))
    found = logins(actual)
    ines = [v[0] for e in actual.values() for k, v in e.items() if k == "ENTEleveINE"]
    assert len(found) == len(set(found)) and len(ines) == len(set(ines))
    pupils = sum(isinstance(r, Pupil) for r in extra)
    assert_namesakes_numbered(found, PUPIL_BASE, pupils)
    assert_namesakes_numbered(found, GUARDIAN_BASE, pupils)
    # No login was given twice: the directory never refused one (it would have been logged).
    for member in (first, second):
        assert "login.taken_in_directory" not in member.text()
    assert_audit_trail_covers(actual, audits_of(pipeline))


def test_a_worker_holding_no_partition_stops_with_the_group(
    pipeline: Pipeline, members: Callable[..., Member], tmp_path: Path
) -> None:
    """One partition, two workers: one of them holds nothing, and both stop once the group's
    input is done."""
    generated = generate(
        tmp_path / "extract", GeneratorConfig(schools=2, pupils_per_school=12, seed=7)
    )
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    one = {"ENTSYNC_TOPIC_PARTITIONS": "1"}
    pipeline.env.update(one)
    pipeline.ok("ingest", *files)
    workers = [members("a", **one), members("b", **one)]
    codes = [w.finish(timeout=240) for w in workers]
    assert codes == [0, 0], "\n".join(w.tail() for w in workers)
    counts = [_feed_events(w.text()) for w in workers]
    print(f"\nfeed events per worker: {counts}")
    feed = list(events_many(scan_many(files).scans))
    assert sum(counts) >= len(feed)
    assert position(pipeline, 1).done
    assert_same_directory(directory_of(pipeline), predicted(pipeline, feed))


def _counts(text: str) -> tuple[int, int, int]:
    """A worker's summary: feed events, entity inputs, directory changes."""
    found = re.search(r"worker: (\d+) feed events, (\d+) entity inputs, (\d+) directory", text)
    assert found, text[-3000:]
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def _feed_events(text: str) -> int:
    return _counts(text)[0]


def test_a_worker_started_mid_load_joins_and_both_stop_at_the_group_idle(
    pipeline: Pipeline, members: Callable[..., Member], tmp_path: Path
) -> None:
    """The second worker starts once the first has joined the group: by the time it is in, the
    first is writing, and gives up partitions with batches in progress (the group rebalances).
    Both stop once the group's input is done, and the result is the same. (The second's
    start-up, 5-9 s on this shared machine, must not outlast the load: 8 schools.)"""
    generated = generate(
        tmp_path / "extract", GeneratorConfig(schools=8, pupils_per_school=40, seed=13)
    )
    files = [str(p) for k, p in sorted(generated.files.items()) if k != "delta"]
    pipeline.ok("ingest", *files)
    people = f"ou=people,{pipeline.base_dn}"
    first = members("first")
    wait_until(
        "the first worker in the group",
        lambda: group_state(pipeline) == ("Stable", 1),
        [first],
        timeout=180,
    )
    second = members("second")
    joined, at_join = None, 0
    while joined is None and second.proc.poll() is None and first.proc.poll() is None:
        if group_state(pipeline) == ("Stable", 2):
            joined = time.monotonic() - second.started
            at_join = count_entries(pipeline.ldap, people, scope="one")
        time.sleep(0.1)
    codes = [first.finish(timeout=90), second.finish(timeout=90)]
    assert codes == [0, 0], "\n".join(m.tail() for m in (first, second))
    work = [_counts(m.text()) for m in (first, second)]
    when = "never (the first was done before)" if joined is None else f"{joined:.1f} s"
    print(
        f"\ngroup stable with both {when} after the second's start ({at_join} people written "
        f"then); feed events, entity inputs, changes per worker: {work}"
    )
    feed = list(events_many(scan_many(files).scans))
    actual = directory_of(pipeline)
    assert_same_directory(actual, predicted(pipeline, feed))
    found = logins(actual)
    assert len(found) == len(set(found))
    assert_audit_trail_covers(actual, audits_of(pipeline))

"""Lost stream state on real services, slapd kept.

The broker restarted (its topics are in memory) while the worker's state dir is kept: the worker
finds its tables' databases ahead of their (empty) changelogs and discards them, finds the
changelogs empty while the directory holds entries, rebuilds its state from the directory
(sync.rebuild) and goes on as if nothing had been lost: the same extract writes nothing and
leaves every entry as it was; a later extract with leavers and changed guardians ends in the
directory a run without the loss ends in.

The state dir lost (a new pod) while the broker is kept: the tables come back from their
changelogs, the same extract routes nothing, and the later extract ends in the same directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import LdapParams
from connectors.ldap.directory import clear_subtree, ensure_base_dit
from connectors.services import broker
from connectors.services.process import free_port, stop_pid
from tests.integration.test_pipeline_e2e import Pipeline, directory_of, worker_counts

pytestmark = pytest.mark.integration

REQUEST = re.compile(r"<addRequest>.*?</addRequest>\n", re.DOTALL)
MOBILE = re.compile(r'(<attr name="ENTPersRelEleveTelMobile"><value>)[^<]*(</value>)')
# Times of the run that wrote them, and logins (first come, first served among namesakes).
RUN_DEPENDENT = ("entsyncDisappearedAt", "ENTPersonLogin")


class Brokers:
    """Brokers of this test's own, each stopped by pid (one restart = one more broker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[tuple[int, int]] = []

    def start(self) -> str:
        layout = broker.BrokerLayout(self.root / f"broker-{len(self.running)}")
        layout.state_dir.mkdir(parents=True)
        port = free_port()
        pid = broker.start(broker.find_broker(), layout, port)
        self.running.append((pid, port))
        broker.wait_ready(port=port, pid=pid, layout=layout, timeout=20)
        return broker.bootstrap(port)

    def stop_last(self) -> None:
        pid, port = self.running[-1]
        stop_pid(pid, marker=broker.marker(port))

    def stop_all(self) -> None:
        for pid, port in self.running:
            stop_pid(pid, marker=broker.marker(port))


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[Brokers]:
    running = Brokers(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    config = GeneratorConfig(schools=2, pupils_per_school=12, seed=23, faults=False, delta=False)
    generated = generate(tmp_path_factory.mktemp("lost-state") / "extract", config)
    return {str(k): Path(v) for k, v in generated.files.items()}


def later_files(files: dict[str, Path], leavers: int, phones: int) -> list[Path]:
    """The next day's complete extract: ``leavers`` pupils gone, ``phones`` guardians with a new
    mobile number; schools and staff unchanged."""
    out = files["Eleve"].parent / "later"
    out.mkdir(exist_ok=True)
    dropped = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal dropped
        if dropped < leavers:
            dropped += 1
            return ""
        return match.group(0)

    changed = 0

    def rephone(match: re.Match[str]) -> str:
        nonlocal changed
        if changed >= phones:
            return match.group(0)
        changed += 1
        return f"{match.group(1)}+3370000{changed:04d}{match.group(2)}"

    written = []
    for category, path in files.items():
        if category == "delta":
            continue
        text = path.read_text(encoding="utf-8")
        if category == "Eleve":
            text = REQUEST.sub(drop, text)
        elif category == "PersRelEleve":
            text = MOBILE.sub(rephone, text)
        target = out / path.name.replace("_20250922_", "_20250923_")
        target.write_text(text, encoding="utf-8")
        written.append(target)
    assert dropped == leavers and changed == phones
    return written


def pipeline_on(bootstrap: str, state_dir: Path, ldap: LdapParams, base_dn: str) -> Pipeline:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(state_dir),
        "ENTSYNC_KAFKA_BOOTSTRAP": bootstrap,
        "ENTSYNC_LDAP_URL": ldap.url,
        "ENTSYNC_LDAP_BIND_DN": ldap.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": ldap.password,
        "ENTSYNC_LDAP_BASE_DN": base_dn,
        "ENTSYNC_AUDIT_DIGEST_KEY": "lost-state-audit-digest-key-0123456789",
        "ENTSYNC_LOG_FORMAT": "json",
    }
    return Pipeline(env=env, bootstrap=bootstrap, ldap=ldap, base_dn=base_dn)


def first_files(files: dict[str, Path]) -> list[str]:
    return [str(p) for k, p in sorted(files.items()) if k != "delta"]


def sync(p: Pipeline, paths: list[str], *ingest_options: str) -> tuple[int, str]:
    """ingest then worker --until-idle; (directory changes, worker stderr)."""
    p.ok("ingest", *ingest_options, *paths)
    done = p.cli("worker", "--until-idle", "--timeout", "240", timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return worker_counts(done.stdout)[1], done.stderr


def entity_inputs(stderr_stdout: str) -> int:
    match = re.search(r"worker: \d+ feed events, (\d+) entity inputs", stderr_stdout)
    assert match, stderr_stdout
    return int(match.group(1))


def without_run_dependent(directory: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, object]:
    """Values as sets (LDAP keeps no order: a member added later comes last), without what
    depends on the run."""
    return {
        dn: {k: frozenset(v) for k, v in entry.items() if k not in RUN_DEPENDENT}
        for dn, entry in directory.items()
    }


def sets(directory: dict[str, dict[str, tuple[str, ...]]]) -> dict[str, object]:
    return {dn: {k: frozenset(v) for k, v in e.items()} for dn, e in directory.items()}


def differences(got: dict[str, object], want: dict[str, object]) -> list[str]:
    """Where two directories differ: DNs (opaque ids) and attribute names, for a failure."""
    out = [f"only lost-state run: {dn}" for dn in sorted(got.keys() - want.keys())]
    out += [f"only reference run: {dn}" for dn in sorted(want.keys() - got.keys())]
    for dn in sorted(got.keys() & want.keys()):
        a, b = got[dn], want[dn]
        assert isinstance(a, dict) and isinstance(b, dict)
        names = sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))
        if names:
            extra = {n: sorted(set(a.get(n, ())) ^ set(b.get(n, ()))) for n in names}
            out.append(f"{dn}: {extra}")
    return out


def logins(directory: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    return sorted(v for e in directory.values() for v in e.get("ENTPersonLogin", ()))


def events_named(name: str, stderr: str) -> list[dict[str, object]]:
    events = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            events.append(event)
    return events


def rebuilt_events(stderr: str) -> list[dict[str, object]]:
    return events_named("worker.state_rebuilt", stderr)


def local_state(stderr: str) -> tuple[set[tuple[object, object]], set[tuple[object, object]]]:
    """(table, partition) of the databases kept from the state dir, and of those discarded."""
    kept = {
        (e["table"], p)
        for e in events_named("worker.local_state_kept", stderr)
        for p in e["partitions"]  # type: ignore[attr-defined]
    }
    discarded = {
        (e["table"], e["partition"]) for e in events_named("worker.local_state_discarded", stderr)
    }
    return kept, discarded


@pytest.fixture(scope="module")
def expected(
    local_services: object, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The directory both extracts give on one broker, nothing lost (the reference run)."""
    ldap: LdapParams = local_services.ldap_params  # type: ignore[attr-defined]
    base_dn = local_services.base_dn  # type: ignore[attr-defined]
    root = tmp_path_factory.mktemp("reference")
    running = Brokers(root)
    clear_subtree(ldap, base_dn)
    ensure_base_dit(ldap, base_dn)
    try:
        reference = pipeline_on(running.start(), root / "state", ldap, base_dn)
        sync(reference, first_files(files))
        sync(reference, later_files(files, leavers=3, phones=7))
        directory = directory_of(reference)
    finally:
        running.stop_all()
        clear_subtree(ldap, base_dn)
    assert sum(e.get("entsyncAccountState") == ("disappeared",) for e in directory.values()) == 3
    return directory


def test_a_lost_broker_is_rebuilt_from_the_directory(
    brokers: Brokers,
    clean_directory: LdapParams,
    local_services: object,
    files: dict[str, Path],
    expected: dict[str, dict[str, tuple[str, ...]]],
    tmp_path: Path,
) -> None:
    base_dn = local_services.base_dn  # type: ignore[attr-defined]
    later = [str(p) for p in later_files(files, leavers=3, phones=7)]

    # The broker lost (stopped, a new empty one) between the two extracts; the state dir kept.
    first = pipeline_on(brokers.start(), tmp_path / "lost", clean_directory, base_dn)
    sync(first, first_files(files))
    before = directory_of(first)
    brokers.stop_last()
    again = replace(first, env={**first.env, "ENTSYNC_KAFKA_BOOTSTRAP": (b := brokers.start())})
    again = replace(again, bootstrap=b)

    changes, stderr = sync(again, first_files(files))
    assert changes == 0
    assert sets(directory_of(again)) == sets(before)  # entry by entry, logins included
    (event,) = rebuilt_events(stderr)
    assert event["skipped"] == 0 and event["tables"]
    # The databases of the first broker's changelogs were not kept: every one with data was
    # discarded, none kept (they would have skipped the rebuilt records).
    kept, discarded = local_state(stderr)
    assert not kept and {table for table, _ in discarded} == {"sources", "entities"}

    changes, stderr = sync(again, later)
    assert changes > 0 and not rebuilt_events(stderr)  # the state is there now
    kept, discarded = local_state(stderr)  # this broker's databases: kept
    assert kept and not discarded
    actual = directory_of(again)
    got, want = without_run_dependent(actual), without_run_dependent(expected)
    assert got == want, differences(got, want)
    assert logins(actual) == logins(expected)


def test_the_first_extract_after_a_lost_broker_judges_the_rebuilt_keys(
    brokers: Brokers,
    clean_directory: LdapParams,
    local_services: object,
    files: dict[str, Path],
    expected: dict[str, dict[str, tuple[str, ...]]],
    tmp_path: Path,
) -> None:
    """The broker lost, and the later extract comes straight after: the keys rebuilt from the
    directory (in no scope yet) are judged by its snapshots as the worker's own would be, and
    the leavers disappear (the scans read rebuilt keys: sync.absence.scan_candidate)."""
    base_dn = local_services.base_dn  # type: ignore[attr-defined]
    later = [str(p) for p in later_files(files, leavers=3, phones=7)]
    direct = pipeline_on(brokers.start(), tmp_path / "direct", clean_directory, base_dn)
    sync(direct, first_files(files))
    brokers.stop_last()
    direct = replace(direct, env={**direct.env, "ENTSYNC_KAFKA_BOOTSTRAP": (b := brokers.start())})
    direct = replace(direct, bootstrap=b)
    changes, stderr = sync(direct, later)
    assert changes > 0 and rebuilt_events(stderr)
    actual = directory_of(direct)
    got, want = without_run_dependent(actual), without_run_dependent(expected)
    assert got == want, differences(got, want)


def test_a_lost_state_dir_is_recovered_from_the_changelogs(
    brokers: Brokers,
    clean_directory: LdapParams,
    local_services: object,
    files: dict[str, Path],
    expected: dict[str, dict[str, tuple[str, ...]]],
    tmp_path: Path,
) -> None:
    """A new pod: the state dir gone, the broker kept. The tables come back from their
    changelogs whole (not from the directory: the changelogs hold records)."""
    base_dn = local_services.base_dn  # type: ignore[attr-defined]
    state = tmp_path / "state"
    p = pipeline_on(brokers.start(), state, clean_directory, base_dn)
    sync(p, first_files(files))
    before = directory_of(p)
    assert any((state / "faust").rglob("*.sst")) or any((state / "faust").rglob("*.log"))
    shutil.rmtree(state / "faust")

    # The same extract again (forced past the ingest ledger): every feed key is found unchanged
    # in the recovered table, so nothing is routed and nothing written.
    p.ok("ingest", "--force", *first_files(files))
    done = p.cli("worker", "--until-idle", "--timeout", "240", timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert worker_counts(done.stdout)[1] == 0 and entity_inputs(done.stdout) == 0
    assert not rebuilt_events(done.stderr) and local_state(done.stderr) == (set(), set())
    assert sets(directory_of(p)) == sets(before)

    changes, stderr = sync(p, [str(path) for path in later_files(files, leavers=3, phones=7)])
    assert changes > 0
    kept, discarded = local_state(stderr)  # the databases the run before recovered: kept
    assert kept and not discarded
    actual = directory_of(p)
    got, want = without_run_dependent(actual), without_run_dependent(expected)
    assert got == want, differences(got, want)
    assert logins(actual) == logins(expected)

"""Lost stream state on real services: the broker restarted (its topics are in memory), slapd kept.

The worker finds its tables' changelogs empty while the directory holds entries, rebuilds its
state from the directory (sync.rebuild) and goes on as if nothing had been lost: the same extract
writes nothing and leaves every entry as it was; a later extract with leavers and changed
guardians ends in the directory a run without the loss ends in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import LdapParams
from connectors.ldap.directory import clear_subtree
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


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    config = GeneratorConfig(schools=2, pupils_per_school=12, seed=23, faults=False, delta=False)
    generated = generate(tmp_path / "extract", config)
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


def first_files(files: dict[str, Path]) -> list[str]:
    return [str(p) for k, p in sorted(files.items()) if k != "delta"]


def sync(p: Pipeline, paths: list[str]) -> tuple[int, str]:
    """ingest then worker --until-idle; (directory changes, worker stderr)."""
    p.ok("ingest", *paths)
    done = p.cli("worker", "--until-idle", "--timeout", "240", timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return worker_counts(done.stdout)[1], done.stderr


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


def rebuilt_events(stderr: str) -> list[dict[str, object]]:
    events = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "worker.state_rebuilt":
            events.append(event)
    return events


def test_a_lost_broker_is_rebuilt_from_the_directory(
    brokers: Brokers,
    clean_directory: LdapParams,
    local_services: object,
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    base_dn = local_services.base_dn  # type: ignore[attr-defined]

    def pipeline(bootstrap: str, state: str) -> Pipeline:
        env = {
            **os.environ,
            "ENTSYNC_STATE_DIR": str(tmp_path / state),
            "ENTSYNC_KAFKA_BOOTSTRAP": bootstrap,
            "ENTSYNC_LDAP_URL": clean_directory.url,
            "ENTSYNC_LDAP_BIND_DN": clean_directory.bind_dn,
            "ENTSYNC_LDAP_PASSWORD": clean_directory.password,
            "ENTSYNC_LDAP_BASE_DN": base_dn,
            "ENTSYNC_AUDIT_DIGEST_KEY": "lost-state-audit-digest-key-0123456789",
            "ENTSYNC_LOG_FORMAT": "json",
        }
        return Pipeline(env=env, bootstrap=bootstrap, ldap=clean_directory, base_dn=base_dn)

    later = [str(p) for p in later_files(files, leavers=3, phones=7)]

    # Reference: both extracts on one broker, nothing lost.
    reference = pipeline(brokers.start(), "reference")
    sync(reference, first_files(files))
    sync(reference, later)
    expected = directory_of(reference)
    assert sum(e.get("entsyncAccountState") == ("disappeared",) for e in expected.values()) == 3
    brokers.stop_last()
    clear_subtree(clean_directory, base_dn)

    # The same, with the broker lost (stopped, a new empty one) between the two extracts.
    first = pipeline(brokers.start(), "lost")
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

    changes, stderr = sync(again, later)
    assert changes > 0 and not rebuilt_events(stderr)  # the state is there now
    actual = directory_of(again)
    got, want = without_run_dependent(actual), without_run_dependent(expected)
    assert got == want, differences(got, want)
    assert logins(actual) == logins(expected)

    # The broker lost again, and the later extract comes straight after: the keys rebuilt from
    # the directory (in no scope yet) are judged by its snapshots as the worker's own would be:
    # the leavers disappear (the scans read rebuilt keys: sync.absence.scan_candidate).
    brokers.stop_last()
    clear_subtree(clean_directory, base_dn)
    direct = pipeline(brokers.start(), "direct")
    sync(direct, first_files(files))
    brokers.stop_last()
    direct = replace(direct, env={**direct.env, "ENTSYNC_KAFKA_BOOTSTRAP": (b := brokers.start())})
    direct = replace(direct, bootstrap=b)
    changes, stderr = sync(direct, later)
    assert changes > 0 and rebuilt_events(stderr)
    actual = directory_of(direct)
    got = without_run_dependent(actual)
    assert got == want, differences(got, want)

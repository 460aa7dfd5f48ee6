"""The worker's processes under faults, on a real broker and slapd of each test's own (stopped
at will): writer processes (and every connection to slapd) die with a SIGKILLed worker, SIGTERM
stops a worker within 10 s while the directory is down or while it starts, and a directory down
past the retry budget ends the worker with exit code 6 and a clear message. With either writer:
python-ldap's (the default, in the worker's own process) and ldap3's in two processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import count_entries
from connectors.services import down
from connectors.services.process import pid_alive
from connectors.stream.write_window import WindowLimits
from entsync.worker import DIRECTORY_DOWN_EXIT
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

ENTSYNC = str(Path(sys.executable).parent / "entsync")
STOP_LIMIT_S = 10.0


@pytest.fixture
def services(tmp_path: Path) -> Iterator[LocalServices]:
    """slapd and a broker of this test's own: stopping its slapd disturbs no other test."""
    handle = LocalServices(state_dir=tmp_path / "services", info={})
    handle.state_dir.mkdir()
    handle.up()
    try:
        yield handle
    finally:
        down(handle.state_dir)
        left = [pid for pid in handle.pids_seen if pid_alive(pid)]
        assert not left, f"service processes still running: {left}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("extract")
    made = generate(out, GeneratorConfig(schools=4, pupils_per_school=40, seed=19))
    return {kind: str(path) for kind, path in made.files.items()}


@pytest.fixture(scope="module")
def extract(generated: dict[str, str]) -> list[str]:
    return [path for kind, path in sorted(generated.items()) if kind != "delta"]


@pytest.fixture(scope="module")
def delta(generated: dict[str, str]) -> list[str]:
    """The next day's changes: writes still to do once the directory is stopped, whether or not
    the load was all written before it stopped (a window writes a small load in well under a
    second)."""
    return [generated["delta"]]


WRITERS = ["python-ldap", "ldap3"]
PROCESSES = {"python-ldap": 1, "ldap3": 2}  # writer processes the worker runs (the defaults)


def _env(services: LocalServices, writer: str = "ldap3", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTSYNC_")}
    return {
        **env,
        "ENTSYNC_STATE_DIR": str(services.state_dir),  # connections from its services.json
        "ENTSYNC_KAFKA_SESSION_TIMEOUT_S": os.environ["ENTSYNC_KAFKA_SESSION_TIMEOUT_S"],
        "ENTSYNC_LOG_FORMAT": "json",
        "ENTSYNC_LDAP_WRITER": writer,
        "ENTSYNC_LDAP_WRITER_PROCESSES": str(PROCESSES[writer]),
        "ENTSYNC_METRICS_PORT": "0",  # no shared default port between parallel tests
        **extra,
    }


class Worker:
    """An ``entsync worker`` in a session of its own; every pid of it killed at the end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [ENTSYNC, "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.writers: list[int] = []

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.proc.poll() is None, f"worker exited ({what}):\n{self.output()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def find_writers(self) -> list[int]:
        """The writer processes (spawned children of the worker)."""
        self.writers = [
            pid
            for pid in _children(self.proc.pid)
            if b"multiprocessing.spawn" in _cmdline(pid) and pid_alive(pid)
        ]
        return self.writers

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def exit_within(self, seconds: float) -> tuple[int, float]:
        started = time.monotonic()
        code = self.proc.wait(timeout=seconds)
        return code, time.monotonic() - started

    def kill_all(self) -> None:
        with_group = [self.proc.pid, *self.writers]
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for pid in with_group:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive_after(pids: list[int], seconds: float) -> list[int]:
    """Those of ``pids`` still running ``seconds`` later (or as soon as none runs)."""
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if pid_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        found = []
        for task in tasks:
            found += [int(c) for c in (task / "children").read_text().split()]
        return found
    except OSError:
        return []


def _established(port: int) -> int:
    """TCP connections to or from ``port`` on loopback that are established (either side)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        ports = {int(local.split(":")[1], 16), int(remote.split(":")[1], 16)}
        if state == "01" and port in ports:
            count += 1
    return count


@pytest.fixture
def worker_of(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        started.append(Worker(env, tmp_path / f"worker-{len(started)}.log"))
        return started[-1]

    yield start
    for worker in started:
        worker.kill_all()


def _people(services: LocalServices) -> Callable[[], int]:
    return lambda: count_entries(services.ldap_params, f"ou=people,{services.base_dn}", scope="one")


def _ingest(services: LocalServices, files: list[str]) -> None:
    done = subprocess.run(
        [ENTSYNC, "ingest", *files], env=_env(services), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("writer", WRITERS)
def test_a_sigkilled_worker_takes_its_writer_processes_and_connections_with_it(
    services: LocalServices,
    extract: list[str],
    worker_of: Callable[..., Worker],
    writer: str,
) -> None:
    _ingest(services, extract)
    worker = worker_of(_env(services, writer))
    people = _people(services)
    worker.wait_for("writes", lambda: people() >= 20)
    writers = worker.find_writers()
    assert len(writers) == PROCESSES[writer]
    slapd_port = int(services.info["slapd"]["port"])
    assert _established(slapd_port) > 0  # the writers' bound connections

    os.kill(worker.proc.pid, signal.SIGKILL)  # the worker alone, not its process group
    worker.proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in writers) or _established(slapd_port):
        assert time.monotonic() < deadline, (
            f"writers alive: {[p for p in writers if pid_alive(p)]}, "
            f"connections to slapd: {_established(slapd_port)}"
        )
        time.sleep(0.05)
    written = people()
    time.sleep(1)
    assert people() == written  # nobody writes any more


@pytest.mark.parametrize("writer", WRITERS)
def test_sigterm_stops_a_worker_retrying_writes_to_a_stopped_directory(
    services: LocalServices,
    extract: list[str],
    worker_of: Callable[..., Worker],
    delta: list[str],
    writer: str,
) -> None:
    _ingest(services, extract)
    # A budget far longer than the test: only the signal can end the retries.
    worker = worker_of(_env(services, writer, ENTSYNC_LDAP_RETRY_TOTAL_S="600"))
    people = _people(services)
    worker.wait_for("writes", lambda: people() >= 5)
    writers = worker.find_writers()
    services.stop("slapd")
    _ingest(services, delta)
    # A load's write window may hold its writes up to WindowLimits.max_s before they are
    # tried (connectors.stream.write_window): the retries come then.
    worker.wait_for(
        "retries",
        lambda: '"ldap.retry"' in worker.output(),
        timeout=WindowLimits().max_s + 30,
    )

    worker.proc.send_signal(signal.SIGTERM)
    code, took = worker.exit_within(STOP_LIMIT_S)
    assert took < STOP_LIMIT_S
    assert code == 0, worker.output()[-3000:]  # stopped on request
    assert '"worker.stopping"' in worker.output()
    assert not _alive_after(writers, 1)


def test_sigterm_stops_a_worker_during_start_up(
    services: LocalServices, worker_of: Callable[..., Worker]
) -> None:
    worker = worker_of(_env(services))
    # The writer processes start before the consumer group is joined (about 5 s here).
    worker.wait_for("writer processes", lambda: len(worker.find_writers()) == 2, timeout=60)
    writers = worker.writers
    worker.proc.send_signal(signal.SIGTERM)
    _code, took = worker.exit_within(STOP_LIMIT_S)
    assert took < STOP_LIMIT_S
    # Killed before their start-up was over, they see their lifeline closed once it is.
    assert not _alive_after(writers, 5)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_directory_down_past_the_retry_budget_ends_the_worker_with_exit_6(
    services: LocalServices,
    extract: list[str],
    worker_of: Callable[..., Worker],
    delta: list[str],
    writer: str,
) -> None:
    _ingest(services, extract)
    worker = worker_of(_env(services, writer, ENTSYNC_LDAP_RETRY_TOTAL_S="2"))
    people = _people(services)
    worker.wait_for("writes", lambda: people() >= 5)
    writers = worker.find_writers()
    services.stop("slapd")
    _ingest(services, delta)

    code, _took = worker.exit_within(WindowLimits().max_s + 2 + STOP_LIMIT_S)
    output = worker.output()
    assert code == DIRECTORY_DOWN_EXIT, output[-3000:]
    error = output[output.index("worker error:") :]
    assert "did not answer for the whole" in " ".join(error.split())
    assert "ENTSYNC_LDAP_RETRY_TOTAL_S" in error
    assert "uid=" not in error  # ids only in the logs; here not even those
    assert not _alive_after(writers, 1)

"""A real PostgreSQL server for the stores' integration tests (audit, bridge), started and
stopped by this module.

The server is the distribution's (``/usr/lib/postgresql/<major>/bin``, installed by ``./dev
setup``), run as the ``postgres`` user when we are root (it refuses to run as root), with its
data, socket and log in a temporary directory, listening on a free loopback port, with password
authentication. It is stopped by pid at the end and no process of it may be left. A cluster the
distribution package may have started is never used.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from connectors.services.process import free_port, pid_alive, spawn_detached, stop_pid

USER = "entsync"


@dataclass
class PostgresServer:
    port: int
    password: str
    pid: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "db") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        pytest.fail("no PostgreSQL server installed: run ./dev setup (apt package postgresql)")
    return Path(found[-1]).parent


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.add(int(Path(stat).parent.name))
    return kids


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="entsync-pg-"))
    data, sockets, pwfile = root / "data", root / "sock", root / "pw"
    password = secrets.token_urlsafe(18)
    pwfile.write_text(password + "\n")
    sockets.mkdir()
    if os.geteuid() == 0:
        server_user = pwd.getpwnam("postgres")
        for path in (root, sockets, pwfile):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        ),
        check=True,
        capture_output=True,
        cwd=root,
    )
    port = free_port()
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(sockets),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
    ]
    pid = spawn_detached(_as_server_user(argv), log_path=root / "server.log", cwd=root)
    server = PostgresServer(port=port, password=password, pid=pid)
    workers: set[int] = set()
    try:
        _wait_ready(server, root / "server.log")
        workers = _children(pid)
        yield server
    finally:
        workers |= _children(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # fast shutdown: disconnects clients, then exits
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop_pid(pid, timeout=5)
        left = sorted(p for p in {pid, *workers} if pid_alive(p))
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"PostgreSQL processes still running: {left}"


def _wait_ready(server: PostgresServer, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(server.pid):
            pytest.fail(f"PostgreSQL exited at start:\n{log.read_text()[-3000:]}")
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            time.sleep(0.2)
    pytest.fail(f"PostgreSQL not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")

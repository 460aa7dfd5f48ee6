"""The suite's leftover-process check finds this session's processes, and only them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.leftovers import SESSION_ENV, find_leftovers, kill, wait_for_leftovers


def _disguised(name: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """``sleep`` with the command line of ``name`` (argv[0] is what /proc shows)."""
    return subprocess.Popen([str(cwd / name), "30"], executable="/bin/sleep", env=env, cwd=cwd)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _found_once_started(marker: str) -> list[Any]:
    """What the check finds once the child has exec'ed (until then /proc shows the parent's
    command line and environment: a loaded machine takes a while)."""
    deadline = time.monotonic() + 10
    while True:
        found = find_leftovers(marker, None, set())
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_process_of_the_session_is_found_then_gone_once_killed(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    marker = "leftover-test-marker"
    env = {"PATH": os.environ["PATH"], SESSION_ENV: marker}
    started.append(_disguised("slapd", env, tmp_path))
    found = _found_once_started(marker)
    assert [(p.pid, p.kind) for p in found] == [(started[0].pid, "slapd")]
    kill(found)
    started[0].wait(timeout=5)
    assert wait_for_leftovers(marker, None, set(), grace_s=1) == []


def test_processes_of_other_sessions_or_kinds_are_not_counted(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    plain = {"PATH": os.environ["PATH"]}
    started.append(_disguised("slapd", {**plain, SESSION_ENV: "another-session"}, other))
    started.append(_disguised("not-a-service", {**plain, SESSION_ENV: "mine"}, other))
    # A process running in the session's temporary directory is found, marker or not (once
    # both children have exec'ed: see _found_once_started)...
    deadline = time.monotonic() + 10
    while not (pids := [p.pid for p in find_leftovers("mine", tmp_path, set())]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert pids == [started[0].pid]
    time.sleep(0.2)  # the second child has exec'ed too by now, or is about to
    # ...but another session's, or a process of another kind, is not.
    assert find_leftovers("mine", tmp_path / "elsewhere", set()) == []

"""Suite-wide: no test leaves a process behind (see :mod:`tests.leftovers`); hypothesis
examples have no deadline.

The check runs once, in the process that runs the session (the xdist controller with ``-n``,
after every worker has finished), over the processes of this session only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from tests.leftovers import SESSION_ENV, kill, wait_for_leftovers

LEFTOVER_GRACE_S = 10.0

# No time limit per example: hypothesis' default deadline (200 ms) is a timed assertion, and
# fails properties whose examples are slow only because the machine is busy (CI, -n 4).
settings.register_profile("entsync", deadline=None)
settings.load_profile("entsync")


def _own_resource_tracker() -> set[int]:
    """The resource tracker multiprocessing started for this process (a writer with processes
    in a session without xdist): it ends with this process, at the end of file of its pipe, so
    it is not left behind. Killed here, it would be relaunched at exit, warning."""
    from multiprocessing import resource_tracker

    pid = getattr(resource_tracker._resource_tracker, "_pid", None)
    return {pid} if isinstance(pid, int) else set()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if not _is_xdist_worker(config):
        # Before xdist starts its workers: they and every process they start inherit it.
        os.environ[SESSION_ENV] = uuid.uuid4().hex


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    marker = os.environ.get(SESSION_ENV)
    if _is_xdist_worker(config) or not marker:
        return
    factory = getattr(config, "_tmp_path_factory", None)
    root: Path | None = factory.getbasetemp() if factory is not None else None  # workers' too
    exclude = {os.getpid(), os.getppid(), *_own_resource_tracker()}
    left = wait_for_leftovers(marker, root, exclude, LEFTOVER_GRACE_S)
    if not left:
        return
    kill(left)  # not left running for the next session; the failure says which they were
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  pid {p.pid} ({p.kind}): {p.cmdline[:200]}" for p in left]
    message = "processes started by this test session were still running at its end:"
    if reporter is not None:
        reporter.write_sep("=", "leftover processes", red=True)
        reporter.write_line(message)
        for line in lines:
            reporter.write_line(line)
    else:
        print(message, *lines, sep="\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""Processes a test session left behind: the suite fails when one is still running at its end.

Only this session's processes count, never those the machine runs for something else (a
developer's ``entsync services up``, another test session): a process is the session's when
its environment carries the session's marker (``SESSION_ENV``, set by the session before any
test or xdist worker starts, and inherited by every process it starts, detached or not) or
when its working directory or command line is under the session's temporary directory (where
services started by the tests run). Of these, the kinds a test starts count: slapd, the tansu
broker, the ``entsync`` CLI and Python's multiprocessing children (the LDAP writer processes
and their resource tracker). Zombies count as gone (this machine's PID 1 does not reap).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

SESSION_ENV = "PYTEST_ENTSYNC_SESSION"  # not ENTSYNC_*: some tests drop those
KINDS = {
    "slapd": re.compile(r"(^|/)slapd( |$)"),
    "tansu broker": re.compile(r"(^|/)tansu[^ /]*( |$)"),
    "entsync": re.compile(r"(^|/)entsync( |$)"),
    "writer process": re.compile(r"multiprocessing\.(spawn|resource_tracker)"),
}


@dataclass(frozen=True)
class Leftover:
    pid: int
    kind: str
    cmdline: str


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return None


def _is_zombie(pid: int) -> bool:
    stat = _read(Path(f"/proc/{pid}/stat"))
    return stat is None or stat.rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X")


def _ours(pid: int, marker: str, root: Path | None, cmdline: str) -> bool:
    environ = _read(Path(f"/proc/{pid}/environ")) or b""
    if f"{SESSION_ENV}={marker}".encode() in environ.split(b"\0"):
        return True
    if root is None:
        return False
    with contextlib.suppress(OSError):
        if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(root):
            return True
    # A component boundary: /tmp/pytest-of-x/pytest-5 is not under .../pytest-50
    return re.search(re.escape(str(root)) + r"(/|\s|$)", cmdline) is not None


def find_leftovers(marker: str, root: Path | None, exclude: set[int]) -> list[Leftover]:
    """Running processes of the session (see the module doc), of a kind a test starts."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        raw = _read(entry / "cmdline")
        if not raw:
            continue
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        kind = next((k for k, pattern in KINDS.items() if pattern.search(cmdline)), None)
        pid = int(entry.name)
        if kind is None or _is_zombie(pid) or not _ours(pid, marker, root, cmdline):
            continue
        found.append(Leftover(pid, kind, cmdline))
    return found


def wait_for_leftovers(
    marker: str, root: Path | None, exclude: set[int], grace_s: float
) -> list[Leftover]:
    """The leftovers still running after ``grace_s`` (processes just told to stop may need a
    moment)."""
    deadline = time.monotonic() + grace_s
    while True:
        left = find_leftovers(marker, root, exclude)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def kill(leftovers: list[Leftover]) -> None:
    """SIGKILL each, by pid, if it still runs the same command (the pid was not reused)."""
    for leftover in leftovers:
        raw = _read(Path(f"/proc/{leftover.pid}/cmdline")) or b""
        if raw.replace(b"\0", b" ").decode(errors="replace").strip() == leftover.cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)

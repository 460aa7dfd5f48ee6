"""Detached child processes: start, identify, stop, and read their logs.

Services must outlive the CLI that starts them, so they run in their own session with their
output in a log file. This machine's PID 1 does not reap orphans, so a stopped service may stay
a zombie: zombies count as gone everywhere here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Popen objects of the services this process started: kept so they are reaped (no zombie, no
# ResourceWarning) when stopped from the same process, e.g. a test session.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def spawn_detached(
    argv: Sequence[str], *, log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start ``argv`` in a new session, output appended to ``log_path``; return its pid."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces: the state follows the last ")".
    return stat.rsplit(")", 1)[1].split()[0]


def _cmdline(pid: int) -> bytes | None:
    # Right after fork/exec the command line can read empty for a moment: look again briefly.
    for _attempt in range(20):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if cmdline:
            return cmdline.replace(b"\0", b" ")
        time.sleep(0.01)
    return None


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, ``marker`` is in its command line.

    The marker guards against pid reuse: a recycled pid running something else is not ours.
    """
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    if Path("/proc").is_dir():
        state = _proc_state(pid)
        if state is None or state in ("Z", "X"):
            return False
        if marker is None:
            return True
        cmdline = _cmdline(pid)
        return cmdline is not None and marker.encode() in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, *, marker: str | None = None, timeout: float = 10.0) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL. Return whether it was running."""
    if not pid_alive(pid, marker):
        _reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5.0)
    _reap(pid)
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    # Started by an earlier call in this process without a Popen (unusual): reap if ours.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid_file(path: Path, pid: int) -> None:
    path.write_text(f"{pid}\n")


def log_tail(path: Path, lines: int = 25) -> str:
    """Last lines of a service log, without terminal colours."""
    try:
        text = path.read_bytes()[-16384:].decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = _ANSI.sub("", text).splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port whose old connections linger in TIME_WAIT is reusable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

"""Writer processes live exactly as long as the process that started them.

The parent holds the only write end of a pipe and never writes to it; each writer process
holds a read end and a thread blocked reading it. When the parent ends, however it ends
(SIGKILL and crashes included), the kernel closes its descriptors: the read returns end of
file and the writer process exits at once, closing its LDAP connections. A parent that stops
the writers on purpose (``DirectoryWriter.close``) closes the write end too.

Why a pipe rather than Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): that signal
follows the *thread* that created the child, not the process. ``ProcessPoolExecutor`` starts
its processes from whichever thread submits work, so a short-lived thread's exit would kill a
healthy writer; the signal is also Linux only, and is lost if the parent died before the
child set it (hence the ``getppid()`` dance). The pipe has none of these: its end of file is
the process's death, and a parent already gone is seen at the first read. The write end is
not inheritable (PEP 446) and spawned processes get only the descriptors they are given, so
no other process keeps it open.

The same processes share an ``abort`` event (``DirectoryWriter.abort``): set, it makes every
retry stop at its next pause, so that a worker told to stop does not wait out the retry budget
of a directory that is down.
"""

from __future__ import annotations

import os
import threading
import time
from multiprocessing.connection import Connection
from typing import Protocol

PARENT_GONE_EXIT = 70  # a writer process whose parent died: nobody reads its exit code


class StopFlag(Protocol):
    """What a retry loop watches: ``threading.Event`` and ``multiprocessing.Event`` both are."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class EitherStop:
    """Set when its own event or the shared one is: one ``apply`` call's stop (its cancellation,
    the first op the directory never answered) or the whole writer's (``abort``)."""

    POLL_S = 0.1  # two events cannot be waited on at once; pauses are short anyway

    def __init__(self, shared: StopFlag) -> None:
        self._own = threading.Event()
        self._shared = shared

    def is_set(self) -> bool:
        return self._own.is_set() or self._shared.is_set()

    def set(self) -> None:
        self._own.set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = self.POLL_S
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    return False
            self._own.wait(left)
        return True


def watch_parent(lifeline: Connection) -> None:
    """In a writer process: exit as soon as the parent's end of ``lifeline`` is closed."""

    def watch() -> None:
        try:
            while True:
                lifeline.recv_bytes()  # the parent never sends: only end of file ends this
        except (EOFError, OSError):
            pass
        # Not sys.exit: threads may be blocked in LDAP calls; the kernel closes the sockets.
        os._exit(PARENT_GONE_EXIT)

    threading.Thread(target=watch, name="entsync-lifeline", daemon=True).start()

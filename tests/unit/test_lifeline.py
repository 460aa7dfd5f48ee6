"""Writer processes' lifeline and stop flags (connectors.ldap.lifeline)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection

from connectors.ldap.lifeline import PARENT_GONE_EXIT, EitherStop, watch_parent


def _child(lifeline: Connection) -> None:
    watch_parent(lifeline)
    time.sleep(60)  # only the lifeline ends it


def test_a_child_exits_once_the_parent_end_of_its_lifeline_closes() -> None:
    context = multiprocessing.get_context("spawn")
    child_end, parent_end = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(child_end,))
    child.start()
    try:
        time.sleep(0.5)
        assert child.is_alive()
        parent_end.close()  # what the kernel does when the parent dies, however
        child.join(timeout=10)
        assert child.exitcode == PARENT_GONE_EXIT
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def test_either_stop_is_set_by_its_own_event_or_the_shared_one() -> None:
    shared = threading.Event()
    one, other = EitherStop(shared), EitherStop(shared)
    one.set()
    assert one.is_set() and not other.is_set() and not shared.is_set()
    assert one.wait(5)
    started = time.monotonic()
    assert not other.wait(0.2)
    assert 0.15 < time.monotonic() - started < 2
    threading.Timer(0.2, shared.set).start()
    assert other.wait(5) and other.is_set()

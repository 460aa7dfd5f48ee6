"""Stopping the worker in every state: on a signal, and when the directory stays down.

faust stops a worker (signal, crash) by first waiting until every message an agent took is
acknowledged (``Consumer.wait_empty``), without a deadline. The reconcile pipeline acknowledges
a batch only once its directory writes are done, so a directory that is down kept a stopping
worker waiting out retries, and a batch that failed for good kept it waiting for ever, deaf to
further signals. Two rules fix that:

* once the pipeline has failed, the entity inputs it holds will never be acknowledged: they are
  taken out of faust's wait (:class:`AbandonedInputs`), stay uncommitted, and are read again by
  the next worker. Commits cover acknowledged offsets only (``faust_compat.patches``), so nothing is
  skipped;
* SIGTERM and SIGINT abort the directory writer first (retries stop at their next pause, the
  batches in progress fail and are abandoned as above), then let faust stop; a worker still
  running ``deadline_s`` later (a hung directory connection, a broker that does not answer)
  exits at once, and so does a second signal (:func:`stop_promptly`). Writer processes exit
  with the worker whatever the way (``connectors.ldap.lifeline``); a worker that exits without
  leaving its consumer group delays the next one's start by the session timeout.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

from connectors.logs import get_logger
from connectors.stream.faust_compat import access
from connectors.stream.ports import FaustApp, FaustWorker

log = get_logger(__name__)

FORCED_STOP_EXIT = 7  # a stop signal, then no clean stop within the deadline (or a second one)
STOP_DEADLINE_S = 8.0


class AbandonedInputs:
    """Drops a failed pipeline's entity inputs from the messages faust waits for."""

    def __init__(self, app: FaustApp, topic: str) -> None:
        self._app = app
        self._topic = topic
        self.failed = False

    def fail(self) -> None:
        self.failed = True
        self.drop()

    async def tick(self) -> None:
        """Run often (a timer): the agent may still have taken messages after the failure."""
        self.drop()

    def drop(self) -> None:
        if not self.failed:
            return
        consumer = self._app.consumer
        unacked = access.unacked_messages(consumer)
        gone = {message for message in unacked if message.tp.topic == self._topic}
        if gone:
            unacked.difference_update(gone)  # in place: faust's streams hold this very set
            log.info("worker.inputs_abandoned", messages=len(gone))


def stop_promptly(
    worker: FaustWorker, abort: Callable[[], None], deadline_s: float = STOP_DEADLINE_S
) -> Callable[[], None]:
    """Wrap the faust worker's SIGTERM and SIGINT handlers (before it starts). Return the
    function that disarms the deadline once the worker has stopped."""
    timers: list[threading.Timer] = []

    def force(reason: str) -> None:
        log.error("worker.stop_forced", reason=reason, deadline_s=deadline_s)
        sys.stderr.flush()
        os._exit(FORCED_STOP_EXIT)

    def wrap(name: str, original: Callable[[], None]) -> Callable[[], None]:
        def handler() -> None:
            if timers:
                force(f"second signal ({name})")
            log.info("worker.stopping", signal=name)
            timer = threading.Timer(deadline_s, force, args=("not stopped within the deadline",))
            timer.daemon = True
            timers.append(timer)
            timer.start()
            abort()
            original()

        return handler

    access.wrap_stop_signals(worker, wrap)

    def disarm() -> None:
        for timer in timers:
            timer.cancel()

    return disarm

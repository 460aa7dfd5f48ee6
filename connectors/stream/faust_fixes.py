"""Work-arounds for faust-streaming behaviours that would lose feed events.

faust drops a message fetched under an older consumer-group generation (a rebalance happened in
between) and *acknowledges* it, so the committed offset moves past a message no agent processed:
with two rebalances at a worker's start-up (common with one worker), a pupil record could be
silently lost. Messages handed to an agent are always "tracked" first; the dropped ones are not.
Refusing to acknowledge untracked messages leaves them uncommitted, and the next generation, which
seeks to the committed offsets, reads them again. Processing is idempotent, so a re-read is safe.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer

_PATCHED_FLAG = "_entsync_untracked_ack_guard"


def guard_untracked_acks() -> None:
    """Install the guard once per process."""
    if getattr(Consumer, _PATCHED_FLAG, False):
        return
    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if not getattr(message, "tracked", False):
            return False
        return bool(original(self, message))

    Consumer.ack = ack  # type: ignore[method-assign]
    setattr(Consumer, _PATCHED_FLAG, True)

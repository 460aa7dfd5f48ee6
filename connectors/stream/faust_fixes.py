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


def recover_tables_to_true_end(bootstrap: str) -> None:
    """Make table recovery read each changelog partition to its real end.

    faust asks for the end offsets with ListOffsets; the local broker (tansu) answers with the
    first offset of the partition's last record batch plus one, so a restarted worker would
    recover its tables without their latest entries and decide on stale state. Fetch responses
    carry the right high watermark: start from the reported end minus one (inside the last batch)
    and take the high watermark of the first fetch. On Apache Kafka this finds the same ends.
    """
    from faust.transport.drivers import aiokafka as driver

    from connectors.stream.offsets import true_end_offsets

    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, _PATCHED_FLAG + "_hw", False):
        return
    original = thread_class._highwaters

    async def _highwaters(self: Any, partitions: list[Any]) -> Any:
        if not partitions or self.consumer.in_transaction:
            return await original(self, partitions)
        ends = await true_end_offsets(bootstrap, partitions)
        return {tp: ends[tp] for tp in partitions}

    thread_class._highwaters = _highwaters  # type: ignore[method-assign]
    setattr(thread_class, _PATCHED_FLAG + "_hw", True)

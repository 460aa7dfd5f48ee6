"""Reads and calls of faust and aiokafka internals that have no public accessor.

Every private attribute the stream shell uses outside the patches is read here, and
:data:`connectors.stream.faust_compat.REQUIRED` names each class attribute for the start-up
check; attributes set on instances are read with a default where faust may not have made them
yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """faust's committed offset per partition of its consumer (what it last committed)."""
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", None) or {}
    return committed


def acked_offsets(consumer: Any) -> Mapping[Any, list[int]]:
    """Offsets acknowledged since the last commit, per partition."""
    acked: Mapping[Any, list[int]] = consumer._acked
    return acked


async def commit(consumer: Any, offsets: Mapping[Any, int]) -> bool:
    """Commit ``offsets`` now; False when the broker refused (a rebalance in between)."""
    return bool(await consumer._commit(offsets))


def unacked_messages(consumer: Any) -> set[Any]:
    """faust's messages handed to agents and not yet acknowledged (what ``wait_empty`` waits
    for)."""
    unacked: set[Any] = consumer._unacked_messages
    return unacked


async def refresh_metadata(consumer: Any) -> None:
    """Ask an aiokafka client for fresh cluster metadata (new topics, partition counts)."""
    await consumer._client.force_metadata_update()


def aiokafka_producer(app: Any) -> Any:
    """The aiokafka producer under faust's, started."""
    return app.producer._ensure_producer()


def crash_reason(app: Any) -> BaseException | None:
    """What crashed the app, if anything."""
    reason = getattr(app, "_crash_reason", None)
    return reason if isinstance(reason, BaseException) else None


def wrap_stop_signals(worker: Any, wrap: Callable[[str, Callable[[], None]], Any]) -> None:
    """Replace the worker's SIGTERM and SIGINT handlers by ``wrap(name, original)``."""
    worker._on_sigterm = wrap("SIGTERM", worker._on_sigterm)
    worker._on_sigint = wrap("SIGINT", worker._on_sigint)


def member_id(consumer: Any) -> str | None:
    """This worker's member id in its consumer group, as the broker gave it (None before the
    first join)."""
    thread = getattr(consumer, "_thread", None)
    aio = getattr(thread, "_consumer", None)
    member = getattr(getattr(aio, "_coordinator", None), "member_id", None)
    return member if isinstance(member, str) and member else None


def consumer_thread_left(app: Any) -> bool:
    """faust's consumer thread still runs after the worker stopped (see
    :func:`connectors.stream.faust_compat.patches.consumer_thread_never_holds_exit`)."""
    service = getattr(getattr(app, "_consumer", None), "_thread", None)
    thread = getattr(service, "_thread", None)
    return bool(thread is not None and thread.is_alive())


async def hold_fetching(consumer: Any, topic: str, held: bool) -> None:
    """Pause (``held``) or resume fetching ``topic``'s partitions this consumer is assigned,
    in aiokafka itself, from faust's consumer thread.

    Not faust's ``pause_partitions``: faust drops the records its last fetch brought for a
    partition paused meanwhile, although aiokafka's position is past them (a gap, which the
    stall guard then mends by reading the partition again). aiokafka's own pause drops the
    records it fetched ahead *without* moving its position, so they are fetched again on
    resumption. The call runs in the consumer thread's loop, as aiokafka's fetches do: one
    from this thread could race a fetch (a seek from here did, crashing aiokafka's fetcher).
    A rebalance clears aiokafka's pauses: the caller holds again when it needs to.
    """

    def apply(aio: Any) -> None:
        # The assignment as aiokafka has it now, in its loop: nothing else changes it meanwhile.
        mine = [tp for tp in aio.assignment() if tp.topic == topic]
        if held:
            aio.pause(*mine)
        else:
            aio.resume(*mine)

    await _in_consumer_thread(consumer, apply)


async def seek(consumer: Any, tp: Any, offset: int) -> None:
    """faust's ``Consumer.seek``, with aiokafka's seek run in the consumer thread.

    faust's own calls aiokafka's ``seek`` from the worker's thread while the consumer thread may
    be draining a fetch of that partition: a seek racing a fetch crashed aiokafka's fetcher once
    (``KeyError`` in ``Fetcher.fetched_records``, issue #17). The read offset is then set as
    faust sets it, so that the records from ``offset`` are delivered again."""
    await _in_consumer_thread(consumer, lambda aio: aio.seek(tp, offset))
    consumer._read_offset[tp] = offset if offset else None


async def _in_consumer_thread(consumer: Any, call: Callable[[Any], None]) -> None:
    """Run ``call(aiokafka consumer)`` in faust's consumer thread, in the loop of its fetches."""
    thread = consumer._thread
    aio = thread._ensure_consumer()
    await thread.call_thread(call, aio)

"""The reconcile pipeline's order of work: decide ahead, carry out one window at a time, in
order; hold batches back in a window while more input waits.

The reconciler here is a recording stand-in (the real one, on the broker and slapd, is exercised
by the integration tests of the worker); what is checked is what the pipeline does with it. A
batch is named by its first event; a window of several batches by its first batch's name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.stream.progress import Progress
from connectors.stream.write_window import ReconcilePipeline, WindowLimits, hold_acks


@dataclass
class DecidedBatch:
    batch: list[str]
    pending: dict[bytes, Any] | None
    new_states: dict[bytes, Any] = field(default_factory=dict)
    emits: list[str] = field(default_factory=list)


@dataclass
class Recorder:
    """Records every call; a batch's write waits for gate "<name>", its completion for gate
    "<name>-complete", until the test lets them go."""

    log: list[tuple[str, ...]] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # batches whose write reports a refusal
    fail: set[str] = field(default_factory=set)  # batches whose write raises
    emits_depend_on_pending: bool = False
    waits: dict[str, int] = field(default_factory=dict)  # inputs waiting after a batch
    suspended: bool = False  # faust's delivery (a rebalance, a stop)

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def open(self, *names: str) -> None:
        for name in names:
            self.gate(name).set()
            self.gate(f"{name}-complete").set()

    def prepare(self, batch: list[str], pending: Any = None) -> DecidedBatch:
        name = batch[0]
        self.log.append(("prepare", name, "on-pending" if pending else "on-table"))
        emits = [f"{name}-emit"]
        if self.emits_depend_on_pending and not pending:
            emits.append(f"{name}-other")
        return DecidedBatch(batch, pending, new_states={name.encode(): name}, emits=emits)

    def merge(self, into: DecidedBatch, later: DecidedBatch) -> DecidedBatch:
        self.log.append(("merge", into.batch[0], later.batch[0]))
        return DecidedBatch(
            [*into.batch, *later.batch],
            into.pending,
            new_states={**into.new_states, **later.new_states},
            emits=[],
        )

    def waiting(self, prepared: DecidedBatch | None = None) -> int:
        if prepared is None:  # asked again when no batch came
            return self.waits.get("idle", 0)
        return self.waits.get(prepared.batch[-1], 0)

    def delivering(self) -> bool:
        return not self.suspended

    async def send_emits(self, prepared: DecidedBatch) -> None:
        self.log.append(("emits", prepared.batch[0], *prepared.emits))

    async def write(self, prepared: DecidedBatch) -> bool:
        name = prepared.batch[0]
        self.log.append(("write-start", name))
        await self.gate(name).wait()
        if name in self.fail:
            raise RuntimeError(f"{name} failed")
        self.log.append(("write-end", name))
        return name not in self.refuse

    async def complete(self, prepared: DecidedBatch) -> None:
        name = prepared.batch[0]
        self.log.append(("complete-start", name))
        await self.gate(f"{name}-complete").wait()
        self.log.append(("complete-end", name))


def pipeline(
    recorder: Recorder, errors: list[BaseException], limits: WindowLimits | None = None
) -> tuple[ReconcilePipeline, Progress]:
    progress = Progress()

    async def release(events: Any) -> None:
        recorder.log.append(("ack", *events))

    limits = limits or WindowLimits()
    return ReconcilePipeline(recorder, progress, release, errors.append, limits), progress  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def before(log: list[tuple[str, ...]], first: tuple[str, ...], then: tuple[str, ...]) -> bool:
    return log.index(first) < log.index(then)


async def test_a_batch_is_decided_and_written_while_the_previous_ones_go_on() -> None:
    recorder, errors = Recorder(), []
    pipe, progress = pipeline(recorder, errors)
    await pipe.submit(["b1"])
    await settle()
    assert ("write-start", "b1") in recorder.log and progress.in_flight == 1

    second = asyncio.ensure_future(pipe.submit(["b2"]))
    await settle()
    # b2 is decided on b1's states and its inputs are out, but its writes wait for b1's.
    assert ("prepare", "b2", "on-pending") in recorder.log
    assert ("emits", "b2", "b2-emit") in recorder.log
    assert ("write-start", "b2") not in recorder.log and not second.done()

    recorder.gate("b1").set()  # b1 written; its completion is held
    await second
    await settle()
    log = recorder.log
    assert before(log, ("write-end", "b1"), ("write-start", "b2"))
    assert ("complete-start", "b1") in log and ("complete-end", "b1") not in log
    assert ("ack", "b1") not in log  # not acknowledged before it is complete

    recorder.gate("b2").set()  # b2 written while b1 is still being completed
    await settle()
    assert ("write-end", "b2") in log and ("complete-start", "b2") not in log

    recorder.open("b1", "b2")
    await pipe.drain()
    assert before(log, ("complete-end", "b1"), ("complete-start", "b2"))
    assert before(log, ("ack", "b1"), ("ack", "b2")) and log[-1] == ("ack", "b2")
    assert progress.in_flight == 0 and not errors


async def test_no_more_than_two_batches_are_carried_out_at_once() -> None:
    recorder, errors = Recorder(), []
    pipe, progress = pipeline(recorder, errors)
    recorder.gate("b1").set()
    recorder.open("b2", "b3")
    await pipe.submit(["b1"])  # written, its completion held
    await pipe.submit(["b2"])
    third = asyncio.ensure_future(pipe.submit(["b3"]))
    await settle()
    # b3 is decided, but neither written nor waiting for b2's writes until b1 is complete.
    assert not third.done() and ("write-start", "b3") not in recorder.log
    recorder.open("b1")
    await third
    await pipe.drain()
    assert recorder.log[-1] == ("ack", "b3") and progress.in_flight == 0 and not errors


@pytest.mark.parametrize("emits_differ", [False, True])
async def test_a_refused_write_has_the_next_batch_decided_again_on_the_table(
    emits_differ: bool,
) -> None:
    recorder = Recorder(refuse={"b1"}, emits_depend_on_pending=emits_differ)
    errors: list[BaseException] = []
    pipe, progress = pipeline(recorder, errors)
    recorder.open("b1", "b2")
    await pipe.submit(["b1"])
    await pipe.submit(["b2"])
    await pipe.drain()
    log = recorder.log
    prepares = [entry for entry in log if entry[:2] == ("prepare", "b2")]
    assert prepares == [("prepare", "b2", "on-pending"), ("prepare", "b2", "on-table")]
    # Decided again once b1 is complete (its corrected states are in the table).
    assert before(log, ("complete-end", "b1"), ("prepare", "b2", "on-table"))
    sent = [entry for entry in log if entry[:2] == ("emits", "b2")]
    # Inputs go out again only when deciding again changed them.
    assert sent == (
        [("emits", "b2", "b2-emit"), ("emits", "b2", "b2-emit", "b2-other")]
        if emits_differ
        else [("emits", "b2", "b2-emit")]
    )
    assert ("ack", "b2") in log and progress.in_flight == 0


async def test_a_batch_failing_in_the_background_is_reported_and_never_acknowledged() -> None:
    recorder = Recorder(fail={"b1"})
    errors: list[BaseException] = []
    pipe, progress = pipeline(recorder, errors)
    await pipe.submit(["b1"])
    recorder.open("b1")
    await settle()
    assert [str(e) for e in errors] == ["b1 failed"]  # the worker is told at once
    assert ("ack", "b1") not in recorder.log and progress.in_flight == 0
    with pytest.raises(RuntimeError, match="b1 failed"):
        await pipe.submit(["b2"])  # and the agent stops on its next batch
    assert progress.in_flight == 0 and ("prepare", "b2", "on-table") not in recorder.log


async def test_cancel_leaves_the_batches_unacknowledged() -> None:
    recorder, errors = Recorder(), []
    pipe, progress = pipeline(recorder, errors)
    recorder.gate("b1").set()
    await pipe.submit(["b1"])  # written, completion held
    await pipe.submit(["b2"])  # being written
    await settle()
    await pipe.cancel()
    assert not [entry for entry in recorder.log if entry[0] == "ack"]
    assert progress.in_flight == 0 and not errors


async def test_hold_acks_defers_the_stream_acknowledgements_to_release() -> None:
    acked: list[str] = []

    class Stream:
        async def ack(self, event: str) -> bool:
            acked.append(event)
            return True

    stream = Stream()
    release = hold_acks(stream)
    assert await stream.ack("e1") is False and acked == []  # what take_events calls
    await release(["e1", "e2"])
    assert acked == ["e1", "e2"]


LOAD = 600  # inputs waiting: more than WindowLimits.backlog


async def started(pipe: ReconcilePipeline, recorder: Recorder) -> None:
    """A worker's first batch is carried out alone (the entities table has a state stored
    before a window's entries are in the directory)."""
    recorder.waits["b0"] = LOAD
    recorder.open("b0")
    await pipe.submit(["b0"])
    await settle()
    assert ("write-start", "b0") in recorder.log


async def test_the_first_batch_is_carried_out_alone_whatever_waits() -> None:
    recorder, errors = Recorder(), []
    pipe, _ = pipeline(recorder, errors)
    await started(pipe, recorder)
    await pipe.drain()
    assert recorder.log[-1] == ("ack", "b0") and not errors


async def test_batches_are_held_in_one_window_while_a_backlog_waits() -> None:
    recorder, errors = Recorder(waits={"b1": LOAD, "b2": LOAD}), []
    pipe, progress = pipeline(recorder, errors)
    await started(pipe, recorder)
    recorder.open("b1")
    await pipe.submit(["b1"])
    await pipe.submit(["b2"])
    await settle()
    log = recorder.log
    assert ("write-start", "b1") not in log
    assert ("prepare", "b2", "on-pending") in log  # on b1's states, not written yet
    assert ("emits", "b2", "b2-emit") in log  # its inputs go out at once
    assert progress.in_flight == 2

    await pipe.submit(["b3"])  # nothing waits any more: the window is carried out as one
    await pipe.drain()
    assert ("merge", "b1", "b2") in log and ("merge", "b1", "b3") in log
    assert [entry for entry in log if entry[0] in ("write-start", "ack")] == [
        ("write-start", "b0"),
        ("ack", "b0"),
        ("write-start", "b1"),
        ("ack", "b1", "b2", "b3"),
    ]
    assert progress.in_flight == 0 and not errors


@pytest.mark.parametrize(("short_s", "held"), [(0.0, False), (60.0, True)])
async def test_a_few_inputs_waiting_hold_a_window_only_briefly(short_s: float, held: bool) -> None:
    recorder, errors = Recorder(waits={"b1": 3}), []
    pipe, _ = pipeline(recorder, errors, WindowLimits(short_s=short_s, idle_s=60))
    await started(pipe, recorder)
    recorder.open("b1")
    await pipe.submit(["b1"])
    await settle()
    assert (("write-start", "b1") not in recorder.log) is held
    await pipe.cancel()


@pytest.mark.parametrize(("still_waiting", "suspended"), [(LOAD, True), (0, False)])
async def test_a_window_with_no_next_batch_is_carried_out_when_idle(
    still_waiting: int, suspended: bool
) -> None:
    """Delivery suspended (a rebalance, a stop), or nothing waits any more."""
    recorder = Recorder(waits={"b1": LOAD, "idle": still_waiting}, suspended=suspended)
    errors: list[BaseException] = []
    pipe, progress = pipeline(recorder, errors, WindowLimits(idle_s=0.01))
    await started(pipe, recorder)
    recorder.open("b1")
    await pipe.submit(["b1"])
    await settle()
    assert ("write-start", "b1") not in recorder.log
    await asyncio.sleep(0.05)
    await settle()
    assert recorder.log[-1] == ("ack", "b1") and progress.in_flight == 0 and not errors


async def test_a_slow_next_batch_keeps_the_window_open_while_input_waits() -> None:
    """A busy machine: no batch for a while, input still waiting, faust delivering."""
    recorder = Recorder(waits={"b1": LOAD, "idle": LOAD})
    errors: list[BaseException] = []
    pipe, _ = pipeline(recorder, errors, WindowLimits(idle_s=0.01, max_s=0.2))
    await started(pipe, recorder)
    recorder.open("b1")
    await pipe.submit(["b1"])
    await asyncio.sleep(0.08)
    await settle()
    assert ("write-start", "b1") not in recorder.log  # idle several times, held on
    await asyncio.sleep(0.3)  # then its age reaches max_s
    await settle()
    assert recorder.log[-1] == ("ack", "b1") and not errors


async def test_a_window_is_closed_at_its_limits() -> None:
    recorder = Recorder(waits={"b1": LOAD, "b2": LOAD})
    errors: list[BaseException] = []
    pipe, _ = pipeline(recorder, errors, WindowLimits(max_inputs=2, idle_s=60))
    await started(pipe, recorder)
    recorder.open("b1", "b2")
    await pipe.submit(["b1"])
    await pipe.submit(["b2"])  # two inputs: the window is full
    await pipe.drain()
    assert ("ack", "b1", "b2") in recorder.log and not errors


async def test_a_refused_write_has_the_open_window_decided_again_batch_by_batch() -> None:
    recorder = Recorder(refuse={"b1"}, waits={"b2": LOAD})
    errors: list[BaseException] = []
    pipe, progress = pipeline(recorder, errors)
    await started(pipe, recorder)
    recorder.open("b1", "b2")
    await pipe.submit(["b1"])  # a window of its own, refused
    await pipe.submit(["b2"])  # held
    await pipe.submit(["b3"])  # closes [b2, b3]
    await pipe.drain()
    log = recorder.log
    again = log[log.index(("complete-end", "b1")) :]
    assert [entry for entry in again if entry[0] in ("prepare", "merge")] == [
        ("prepare", "b2", "on-table"),
        ("prepare", "b3", "on-pending"),  # on b2's states decided again
        ("merge", "b2", "b3"),
    ]
    assert log[-1] == ("ack", "b2", "b3") and progress.in_flight == 0 and not errors


async def test_cancel_drops_the_open_window_unacknowledged() -> None:
    recorder, errors = Recorder(waits={"b1": LOAD}), []
    pipe, progress = pipeline(recorder, errors, WindowLimits(idle_s=0.05))
    await started(pipe, recorder)
    await pipe.drain()
    await pipe.submit(["b1"])
    await pipe.cancel()
    await asyncio.sleep(0.2)  # past the idle delay: nothing more is done with b1
    assert [entry for entry in recorder.log if entry[1:2] == ("b1",)] == [
        ("prepare", "b1", "on-table"),
        ("emits", "b1", "b1-emit"),
    ]
    assert progress.in_flight == 0 and not errors

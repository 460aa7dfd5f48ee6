"""The worker's feed batch and the simulator's route the same: ``replay --dry-run`` predicts it.

Both call the one step :func:`sync.feedbatch.route_batch`; what differs is how they read the
routing table: the worker through :class:`connectors.stream.feed_router.TableView` over the
faust table (raw JSON under byte keys, calendars under keys hashed to their partition, scans
through the batch's memo), the simulator through :class:`sync.simulator.WorldTable`. The same
messages, read by the worker from topic messages (:func:`connectors.stream.feed_router.feed_read`)
and given to the simulator as events and causes, must route to equal outcomes, round after
round (the controls of one round are the next round's messages), from any routing table:
keys fed by a file, rebuilt from the directory (no scope), fed by no complete file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.stream import partition_scans as shell
from connectors.stream.feed_router import TableView, feed_read
from schemas.entities import Cause
from schemas.feed import Category, PupilUpserted
from schemas.lifecycle import FeedTopicMessage
from schemas.state import SourceState
from sync.absence import Guard
from sync.feedbatch import FeedRead, RoutedBatch, StateChange, TableKey, route_batch
from sync.simulator import World, WorldTable, apply_changes
from tests.unit.core_factories import NS, T0, letters, pupil
from tests.unit.lifecycle_helpers import CTX, Clock, snapshot

SCOPES = ("0810001A", "0810002B")
GUARD = Guard(max_share=1.0, min_count=1_000)  # never holds: the scans run to the end


class _Table(dict[bytes, bytes]):
    """A faust table's mapping, as the router reads it (no partition index kept)."""

    data = SimpleNamespace()


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    timestamp: float


@dataclass
class _Event:
    key: bytes
    value: bytes
    message: _Message


def _table_of(world: World) -> _Table:
    table = _Table()
    for key, state in world.sources.items():
        table[key.encode()] = state.model_dump_json().encode()
    for key, scope in world.scopes.items():
        table[key.encode()] = scope.model_dump_json().encode()
    table[shell.year_key(0, 1)] = world.year.model_dump_json().encode()
    return table


def _write(table: _Table, changes: dict[TableKey, StateChange]) -> None:
    for key, change in changes.items():
        raw = key.encode() if isinstance(key, str) else shell.year_key(key.partition, 1)
        if change.state is None:
            table.pop(raw, None)
        else:
            table[raw] = change.state.model_dump_json().encode()


def _as_event(read: FeedRead, offset: int) -> _Event:
    at = read.cause.at.timestamp()
    message = _Message("entsync.feed.v1", read.partition, offset, at)
    value = FeedTopicMessage(read.message).model_dump_json().encode()
    return _Event(read.key.encode(), value, message)


def _pupil(school: int, n: int) -> PupilUpserted:
    return pupil(f"P{school}-{n}", first=letters(10 * school + n), school_jointure=f"S{school}")


def _world(pupils: int, restored: set[int], unscoped: set[int]) -> World:
    """Pupils of two schools fed by complete extracts, some of them then rebuilt from the
    directory (no scope, their school's UAI kept) or fed by no complete file."""
    clock = Clock()
    for s, scope in enumerate(SCOPES):
        records = [_pupil(s, n) for n in range(pupils)]
        clock.feed(snapshot(Category.PUPILS, scope, f"{s}" * 64, records))
    world = clock.world
    for n, key in enumerate(sorted(world.sources)):
        state = world.sources[key]
        if state.category != Category.PUPILS:
            continue
        if n in restored:
            update: dict[str, Any] = {"scope": None, "restored_uais": (state.scope,)}
            world.sources[key] = state.model_copy(update=update)
        elif n in unscoped:
            world.sources[key] = state.model_copy(update={"scope": None})
    return world


def _same(worker: RoutedBatch, simulator: RoutedBatch) -> None:
    assert worker.changes == simulator.changes
    assert worker.inputs == simulator.inputs
    assert worker.controls == simulator.controls
    assert worker.decisions == simulator.decisions
    assert worker.records == simulator.records


@settings(max_examples=25)
@given(
    pupils=st.integers(1, 5),
    restored=st.sets(st.integers(0, 12)),
    unscoped=st.sets(st.integers(0, 12)),
    stay=st.sets(st.integers(0, 4)),
    scope=st.sampled_from(SCOPES),
)
def test_the_worker_and_the_simulator_route_every_round_alike(
    pupils: int, restored: set[int], unscoped: set[int], stay: set[int], scope: str
) -> None:
    world = _world(pupils, restored, unscoped)
    table = _table_of(world)
    s = SCOPES.index(scope)
    later = [_pupil(s, n) for n in sorted(stay) if n < pupils]
    messages = snapshot(Category.PUPILS, scope, "9" * 64, later)
    at = T0 + timedelta(days=30)
    causes = [
        Cause(topic="entsync.feed.v1", partition=0, offset=100 + i, rule=f"feed.{m.type}",
              at=at + timedelta(seconds=i))
        for i, m in enumerate(messages)
    ]  # fmt: skip
    reads = [
        FeedRead(m.key, m, c, 0, c.at.timestamp()) for m, c in zip(messages, causes, strict=True)
    ]
    offset = 1_000
    removed: set[str] = set()
    before = dict(world.sources)
    for _ in range(6):  # a snapshot, its tally scans, the tallies, its apply scans
        events = [_as_event(r, offset + i) for i, r in enumerate(reads)]
        offset += len(events)
        from_topic = [feed_read(e) for e in events]  # as the worker reads them
        worker = route_batch(
            from_topic, TableView(table, 1), partitions=1, namespace=NS, guard=GUARD
        )
        simulator = route_batch(
            from_topic, WorldTable(world), partitions=1, namespace=CTX.namespace, guard=GUARD
        )
        _same(worker, simulator)
        _write(table, worker.changes)
        apply_changes(world, simulator.changes)
        removed |= {
            k
            for k, c in worker.changes.items()
            if isinstance(k, str) and isinstance(c.state, SourceState) and c.state.version is None
        }
        if not worker.controls:
            break
        reads = [
            FeedRead(
                c.message.key,
                c.message,
                causes[-1].model_copy(update={"rule": f"feed.{c.message.type}"}),
                c.partition or 0,
                c.timestamp,
            )
            for c in worker.controls
        ]
    else:
        raise AssertionError("the snapshot's controls did not settle")
    # Every pupil of the scope absent from the later extract was judged absent, rebuilt ones
    # included; those fed by no complete file, or by the other school's, were not. (An empty
    # extract is held, whatever the guard: nothing is absent then.)
    kept = {f"pupil:P{s}-{n}" for n in stay}
    absent = {
        key
        for key, state in before.items()
        if state.category == Category.PUPILS
        and key not in kept
        and (state.scope == scope or (state.scope is None and state.restored_uais == (scope,)))
    }
    assert removed == (absent if later else set())

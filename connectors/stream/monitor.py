"""The worker's metrics that are counts of its tables, its readiness, and its metrics server.

Accounts by lifecycle state and profile, and the holds waiting for someone, are counts over
the worker's tables. Counting the tables at every scrape would walk a million states each time
(seconds of the event loop); so they are counted once when the tables are recovered (each
rebalance, on the raw JSON: a few ``bytes.find`` per state, no parsing), then kept by the
reconciler and the router at each state change they write (the before and after states are at
hand there). Each worker counts the partitions it holds: Prometheus sums the workers.

The last successful snapshot per category and scope is not in the tables (the coordinator keeps
the last snapshot's id, not its time): it is read once from ``entsync.lifecycle.v1`` when the
worker starts (in the background, not delaying it), then set at each decision.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import mode
import structlog

from connectors.monitoring import metrics as m
from connectors.monitoring.server import Check, HealthServer
from connectors.stream.clients import KafkaParams
from connectors.stream.faust_compat import access
from connectors.stream.partition_scans import string_field
from connectors.stream.ports import FaustApp
from connectors.stream.reader import read_topic
from schemas.lifecycle import ScopeState, SnapshotDecision
from schemas.state import EntityState
from sync.feedbatch import State
from sync.ids import PERSON_KINDS

log = structlog.get_logger(__name__)

Facets = tuple[tuple[str, str] | None, tuple[str, ...]]  # (state, profile), hold kinds
_KIND = b'"kind":"'  # the first one is the state's own: it is its third field
_STATE = b'"account_state":"'
_INE_CONFLICT = b'"ine_conflict_at":"'  # null when there is none
_LOGIN_HELD = b'"held_reason":"'
_PERSONS = frozenset(k.encode() for k in PERSON_KINDS)
_SNAPSHOT_KEY = b"snapshot:"


def raw_facets(raw: bytes) -> Facets:
    """What an entity state counts for, from its JSON (as :func:`facets`)."""
    kind = string_field(raw, _KIND)
    if kind not in _PERSONS:
        return None, ()
    state = string_field(raw, _STATE)
    account = None if state is None else (state.decode(), kind.decode())
    holds: tuple[str, ...] = ("ine_conflict",) if _INE_CONFLICT in raw else ()
    if _LOGIN_HELD in raw:
        holds += ("login",)
    return account, holds


def facets(state: EntityState | None) -> Facets:
    """(account state, profile) of a person with a record, and the holds it is in."""
    if state is None or state.kind not in PERSON_KINDS:
        return None, ()
    account = None if state.account_state is None else (state.account_state, state.kind)
    holds: tuple[str, ...] = ("ine_conflict",) if state.ine_conflict_at is not None else ()
    if state.held_reason is not None:
        holds += ("login",)
    return account, holds


class Tally:
    """Accounts by (state, profile) and entity holds by kind, pushed to their gauges."""

    def __init__(self) -> None:
        self.accounts: Counter[tuple[str, str]] = Counter()
        self.holds: Counter[str] = Counter()
        self.snapshot_holds: dict[bytes, int] = {}  # scope key -> held snapshots

    def recount(self, entities: Mapping[bytes, bytes], sources: Mapping[bytes, bytes]) -> None:
        accounts: Counter[tuple[str, str]] = Counter()
        holds: Counter[str] = Counter()
        for raw in entities.values():
            account, kinds = raw_facets(raw)
            if account is not None:
                accounts[account] += 1
            holds.update(kinds)
        self.accounts, self.holds = accounts, holds
        self.snapshot_holds = {
            key: held_snapshots(ScopeState.model_validate_json(raw))
            for key, raw in sources.items()
            if key.startswith(_SNAPSHOT_KEY)
        }
        m.ACCOUNTS.clear()  # combinations of partitions this worker no longer holds
        self._publish()

    def changed(self, pairs: Iterable[tuple[EntityState | bytes | None, EntityState]]) -> None:
        """Entities whose state goes from the first (an object or its JSON) to the second."""
        for before, after in pairs:
            old = raw_facets(before) if isinstance(before, bytes) else facets(before)
            new = facets(after)
            if old == new:
                continue
            if old[0] is not None:
                self.accounts[old[0]] -= 1
            if new[0] is not None:
                self.accounts[new[0]] += 1
            self.holds.subtract(old[1])
            self.holds.update(new[1])
        self._publish()

    def scope_changed(self, key: bytes, state: State | None) -> None:
        """A snapshot coordinator's state written (None: removed)."""
        if key.startswith(_SNAPSHOT_KEY):
            held = held_snapshots(state) if isinstance(state, ScopeState) else 0
            self.snapshot_holds[key] = held
            m.HOLDS_PENDING.labels("snapshot").set(sum(self.snapshot_holds.values()))

    def _publish(self) -> None:
        for (state, profile), count in self.accounts.items():
            m.ACCOUNTS.labels(state, profile).set(count)
        for kind in ("ine_conflict", "login"):
            m.HOLDS_PENDING.labels(kind).set(self.holds[kind])
        m.HOLDS_PENDING.labels("snapshot").set(sum(self.snapshot_holds.values()))


def held_snapshots(state: ScopeState) -> int:
    return sum(1 for pending in state.pending.values() if pending.outcome == "held")


def snapshot_decided(decision: SnapshotDecision, counted: bool = True) -> None:
    """A decision on a complete snapshot: counted (unless read back at start), and its time."""
    category = decision.category.value
    if counted:
        m.SNAPSHOTS_DECIDED.labels(category, decision.outcome).inc()
    if decision.outcome in m.SUCCESSFUL_SNAPSHOTS:
        gauge = m.SNAPSHOT_LAST_SUCCESS.labels(category, m.scope_label(decision.scope))
        at = decision.at.timestamp()
        if at > gauge._value.get():  # replays and late reads never move it back
            gauge.set(at)


async def seed_snapshot_times(kafka: KafkaParams, topic: str) -> None:
    """The last successful snapshot of every category and scope, from the decisions topic."""
    try:
        records = await read_topic(kafka, topic)
    except Exception as exc:  # the gauge fills at the next decision instead
        log.warning("metrics.snapshot_times_unread", error=type(exc).__name__)
        return
    for record in records:
        if record.value:
            snapshot_decided(SnapshotDecision.model_validate_json(record.value), counted=False)


def update_lag(app: FaustApp, topics: Iterable[str]) -> None:
    """Consumer lag of the assigned partitions of ``topics``: end offset minus committed."""
    consumer = app.consumer
    wanted = set(topics)
    committed = access.committed_offsets(consumer)
    m.CONSUMER_LAG.clear()  # partitions move away at a rebalance
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        end = consumer.highwater(tp)
        if end is not None:
            lag = max(0, end - (committed.get(tp) or 0))
            m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)


def worker_checks(app: FaustApp, topics: Iterable[str]) -> dict[str, Check]:
    """/readyz of a worker: its tables recovered, and partitions of its input topics assigned."""
    wanted = set(topics)

    async def recovered() -> str | None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return "recovering tables"
        return None

    async def assigned() -> str | None:
        if not any(tp.topic in wanted for tp in app.consumer.assignment()):
            return "no partition assigned"
        return None

    return {"tables": recovered, "partitions": assigned}


class MetricsService(mode.Service):
    """The health server as a service of faust's worker: it runs in the worker's loop."""

    def __init__(self, server: HealthServer, **kwargs: Any) -> None:  # mode.Service's own
        super().__init__(**kwargs)
        self._server = server

    async def on_start(self) -> None:
        await self._server.start()

    async def on_stop(self) -> None:
        await self._server.stop()


class BatchTimer:
    """Times one batch of an agent into ``entsync_batch_seconds``."""

    def __init__(self, agent: str, events: int) -> None:
        self._agent = agent
        self._started = time.monotonic()
        m.BATCH_EVENTS.labels(agent).inc(events)

    def done(self) -> None:
        m.BATCH_SECONDS.labels(self._agent).observe(time.monotonic() - self._started)

"""The lifecycle at the edges: partition-wide scans of the faust tables, control messages.

The rules are in :mod:`sync.absence` and :mod:`sync.lifecycle`; this module only finds the
states a rule must look at and addresses messages to partitions:

- a key belongs to the partition the producer's default partitioner gives it (murmur2 of the key,
  as for the messages and for the tables' changelogs, ``use_partitioner=True``), so each copy of a
  partition-wide request looks at the keys of its own partition only, whichever worker holds them;
- per-partition memory (the school-year calendar) is kept under a key chosen to hash to that very
  partition, so it moves with the partition on a rebalance.

Scans group a table's states by partition, scope and category once per batch, on the raw JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import cache
from typing import TypeAlias

from aiokafka.partitioner import DefaultPartitioner
from pydantic import BaseModel

from connectors.stream.ports import Table
from connectors.stream.statestore import get_in_partition, partition_items, partitioned_items
from schemas.entities import LIFECYCLE_ENTITY, Cause, SweepRequested, SwitchoverRequested
from schemas.lifecycle import SchoolYearState
from schemas.state import EntityState, SourceState
from schemas.topics import ENTITIES
from sync.absence import scan_candidate

_partitioner = DefaultPartitioner()
YEAR_KEY_PREFIX = "year@"

Overlaid: TypeAlias = BaseModel | bytes | None
"""A key's state changed earlier in the batch or window: a model, its JSON, or None (removed)."""


_ranges: dict[int, list[int]] = {}


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the default partitioner gives ``key`` among ``partitions``."""
    every = _ranges.get(partitions)
    if every is None:
        every = _ranges[partitions] = list(range(partitions))
    chosen: int = _partitioner(key, every, every)
    return chosen


@cache
def year_key(partition: int, partitions: int) -> bytes:
    """A table key for partition ``partition``'s calendar that hashes to that partition."""
    for n in range(100_000):
        key = f"{YEAR_KEY_PREFIX}{partition}.{n}".encode()
        if partition_of(key, partitions) == partition:
            return key
    raise RuntimeError("no key hashes to this partition")  # pragma: no cover: murmur2 spreads


def is_control_key(key: bytes) -> bool:
    return key.startswith((b"snapshot:", YEAR_KEY_PREFIX.encode()))


def read_year(table: Mapping[bytes, bytes], partition: int, partitions: int) -> SchoolYearState:
    raw = table.get(year_key(partition, partitions))
    return SchoolYearState() if raw is None else SchoolYearState.model_validate_json(raw)


def local_states(
    table: Table | Mapping[bytes, bytes],
    overlay: Mapping[bytes, Overlaid],
    partition: int,
    partitions: int,
    needle: Callable[[bytes], bool],
) -> Iterator[tuple[bytes, bytes]]:
    """(key, raw JSON) of the table's states of ``partition``, batch overlay first, pre-filtered.

    ``overlay`` maps keys changed earlier in the current batch (or window) to their new state (a
    pydantic model or its JSON, or None when removed); those win over the table.
    """
    for key, state in overlay.items():
        if state is not None and partition_of(key, partitions) == partition:
            raw = state if isinstance(state, bytes) else state.model_dump_json().encode()
            if needle(raw):
                yield key, raw
    # A table kept in RocksDB reads the partition's own database (statestore).
    for key, raw in partition_items(table, partition, lambda k: partition_of(k, partitions)):
        if key not in overlay and needle(raw):
            yield key, raw


class ScanMemo:
    """What the scans of one batch share: the table's feed keys grouped by partition, scope
    and category, read once.

    A full extract's last batch carries a scan per snapshot and partition (one per school and
    category: hundreds in an academy). Without it each scan hashed every key of the table and
    parsed every state of its partition again; with it the table is walked once per batch and
    a scan visits its own snapshot's keys only. The table is read when the first scan asks:
    a memo lives for one batch of ``route_feed``, the table's only writer, which writes it after
    the batch (the batch's own changes are in the overlay of :func:`source_states`). The memo
    keeps keys only, and a scan reads and parses its own keys' states: its memory is the keys
    of the table, not a copy of it (the table is on disk, see
    :mod:`connectors.stream.statestore`).
    """

    def __init__(self, partitions: int, *known: Mapping[bytes, int]) -> None:
        """``known``: key -> partition maps, looked up in order, for keys whose partition is
        already known (hashing a key costs more than the rest of its scan)."""
        self.partitions = partitions
        self._partition: dict[bytes, int] = {}
        self._known = known
        self._groups: dict[tuple[int, str], dict[str | None, list[bytes]]] | None = None

    def partition(self, key: bytes) -> int:
        for known in self._known:
            found = known.get(key)
            if found is not None:
                return found
        found = self._partition.get(key)
        if found is None:
            found = self._partition[key] = partition_of(key, self.partitions)
        return found

    def source_state(self, key: bytes, raw: bytes) -> SourceState:
        return SourceState.model_validate_json(raw)

    def states_of(
        self, table: Table | Mapping[bytes, bytes], partition: int, scope: str, category: str | None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, raw state) of the table's feed keys of ``partition`` fed by ``scope``, of
        ``category`` (None: of any category), then those rebuilt from the directory (no scope:
        :func:`sync.absence.scan_candidate`)."""
        yield from self._group(table, partition, scope, category)
        yield from self._group(table, partition, _RESTORED, category)

    def _group(
        self, table: Table | Mapping[bytes, bytes], partition: int, scope: str, category: str | None
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._groups is None:
            self._groups = {}
            # A table in RocksDB is read partition by partition: no key is hashed (statestore).
            for partition_read, key, raw in partitioned_items(table):
                if is_control_key(key):
                    continue
                found = self._scope_and_category(key, raw)
                if found is not None:
                    where = self.partition(key) if partition_read is None else partition_read
                    by_category = self._groups.setdefault((where, found[0]), {})
                    by_category.setdefault(found[1], []).append(key)
        by_category = self._groups.get((partition, scope), {})
        groups = [by_category.get(category, [])] if category is not None else by_category.values()
        for keys in groups:
            for key in keys:
                value = get_in_partition(table, partition, key)
                if value is not None:
                    yield key, value

    def _scope_and_category(self, key: bytes, raw: bytes) -> tuple[str, str | None] | None:
        """A state's scope (None: in no scope) and category, from its raw JSON if plain; a state
        rebuilt from the directory is in the group of every scope (``_RESTORED``)."""
        scope = string_field(raw, _SCOPE)
        if scope is None:
            if _RESTORED_UAIS not in raw:
                return None
            state = self.source_state(key, raw)
            if state.scope is not None or state.restored_uais is None:
                return None
            return _RESTORED, None if state.category is None else state.category.value
        category = string_field(raw, _CATEGORY)
        if b"\\" in scope or (category is not None and b"\\" in category):
            state = self.source_state(key, raw)  # an escape in the JSON string: parse it
            if state.scope is None:
                return None
            return state.scope, None if state.category is None else state.category.value
        return scope.decode(), None if category is None else category.decode()


# SourceState is a flat JSON object: a quote inside a string value is escaped, so these cannot
# match inside another field's value.
_SCOPE = b'"scope":"'
_RESTORED_UAIS = b'"restored_uais":['
_RESTORED = "\x00restored"  # the group of the states rebuilt from the directory: no scope
_CATEGORY = b'"category":"'


def string_field(raw: bytes, marker: bytes) -> bytes | None:
    """The raw value of a JSON string field (None: absent or null), up to its first quote."""
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find(b'"', start)  # at an escaped quote, the value has a backslash: parsed
    return None if end < 0 else raw[start:end]


def source_states(
    table: Table | Mapping[bytes, bytes],
    overlay: Mapping[bytes, Overlaid],
    partition: int,
    partitions: int,
    scope: str,
    memo: ScanMemo | None = None,
    category: str | None = None,
) -> Iterator[tuple[bytes, SourceState]]:
    """Feed-key states of ``partition`` fed by files of ``scope`` (and of ``category`` if
    given), and those rebuilt from the directory (in no scope yet, their schools' UAIs kept:
    :func:`sync.absence.in_scope` judges them), batch overlay first.

    ``overlay``: keys changed earlier in the batch (a state, or None when removed; control keys
    hold other models), which win over the table.
    """
    memo = memo or ScanMemo(partitions)

    def wanted(state: SourceState) -> bool:
        if category is not None:
            return scan_candidate(state, scope, category)
        return state.scope == scope or (state.scope is None and state.restored_uais is not None)

    for key, state in overlay.items():
        if isinstance(state, SourceState) and wanted(state) and memo.partition(key) == partition:
            yield key, state
    for key, raw in memo.states_of(table, partition, scope, category):
        if key in overlay:
            continue
        state = memo.source_state(key, raw)
        if wanted(state):
            yield key, state


_SWEEPABLE = (
    b'"account_state":"disappeared"',
    b'"account_state":"predeleted"',
    b'"blocks":{"',  # school profile groups with bulk blocks to lift
)


def sweepable_states(
    table: Table | Mapping[bytes, bytes],
    overlay: Mapping[bytes, EntityState | bytes],
    partition: int,
    partitions: int,
) -> Iterator[tuple[bytes, EntityState]]:
    """Entities of ``partition`` the sweeper may move on (disappeared or predeleted persons,
    groups with blocks)."""

    def needle(raw: bytes) -> bool:
        return any(marker in raw for marker in _SWEEPABLE)

    for key, raw in local_states(table, overlay, partition, partitions, needle):
        yield key, EntityState.model_validate_json(raw)


def switchover_states(
    table: Table | Mapping[bytes, bytes],
    overlay: Mapping[bytes, EntityState | bytes],
    partition: int,
    partitions: int,
) -> Iterator[tuple[bytes, EntityState]]:
    """Pupils and class groups with teachers of ``partition``: what a switchover touches."""

    def needle(raw: bytes) -> bool:
        return b'"kind":"pupil"' in raw or (
            b'"kind":"group"' in raw and b'"class_teachers":{"' in raw
        )

    for key, raw in local_states(table, overlay, partition, partitions, needle):
        yield key, EntityState.model_validate_json(raw)


def sweep_requests(now: datetime, partitions: int) -> list[SweepRequested]:
    """One sweep request per partition of the entities topic."""
    cause = Cause(topic=ENTITIES.name, rule="lifecycle.sweep", at=now)
    return [
        SweepRequested(entity_id=LIFECYCLE_ENTITY, cause=cause, now=now, partition=p)
        for p in range(partitions)
    ]


def switchover_requests(
    school_year: str, at: datetime, partitions: int
) -> list[SwitchoverRequested]:
    cause = Cause(topic=ENTITIES.name, rule="lifecycle.switchover", at=at)
    return [
        SwitchoverRequested(
            entity_id=LIFECYCLE_ENTITY, cause=cause, school_year=school_year, at=at, partition=p
        )
        for p in range(partitions)
    ]

"""The lifecycle at the edges: partition-wide scans of the faust tables, control messages.

The rules are in :mod:`sync.absence` and :mod:`sync.lifecycle`; this module only finds the
states a rule must look at and addresses messages to partitions:

- a key belongs to the partition the producer's default partitioner gives it (murmur2 of the key,
  as for the messages and for the tables' changelogs, ``use_partitioner=True``), so each copy of a
  partition-wide request looks at the keys of its own partition only, whichever worker holds them;
- per-partition memory (the school-year calendar) is kept under a key chosen to hash to that very
  partition, so it moves with the partition on a rebalance.

Scans read every state of a table; they first skip, on the raw JSON, states that cannot match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from entsync.settings import Settings
from schemas.entities import LIFECYCLE_ENTITY, Cause, SweepRequested, SwitchoverRequested
from schemas.lifecycle import SchoolYearState
from schemas.state import EntityState, SourceState
from schemas.topics import ENTITIES
from sync.absence import Guard
from sync.lifecycle import Policy

_partitioner = DefaultPartitioner()
YEAR_KEY_PREFIX = "year@"


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the default partitioner gives ``key`` among ``partitions``."""
    chosen: int = _partitioner(key, list(range(partitions)), list(range(partitions)))
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
    table: Mapping[bytes, bytes],
    overlay: Mapping[bytes, Any],
    partition: int,
    partitions: int,
    needle: Callable[[bytes], bool],
) -> Iterator[tuple[bytes, bytes]]:
    """(key, raw JSON) of the table's states of ``partition``, batch overlay first, pre-filtered.

    ``overlay`` maps keys changed earlier in the current batch to their new state (a pydantic
    model, or None when removed); those win over the table.
    """
    for key, state in overlay.items():
        if state is not None and partition_of(key, partitions) == partition:
            raw = state.model_dump_json().encode()
            if needle(raw):
                yield key, raw
    for key, raw in list(table.items()):
        if key in overlay or not needle(raw):
            continue
        if partition_of(key, partitions) == partition:
            yield key, raw


class ScanMemo:
    """What the scans of one batch share: each table key's partition, each raw state parsed,
    and the table's feed keys grouped by (partition, scope).

    A full extract's last batch carries a scan per snapshot and partition (one per school and
    category: hundreds in an academy). Without it each scan hashed every key of the table and
    parsed every state of its partition again; with it the table is walked once per batch and
    a scan visits its own scope's keys only. The grouping is taken when the first scan asks
    and assumes the table does not gain keys or move keys between scopes while the memo lives
    (the agent writes its table after the batch); a key's value is read again at each scan,
    and a parsed state is reused only while the table holds the very same raw value.
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._partition: dict[bytes, int] = {}
        self._parsed: dict[bytes, tuple[bytes, SourceState]] = {}
        self._by_scope: dict[tuple[int, bytes], list[bytes]] | None = None

    def partition(self, key: bytes) -> int:
        found = self._partition.get(key)
        if found is None:
            found = self._partition[key] = partition_of(key, self.partitions)
        return found

    def source_state(self, key: bytes, raw: bytes) -> SourceState:
        known = self._parsed.get(key)
        if known is not None and known[0] == raw:
            return known[1]
        state = SourceState.model_validate_json(raw)
        self._parsed[key] = (raw, state)
        return state

    def keys_of(self, table: Mapping[bytes, bytes], partition: int, scope: str) -> list[bytes]:
        """The table's feed keys of ``partition`` whose state names ``scope``."""
        if self._by_scope is None:
            self._by_scope = {}
            for key, raw in list(table.items()):
                found = _scope_in(raw)
                if found is not None and not is_control_key(key):
                    group = (self.partition(key), found)
                    self._by_scope.setdefault(group, []).append(key)
        return self._by_scope.get((partition, scope.encode()), [])


_SCOPE = b'"scope":"'


def _scope_in(raw: bytes) -> bytes | None:
    """The scope a state's raw JSON names, unparsed (None: no scope)."""
    start = raw.find(_SCOPE)
    if start < 0:
        return None
    start += len(_SCOPE)
    end = raw.find(b'"', start)
    return None if end < 0 else raw[start:end]


def source_states(
    table: Mapping[bytes, bytes],
    overlay: Mapping[bytes, Any],
    partition: int,
    partitions: int,
    scope: str,
    memo: ScanMemo | None = None,
) -> Iterator[tuple[bytes, SourceState]]:
    """Feed-key states of ``partition`` fed by files of ``scope``, batch overlay first.

    ``overlay``: keys changed earlier in the batch (a state, or None when removed; control keys
    hold other models), which win over the table.
    """
    memo = memo or ScanMemo(partitions)
    for key, state in overlay.items():
        if (
            isinstance(state, SourceState)
            and state.scope == scope
            and memo.partition(key) == partition
        ):
            yield key, state
    for key in memo.keys_of(table, partition, scope):
        raw = table.get(key)
        if raw is None or key in overlay:
            continue
        state = memo.source_state(key, raw)
        if state.scope == scope:
            yield key, state


_SWEEPABLE = (
    b'"account_state":"disappeared"',
    b'"account_state":"predeleted"',
    b'"blocks":{"',  # school profile groups with bulk blocks to lift
)


def sweepable_states(
    table: Mapping[bytes, bytes],
    overlay: Mapping[bytes, EntityState],
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
    table: Mapping[bytes, bytes],
    overlay: Mapping[bytes, EntityState],
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


def policy_from(settings: Settings) -> Policy:
    """The sweeper's delays per profile from the configuration."""
    s = settings
    predelete = {
        "pupil": s.lifecycle_predelete_days_pupil,
        "guardian": s.lifecycle_predelete_days_guardian,
        "staff": s.lifecycle_predelete_days_staff,
    }
    delete = {
        "pupil": s.lifecycle_delete_days_pupil,
        "guardian": s.lifecycle_delete_days_guardian,
        "staff": s.lifecycle_delete_days_staff,
    }
    return Policy(
        predelete_after={
            k: timedelta(days=v or s.lifecycle_predelete_days) for k, v in predelete.items()
        },
        delete_after={k: timedelta(days=v or s.lifecycle_delete_days) for k, v in delete.items()},
        default_predelete=timedelta(days=s.lifecycle_predelete_days),
        default_delete=timedelta(days=s.lifecycle_delete_days),
    )


def guard_from(settings: Settings) -> Guard:
    return Guard(
        max_share=settings.lifecycle_guard_share,
        min_count=settings.lifecycle_guard_min_count,
        grace=timedelta(days=settings.lifecycle_grace_days),
    )


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

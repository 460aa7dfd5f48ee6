"""Replay, the pure part: the external inputs of the topics, in the order they happened; the
stages a replay feeds them in; the directory they predict; its difference with a directory.

The *external* inputs of the system are what people and files said: the feed topic's ingest
events and operator controls (``hold.decided``, ``year.command``), and the entities topic's
operator commands (``admin.*``, ``lifecycle.sweep``, ``lifecycle.switchover``). Everything else
on those topics (snapshot scans and tallies, records, links and logins the agents send each
other) was derived from them and is derived again by a replay, never copied.

Inputs are merged by broker timestamp; each partition keeps its own order whatever its
timestamps. A replay feeds them in *stages*, letting the system settle between two: before and
after every operator command (the operator gave it once the system had settled), and after every
complete snapshot (its absence is judged before the next extract arrives). Partition-wide
requests (one copy per partition) form one command; the pure driver applies it once.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError

from schemas.entities import (
    Cause,
    EntityInput,
    EntityMessage,
    SweepRequested,
    SwitchoverRequested,
)
from schemas.feed import FeedEvent, SnapshotCompleted
from schemas.lifecycle import (
    FeedTopicMessage,
    HoldDecided,
    SnapshotScan,
    SnapshotTally,
    YearCommand,
)
from sync import absence, lifecycle
from sync.bridge import BRIDGE_ATTRIBUTES
from sync.causes import message_cause
from sync.reconcile import Context
from sync.simulator import Directory, World, run_to_quiescence, sweep_world, switch_year_world

Role = Literal["feed", "entities"]
Action = Literal["add", "modify", "delete"]
External = FeedEvent | HoldDecided | YearCommand | EntityInput

COMMAND_TYPE_PREFIXES = ("admin.", "lifecycle.")
"""Types of the operator commands on the entities topic (every ``admin.*`` command, the
partition-wide sweeps and switchovers)."""
ENTITY_COMMAND_TYPES = tuple(f'"type":"{p}'.encode() for p in COMMAND_TYPE_PREFIXES)


class ReplayInputError(ValueError):
    """A message of a topic that breaks its contract (named by topic, partition and offset)."""


@dataclass(frozen=True)
class TopicRecord:
    """One message as read from a topic (no consumer types: the core stays I/O free)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ExternalInput:
    role: Role
    record: TopicRecord
    message: External

    @property
    def at(self) -> datetime:
        """The broker time, computed as the worker computes its causes' times."""
        return datetime.fromtimestamp(self.record.timestamp_ms / 1000.0, tz=UTC)

    @property
    def is_command(self) -> bool:
        return self.role == "entities" or isinstance(self.message, HoldDecided | YearCommand)

    def command_key(self) -> str:
        """Equal for the per-partition copies of one partition-wide command."""
        if isinstance(self.message, YearCommand | SweepRequested | SwitchoverRequested):
            return self.message.model_copy(update={"partition": 0}).model_dump_json()
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"


def _where(record: TopicRecord) -> str:
    return f"{record.topic} partition {record.partition} offset {record.offset}"


def _invalid(record: TopicRecord, exc: ValidationError) -> ReplayInputError:
    # The error's location and type only: the input itself may hold personal data.
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(root)"
    return ReplayInputError(f"{_where(record)}: not a valid message ({loc}: {first['type']})")


def feed_inputs(records: Iterable[TopicRecord]) -> Iterator[ExternalInput]:
    """The external inputs of the feed topic: ingest events, hold decisions, year commands."""
    for record in records:
        if record.value is None:
            continue
        try:
            message = FeedTopicMessage.model_validate_json(record.value).root
        except ValidationError as exc:
            raise _invalid(record, exc) from exc
        if isinstance(message, SnapshotScan | SnapshotTally):
            continue  # derived by the coordinators: derived again
        yield ExternalInput("feed", record, message)


def entity_commands(records: Iterable[TopicRecord]) -> Iterator[ExternalInput]:
    """The operator commands of the entities topic (admin commands, sweeps, switchovers)."""
    for record in records:
        if record.value is None or not any(m in record.value for m in ENTITY_COMMAND_TYPES):
            continue
        try:
            message = EntityMessage.model_validate_json(record.value).root
        except ValidationError as exc:
            raise _invalid(record, exc) from exc
        if message.type.startswith(COMMAND_TYPE_PREFIXES):
            yield ExternalInput("entities", record, message)


def merge(inputs: Iterable[ExternalInput]) -> list[ExternalInput]:
    """One timeline by broker time; each partition's own order is kept whatever its times."""
    lanes: dict[tuple[str, int], list[ExternalInput]] = {}
    for item in inputs:
        lanes.setdefault((item.record.topic, item.record.partition), []).append(item)
    for lane in lanes.values():
        lane.sort(key=lambda i: i.record.offset)
    rank = {"feed": 0, "entities": 1}

    def order(i: ExternalInput) -> tuple[int, int, int, int]:
        return (i.record.timestamp_ms, rank[i.role], i.record.partition, i.record.offset)

    return list(heapq.merge(*(lanes[k] for k in sorted(lanes)), key=order))


def window(inputs: Sequence[ExternalInput], until: datetime | None) -> list[ExternalInput]:
    """The inputs up to ``until`` (included); all of them without it."""
    return list(inputs) if until is None else [i for i in inputs if i.at <= until]


def stages(
    inputs: Sequence[ExternalInput], *, cut_at: datetime | None = None
) -> list[tuple[ExternalInput, ...]]:
    """Consecutive groups the system settles between (see the module doc); ``cut_at`` also
    starts a stage at the first input at or after it."""
    out: list[tuple[ExternalInput, ...]] = []
    current: list[ExternalInput] = []
    command: str | None = None  # command key of the current stage, if it is a command

    def close() -> None:
        nonlocal current, command
        if current:
            out.append(tuple(current))
        current, command = [], None

    cut_done = cut_at is None
    for item in inputs:
        if not cut_done and cut_at is not None and item.at >= cut_at:
            close()
            cut_done = True
        if item.is_command:
            key = item.command_key()
            if key != command:
                close()
                command = key
            current.append(item)
            continue
        if command is not None:
            close()
        current.append(item)
        if isinstance(item.message, SnapshotCompleted):
            close()
    close()
    return out


# ------------------------------------------------------------------------- the pure prediction


def cause_of(item: ExternalInput, rule: str | None = None) -> Cause:
    """The cause the worker gives this input (see ``connectors.stream.outbox.cause_from``)."""
    return message_cause(
        topic=item.record.topic,
        partition=item.record.partition,
        offset=item.record.offset,
        at=item.at,
        rule=rule or f"feed.{item.message.type}",
        source=getattr(item.message, "source", None),
    )


@dataclass
class Prediction:
    """The directory the inputs give, the entries changed by those at or after ``since``, and
    every entry any input wrote (``sync.history``: what the history explains), DNs case-folded."""

    world: World
    touched: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    inputs: int = 0
    stages: int = 0

    @property
    def directory(self) -> Directory:
        return self.world.directory


def _run_stage(
    world: World,
    stage: Sequence[ExternalInput],
    ctx: Context,
    guard: absence.Guard,
    policy: lifecycle.Policy,
) -> set[str]:
    """Play one stage on ``world``; the DNs it wrote."""
    first = stage[0]
    message = first.message
    if isinstance(message, SweepRequested):
        cause = cause_of(first, message.cause.rule)
        result = sweep_world(world, message.now, policy=policy, cause=cause, ctx=ctx)
    elif isinstance(message, SwitchoverRequested):
        cause = cause_of(first, message.cause.rule)
        result = switch_year_world(world, message.at, cause=cause, ctx=ctx)
    elif first.role == "entities":  # an admin command, decided by its entity
        admin: list[EntityInput] = [message]  # type: ignore[list-item]
        result = run_to_quiescence((), ctx=ctx, guard=guard, world=world, inputs=admin)
    else:
        # Feed events, or one hold decision, or one year command (its copies applied once).
        items = stage[:1] if isinstance(message, YearCommand) else stage
        events = [(i.message, cause_of(i)) for i in items]
        result = run_to_quiescence(events, ctx=ctx, guard=guard, world=world)  # type: ignore[arg-type]
    return {op.dn.lower() for op in result.ops}


def predict(
    inputs: Sequence[ExternalInput],
    *,
    ctx: Context,
    guard: absence.Guard,
    policy: lifecycle.Policy,
    since: datetime | None = None,
) -> Prediction:
    """Run the pure core over ``inputs`` (merged, windowed) stage by stage."""
    prediction = Prediction(World(), inputs=len(inputs))
    for stage in stages(inputs, cut_at=since):
        written = _run_stage(prediction.world, stage, ctx, guard, policy)
        prediction.stages += 1
        prediction.written |= written
        if since is None or stage[0].at >= since:
            prediction.touched |= written
    return prediction


# ------------------------------------------------------------------------------- the difference

IGNORED_ATTRIBUTES = frozenset(name.lower() for name in BRIDGE_ATTRIBUTES)
"""Written by the parent bridge, never by a replay: not a difference."""
LOGIN = "entpersonlogin"
_SUFFIX = re.compile(r"[0-9]+$")
_MANAGED_BRANCHES = ("people", "structures", "groups")


@dataclass(frozen=True)
class EntryChange:
    """What a replay would do to one entry of the directory now (attribute names, no values)."""

    dn: str
    action: Action
    attributes: tuple[str, ...]
    schools: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "dn": self.dn,
                "action": self.action,
                "attributes": list(self.attributes),
                "schools": list(self.schools),
            },
            ensure_ascii=False,
        )


def _normal(directory: Mapping[str, Mapping[str, Sequence[str]]], base_dn: str) -> Directory:
    """Managed entries only (people, structures, groups), DNs and names case-folded."""
    suffixes = tuple(f",ou={b},{base_dn}".lower() for b in _MANAGED_BRANCHES)
    return {
        dn.lower(): {
            name.lower(): tuple(sorted(values))
            for name, values in attrs.items()
            if name.lower() not in IGNORED_ATTRIBUTES and values
        }
        for dn, attrs in directory.items()
        if dn.lower().endswith(suffixes)
    }


def _logins(directory: Directory) -> dict[str, Counter[str]]:
    by_base: dict[str, Counter[str]] = {}
    for attrs in directory.values():
        for login in attrs.get(LOGIN, ()):
            by_base.setdefault(_SUFFIX.sub("", login), Counter())[login] += 1
    return by_base


def schools_of(dn: str, entries: Iterable[Mapping[str, Sequence[str]]], base_dn: str) -> set[str]:
    """Schools (jointures: UAIs in AAF1D) an entry belongs to: from its DN (a school, a school's
    group) and from the school DNs its values name, on either side."""
    base = re.escape(base_dn.lower())
    in_value = re.compile(rf"ou=([^,]+),ou=structures,{base}")
    found: set[str] = set()
    lowered = dn.lower()
    if match := re.fullmatch(rf"ou=([^,]+),ou=structures,{base}", lowered):
        found.add(match.group(1))
    if match := re.fullmatch(rf"cn=([^,$]+)\$[^,]*,ou=groups,{base}", lowered):
        found.add(match.group(1))
    for attrs in entries:
        for values in attrs.values():
            for value in values:
                found.update(in_value.findall(value.lower()))
    return {school.upper() for school in found}


def diff_directories(
    predicted: Mapping[str, Mapping[str, Sequence[str]]],
    actual: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    base_dn: str,
    scope: str | None = None,
    only: set[str] | None = None,
) -> list[EntryChange]:
    """The changes that would turn ``actual`` into ``predicted``, in DN order.

    Not differences: the bridge's attributes; a login that differs only by its numeric suffix
    when both sides hold the same logins of that name (homonyms served in another order).
    ``scope``: only entries of that school; ``only``: only those DNs (case-folded).
    """
    want, have = _normal(predicted, base_dn), _normal(actual, base_dn)
    spelled = {dn.lower(): dn for dn in (*actual, *predicted)}
    settled = {base for base, logins in _logins(want).items() if _logins(have).get(base) == logins}
    changes: list[EntryChange] = []
    for dn in sorted(want.keys() | have.keys()):
        if only is not None and dn not in only:
            continue
        a, p = have.get(dn), want.get(dn)
        schools = schools_of(dn, [x for x in (a, p) if x is not None], base_dn)
        if scope is not None and scope.upper() not in schools:
            continue
        if a is None or p is None:
            action: Action = "add" if a is None else "delete"
            names = tuple(sorted((p or a or {}).keys()))
        else:
            names = tuple(
                sorted(
                    n
                    for n in a.keys() | p.keys()
                    if a.get(n) != p.get(n) and not _same_login(n, a, p, settled)
                )
            )
            if not names:
                continue
            action = "modify"
        changes.append(EntryChange(spelled[dn], action, names, tuple(sorted(schools))))
    return changes


def _same_login(
    name: str,
    a: Mapping[str, tuple[str, ...]],
    p: Mapping[str, tuple[str, ...]],
    settled: set[str],
) -> bool:
    if name != LOGIN:
        return False
    bases = {_SUFFIX.sub("", v) for v in (*a.get(LOGIN, ()), *p.get(LOGIN, ()))}
    return len(bases) == 1 and bases <= settled


def summarize(changes: Iterable[EntryChange]) -> dict[str, dict[str, int]]:
    """Counts per school and action; an entry counts in each of its schools ('-' for none)."""
    counts: dict[str, dict[str, int]] = {}
    for change in changes:
        for school in change.schools or ("-",):
            per = counts.setdefault(school, {})
            per[change.action] = per.get(change.action, 0) + 1
    return dict(sorted(counts.items()))

"""``entsync replay``: rebuild the directory from the topics, or say how it differs.

A real replay reads the external inputs of the live topics, then feeds them stage by stage to a
worker of its own (consumer group, table changelogs and internal topics suffixed with the replay
id) writing into an empty directory. A dry run plays the same inputs through the pure core
(:mod:`sync.replay`) and compares the predicted directory with the configured one: nothing is
written anywhere. A dry run first checks that the topics' history explains the directory
(:mod:`sync.history`): predicting from a lost history would delete what it no longer knows; a
real replay does too when told which directory it rebuilds (``check_against``).
See README "Replay and backfill".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from connectors.ldap import (
    count_entries,
    ensure_base_dit,
    read_entry,
    search_entries,
)
from connectors.stream.clients import KafkaParams
from connectors.stream.replay_topics import ReplayRefused, StageFeeder, check_topics, read_inputs
from connectors.stream.topics import ensure_topics
from entsync.kafka_clients import kafka_params
from entsync.ldap_clients import ldap_params
from entsync.logs import get_logger
from entsync.settings import Settings
from entsync.stream_config import context_of, guard_from, policy_from, stream_topics
from entsync.worker import WorkerResult, run_worker
from sync.history import REPLAY, HistoryGaps, set_aside, unexplained
from sync.reconcile import Context
from sync.replay import (
    EntryChange,
    ExternalInput,
    Prediction,
    diff_directories,
    predict,
    stages,
    summarize,
    window,
)
from sync.simulator import Directory

log = get_logger(__name__)

UAI = re.compile(r"^[0-9]{7}[A-Z]$")
REPLAY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MANAGED_BRANCHES = ("people", "structures", "groups")


class HistoryIncomplete(ReplayRefused):
    """The topics' history does not explain the directory (``gaps`` says which entries)."""

    def __init__(self, gaps: HistoryGaps) -> None:
        super().__init__(gaps.describe(REPLAY))
        self.gaps = gaps


@dataclass
class DryRunReport:
    changes: list[EntryChange]
    counts: dict[str, dict[str, int]]
    inputs: int
    stages: int
    gaps: HistoryGaps = field(default_factory=HistoryGaps)


@dataclass
class ReplayOutcome:
    replay_id: str
    app_id: str
    inputs: int
    stages: int
    worker: WorkerResult
    copied: int = 0
    topics: tuple[str, ...] = field(default=())
    gaps: HistoryGaps = field(default_factory=HistoryGaps)
    """Entries of --check-against the history does not explain (accepted: not rebuilt)."""


def check_window(since: datetime | None, until: datetime | None, scope: str | None) -> None:
    """Refuse options that contradict each other, with the reason."""
    if since is not None and until is not None and since > until:
        raise ReplayRefused(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    if scope is not None and not UAI.match(scope):
        raise ReplayRefused(f"--scope must be a school UAI (7 digits and a letter), not {scope!r}")


def utc(moment: datetime | None) -> datetime | None:
    """An ISO time from the command line: UTC unless it says otherwise."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_directory(settings: Settings, base_dn: str | None = None) -> Directory:
    """The entries of the managed branches (people, structures, groups) of the configured
    directory, or of the one at ``base_dn`` on the same server."""
    params = ldap_params(settings)
    base = base_dn or settings.ldap_base_dn
    return {
        entry.dn: dict(entry.attributes)
        for branch in MANAGED_BRANCHES
        for entry in search_entries(
            params, f"ou={branch},{base}", "(objectClass=*)", ["*"], scope="one"
        )
    }


def context(settings: Settings, base_dn: str | None = None) -> Context:
    """The core's context; ``base_dn``: another base than the configured one (a replay's)."""
    ctx = context_of(settings)
    return ctx if base_dn is None else replace(ctx, base_dn=base_dn)


def _predict(
    settings: Settings,
    inputs: list[ExternalInput],
    *,
    since: datetime | None = None,
    base_dn: str | None = None,
) -> Prediction:
    return predict(
        inputs,
        ctx=context(settings, base_dn),
        guard=guard_from(settings),
        policy=policy_from(settings),
        since=since,
    )


def history_gaps(directory: Directory, written: set[str]) -> HistoryGaps:
    """The entries of ``directory`` the history does not explain (logged by kind, ids only)."""
    gaps = unexplained(directory, written)
    if not gaps.complete:
        log.warning(
            "replay.history_incomplete",
            unexplained=len(gaps.entries),
            kinds=gaps.by_kind(),
            sample=list(gaps.sample()),
        )
    return gaps


def dry_run(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    scope: str | None = None,
) -> DryRunReport:
    """What a replay would change in the directory now; writes nothing. Entries the history
    does not explain are reported as such (``gaps``), never as changes."""
    since, until = utc(since), utc(until)
    check_window(since, until, scope)
    kafka = kafka_params(settings)
    settings.require_ldap()
    everything = read_inputs(kafka)
    inputs = window(everything, until)
    prediction = _predict(settings, inputs, since=since)
    # What the history explains is judged on all of it: --until only chooses what to compare.
    whole = prediction if len(inputs) == len(everything) else _predict(settings, everything)
    actual = read_directory(settings)
    gaps = history_gaps(actual, whole.written)
    changes = diff_directories(
        prediction.directory,
        actual,
        base_dn=settings.ldap_base_dn,
        scope=scope,
        only=prediction.touched if since is not None else None,
    )
    changes = set_aside(changes, gaps)
    log.info(
        "replay.dry_run",
        inputs=len(inputs),
        stages=prediction.stages,
        changes=len(changes),
        unexplained=len(gaps.entries),
    )
    return DryRunReport(changes, summarize(changes), len(inputs), prediction.stages, gaps)


def replay_settings(settings: Settings, replay_id: str) -> Settings:
    """The replay's own app id and topics; no nightly sweep (only the recorded ones replay)."""
    return settings.model_copy(
        update={
            "replay_id": replay_id,
            "app_id": f"{settings.app_id}-replay-{replay_id}",
            "lifecycle_sweep_hour": None,
        }
    )


def run_replay(
    private: Settings,
    kafka: KafkaParams,
    stages: Sequence[Sequence[ExternalInput]],
    *,
    timeout_s: float | None,
    on_stage: Callable[[int, int], None] | None = None,
) -> tuple[WorkerResult, StageFeeder]:
    """Run the replay worker (``private``: its settings) until every stage is copied and
    processed."""
    asyncio.run(ensure_topics(kafka, private.topic_partitions, extra=private.private_topic_names()))
    feeder = StageFeeder(stream_topics(private), kafka, stages, on_stage)
    result = run_worker(private, kafka, until_idle=True, timeout_s=timeout_s, on_idle=feeder)
    return result, feeder


def new_replay_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")


def replay(
    settings: Settings,
    *,
    replay_id: str | None = None,
    until: datetime | None = None,
    timeout_s: float | None = None,
    on_stage: Callable[[int, int], None] | None = None,
    check_against: str | None = None,
    accept_incomplete_history: bool = False,
) -> ReplayOutcome:
    """Rebuild the directory from the topics into the configured (empty) directory.

    ``check_against``: the base DN (same server) of the directory this replay rebuilds; the
    replay refuses to start (:class:`HistoryIncomplete`) when the topics' history does not
    explain its managed entries, unless ``accept_incomplete_history`` (they are not rebuilt).
    """
    until = utc(until)
    rid = replay_id or new_replay_id()
    if not REPLAY_ID.match(rid):
        raise ReplayRefused(f"--replay-id may hold letters, digits, '-' and '_' only: {rid!r}")
    kafka = kafka_params(settings)
    settings.require_ldap()
    params = ldap_params(settings)
    base = settings.ldap_base_dn
    ensure_base_dit(params, base)
    filled = [b for b in MANAGED_BRANCHES if count_entries(params, f"ou={b},{base}", scope="one")]
    if filled:
        raise ReplayRefused(
            f"the directory at {base} is not empty ({', '.join(filled)}): a replay writes a fresh "
            "directory; point ENTSYNC_LDAP_BASE_DN at an empty base, or compare with --dry-run"
        )
    private = replay_settings(settings, rid)
    check_topics(kafka, settings.topic_partitions, stream_topics(private), rid)
    everything = read_inputs(kafka)
    gaps = HistoryGaps()
    if check_against is not None:
        if read_entry(params, check_against, ["1.1"]) is None:  # a typo would explain all
            raise ReplayRefused(f"--check-against: no entry at {check_against!r}")
        written = _predict(settings, everything, base_dn=check_against).written
        gaps = history_gaps(read_directory(settings, check_against), written)
        if not gaps.complete and not accept_incomplete_history:
            raise HistoryIncomplete(gaps)
    inputs = window(everything, until)
    plan = stages(inputs)
    log.info("replay.started", replay_id=rid, inputs=len(inputs), stages=len(plan))
    result, feeder = run_replay(private, kafka, plan, timeout_s=timeout_s, on_stage=on_stage)
    return ReplayOutcome(
        replay_id=rid,
        app_id=private.app_id,
        inputs=len(inputs),
        stages=len(plan),
        worker=result,
        copied=feeder.copied,
        topics=private.private_topic_names(),
        gaps=gaps,
    )

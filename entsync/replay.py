"""``entsync replay``: rebuild the directory from the topics, or say how it differs.

A real replay reads the external inputs of the live topics, then feeds them stage by stage to a
worker of its own (consumer group, table changelogs and internal topics suffixed with the replay
id) writing into an empty directory. A dry run plays the same inputs through the pure core
(:mod:`sync.replay`) and compares the predicted directory with the configured one: nothing is
written anywhere. See README "Replay and backfill".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.ldap import LdapParams, count_entries, ensure_base_dit, search_entries
from connectors.stream.app import context_of
from connectors.stream.lifecycle import guard_from, policy_from
from connectors.stream.replay import (
    ReplayRefused,
    check_topics,
    read_inputs,
    replay_settings,
    run_replay,
)
from connectors.stream.worker import WorkerResult
from entsync.logs import get_logger
from entsync.settings import Settings
from sync.pipeline import Directory
from sync.reconcile import Context
from sync.replay import EntryChange, diff_directories, predict, stages, summarize, window

log = get_logger(__name__)

UAI = re.compile(r"^[0-9]{7}[A-Z]$")
REPLAY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MANAGED_BRANCHES = ("people", "structures", "groups")


@dataclass
class DryRunReport:
    changes: list[EntryChange]
    counts: dict[str, dict[str, int]]
    inputs: int
    stages: int


@dataclass
class ReplayOutcome:
    replay_id: str
    app_id: str
    inputs: int
    stages: int
    worker: WorkerResult
    copied: int = 0
    topics: tuple[str, ...] = field(default=())


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


def read_directory(settings: Settings) -> Directory:
    """The managed entries of the configured directory (people, structures, groups)."""
    params = LdapParams.from_settings(settings)
    return {
        entry.dn: dict(entry.attributes)
        for branch in MANAGED_BRANCHES
        for entry in search_entries(
            params, f"ou={branch},{settings.ldap_base_dn}", "(objectClass=*)", ["*"], scope="one"
        )
    }


def context(settings: Settings) -> Context:
    return context_of(settings)


def dry_run(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    scope: str | None = None,
) -> DryRunReport:
    """What a replay would change in the directory now; writes nothing."""
    since, until = utc(since), utc(until)
    check_window(since, until, scope)
    settings.require_ldap()
    inputs = window(read_inputs(settings), until)
    prediction = predict(
        inputs,
        ctx=context(settings),
        guard=guard_from(settings),
        policy=policy_from(settings),
        since=since,
    )
    changes = diff_directories(
        prediction.directory,
        read_directory(settings),
        base_dn=settings.ldap_base_dn,
        scope=scope,
        only=prediction.touched if since is not None else None,
    )
    log.info(
        "replay.dry_run",
        inputs=len(inputs),
        stages=prediction.stages,
        changes=len(changes),
    )
    return DryRunReport(changes, summarize(changes), len(inputs), prediction.stages)


def new_replay_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")


def replay(
    settings: Settings,
    *,
    replay_id: str | None = None,
    until: datetime | None = None,
    timeout_s: float | None = None,
    on_stage: Callable[[int, int], None] | None = None,
) -> ReplayOutcome:
    """Rebuild the directory from the topics into the configured (empty) directory."""
    until = utc(until)
    rid = replay_id or new_replay_id()
    if not REPLAY_ID.match(rid):
        raise ReplayRefused(f"--replay-id may hold letters, digits, '-' and '_' only: {rid!r}")
    settings.require_ldap()
    params = LdapParams.from_settings(settings)
    base = settings.ldap_base_dn
    ensure_base_dit(params, base)
    filled = [b for b in MANAGED_BRANCHES if count_entries(params, f"ou={b},{base}", scope="one")]
    if filled:
        raise ReplayRefused(
            f"the directory at {base} is not empty ({', '.join(filled)}): a replay writes a fresh "
            "directory; point ENTSYNC_LDAP_BASE_DN at an empty base, or compare with --dry-run"
        )
    private = replay_settings(settings, rid)
    check_topics(settings, private)
    inputs = window(read_inputs(settings), until)
    plan = stages(inputs)
    log.info("replay.started", replay_id=rid, inputs=len(inputs), stages=len(plan))
    result, feeder = run_replay(private, plan, timeout_s=timeout_s, on_stage=on_stage)
    return ReplayOutcome(
        replay_id=rid,
        app_id=private.app_id,
        inputs=len(inputs),
        stages=len(plan),
        worker=result,
        copied=feeder.copied,
        topics=private.private_topic_names(),
    )

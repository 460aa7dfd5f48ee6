"""What the lifecycle commands do against Kafka and the directory (``entsync lifecycle | holds |
year``). The rules are in :mod:`sync.absence` and :mod:`sync.lifecycle`; the worker applies the
requests published here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from connectors.ldap import search_entries
from connectors.stream import clients
from connectors.stream.partition_scans import sweep_requests, switchover_requests
from connectors.stream.reader import read_topic
from connectors.stream.topics import ensure_topics
from entsync.kafka_clients import kafka_params
from entsync.ldap_clients import ldap_params
from entsync.settings import Settings
from entsync.stream_config import policy_from
from schemas.entities import LIFECYCLE_ENTITY, EntityMessage
from schemas.lifecycle import (
    FeedTopicMessage,
    HoldDecided,
    RetiredGroup,
    ScolarityGroupsPurged,
    SnapshotDecision,
    YearCommand,
)
from schemas.state import EntityState
from schemas.topics import ENTITIES, FEED, LIFECYCLE, SCOLARITY
from sync import absence, lifecycle

SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


class LifecycleRefused(ValueError):
    """A lifecycle command that cannot be done (message for the operator)."""


def parse_school_year(text: str) -> str:
    match = SCHOOL_YEAR.match(text)
    if match is None or int(match.group(2)) != int(match.group(1)) + 1:
        raise LifecycleRefused(f"not a school year: {text!r} (expected e.g. 2026-2027)")
    return text


async def _send_all(
    settings: Settings, messages: Sequence[tuple[str, str, bytes, int | None]]
) -> None:
    """(topic, key, value, partition or None) in order; delivery awaited."""
    kafka = kafka_params(settings)
    await ensure_topics(kafka, settings.topic_partitions, extra=settings.private_topic_names())
    producer = clients.producer(kafka, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key.encode(), value=value, partition=partition)
            for topic, key, value, partition in messages
        ]
        for fut in futures:
            await fut
    finally:
        await producer.stop()


async def _partitions(settings: Settings, topic: str) -> int:
    kafka = kafka_params(settings)
    await ensure_topics(kafka, settings.topic_partitions, extra=settings.private_topic_names())
    producer = clients.producer(kafka)
    await producer.start()
    try:
        found = await producer.partitions_for(topic)
        return len(found)
    finally:
        await producer.stop()


def _entity(message: BaseModel) -> bytes:
    return EntityMessage(message).model_dump_json().encode()


def publish_sweep(settings: Settings, now: datetime) -> int:
    """One sweep request per partition of the entities topic; returns the partition count."""

    async def run() -> int:
        partitions = await _partitions(settings, settings.topic_name(ENTITIES))
        requests = sweep_requests(now, partitions)
        await _send_all(
            settings,
            [
                (settings.topic_name(ENTITIES), LIFECYCLE_ENTITY, _entity(r), r.partition)
                for r in requests
            ],
        )
        return partitions

    return asyncio.run(run())


def publish_year(
    settings: Settings, action: str, at: datetime, school_year: str | None = None
) -> list[ScolarityGroupsPurged]:
    """A year command to every feed partition; a switchover also retires last year's classes
    (entities topic) and announces the retired class groups per school. Returns the latter."""
    if action == "switchover" and school_year is not None:
        done = current_school_year(settings)
        if done is not None and school_year <= done:
            raise LifecycleRefused(
                f"the switchover to {done} is already done: a switchover to {school_year} would "
                "retire this year's classes and restart the grace period"
            )
    purged = purged_groups(settings, school_year, at) if action == "switchover" else []

    async def run() -> None:
        feed_partitions = await _partitions(settings, settings.topic_name(FEED))
        messages: list[tuple[str, str, bytes, int | None]] = []
        for p in range(feed_partitions):
            command = YearCommand(
                key="year",
                action=action,
                school_year=school_year,
                partition=p,
                at=at,
            )
            messages.append(
                (
                    settings.topic_name(FEED),
                    "year",
                    FeedTopicMessage(command).model_dump_json().encode(),
                    p,
                )
            )
        if action == "switchover" and school_year is not None:
            entity_partitions = await _partitions(settings, settings.topic_name(ENTITIES))
            for r in switchover_requests(school_year, at, entity_partitions):
                messages.append(
                    (settings.topic_name(ENTITIES), LIFECYCLE_ENTITY, _entity(r), r.partition)
                )
            for event in purged:
                messages.append(
                    (
                        settings.topic_name(SCOLARITY),
                        event.school_dn,
                        event.model_dump_json().encode(),
                        None,
                    )
                )
        await _send_all(settings, messages)

    asyncio.run(run())
    return purged


def purged_groups(
    settings: Settings, school_year: str | None, at: datetime
) -> list[ScolarityGroupsPurged]:
    """The class groups in the directory now, per school: what the switchover retires.

    Every school is announced, with no group if it has none: the announcements also record
    which switchovers were made (see :func:`current_school_year`).
    """
    params = ldap_params(settings)
    schools = search_entries(
        params,
        f"ou=structures,{settings.ldap_base_dn}",
        "(objectClass=ENTStructure)",
        ("ENTStructureUAI",),
        scope="one",
    )
    found = search_entries(
        params,
        f"ou=groups,{settings.ldap_base_dn}",
        "(&(objectClass=ENTClasse)(entsyncClassCode=*))",
        ("entsyncSchool", "entsyncClassCode", "entsyncGroupProfile"),
        scope="one",
    )
    # Keyed by the lower-cased DN (LDAP compares DNs without case): one announcement a school.
    names: dict[str, str] = {e.dn.lower(): e.dn for e in schools}
    by_school: dict[str, list[RetiredGroup]] = {key: [] for key in names}
    for entry in found:
        school, code, profile = (
            next(iter(entry.get(name)), None)
            for name in ("entsyncSchool", "entsyncClassCode", "entsyncGroupProfile")
        )
        if school and code and profile:
            names.setdefault(school.lower(), school)
            by_school.setdefault(school.lower(), []).append(
                RetiredGroup(dn=entry.dn, class_code=code, profile=profile)
            )
    return [
        ScolarityGroupsPurged(
            school_dn=names[key],
            school_year=school_year or "",
            groups=tuple(sorted(groups, key=lambda g: g.dn)),
            at=at,
        )
        for key, groups in sorted(by_school.items())
    ]


def current_school_year(settings: Settings) -> str | None:
    """The school year of the latest switchover, from its announcements (None: never)."""
    records = asyncio.run(read_topic(kafka_params(settings), settings.topic_name(SCOLARITY)))
    years = [
        ScolarityGroupsPurged.model_validate_json(r.value).school_year for r in records if r.value
    ]
    return max((y for y in years if y), default=None)


def read_decisions(settings: Settings) -> list[SnapshotDecision]:
    records = asyncio.run(read_topic(kafka_params(settings), settings.topic_name(LIFECYCLE)))
    return [SnapshotDecision.model_validate_json(r.value) for r in records if r.value]


def find_hold(decisions: Sequence[SnapshotDecision], ref: str) -> SnapshotDecision:
    """The open hold whose snapshot id is ``ref`` or starts with it (unique)."""
    holds = absence.open_holds(decisions)
    matches = [d for d in holds if d.snapshot_id.startswith(ref)] if ref else []
    if not matches:
        raise LifecycleRefused(f"no open hold {ref!r}: see 'entsync holds list'")
    if len(matches) > 1:
        raise LifecycleRefused(f"{ref!r} names {len(matches)} holds: give more of the id")
    return matches[0]


def publish_hold_decision(
    settings: Settings, hold: SnapshotDecision, approve: bool, operator: str | None, at: datetime
) -> None:
    key = f"snapshot:{hold.category.value}:{hold.scope}"
    decided = HoldDecided(
        key=key, snapshot_id=hold.snapshot_id, approve=approve, operator=operator, at=at
    )
    value = FeedTopicMessage(decided).model_dump_json().encode()
    asyncio.run(_send_all(settings, [(settings.topic_name(FEED), key, value, None)]))


def read_entity_states(settings: Settings) -> list[EntityState]:
    """The reconciler's entity states as its table's changelog holds them (latest per key)."""
    topic = f"{settings.app_id}-entities-changelog"
    latest: dict[bytes, bytes | None] = {}
    for record in asyncio.run(read_topic(kafka_params(settings), topic)):
        if record.key is not None:
            latest[record.key] = record.value
    return [EntityState.model_validate_json(v) for v in latest.values() if v]


def dry_run_sweep(settings: Settings, now: datetime) -> list[tuple[EntityState, lifecycle.Due]]:
    return lifecycle.planned(read_entity_states(settings), now, policy_from(settings))

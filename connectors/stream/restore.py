"""Before the worker starts: its lost tables rebuilt from the directory (see :mod:`sync.rebuild`).

The tables live on their changelog topics. When a table's changelog holds no record in any
partition (a broker rebuilt, the local broker restarted, a changelog deleted) while the
directory holds entries, the states :func:`sync.rebuild.rebuild` derives from the directory are
written to that changelog, each to its key's partition, before faust starts: faust then recovers
them as it recovers any table, and no batch is decided on empty state. A table whose changelog
holds anything is left alone. Several workers of a group may start at once: each checks again,
after its read of the directory (minutes for a large one), that the changelog is still empty,
so a worker that comes later never writes its older view over states a first one restored and
has since changed; two that check at the same moment write the same states (the rebuild is
deterministic, and neither has decided anything yet). Replays (private topics, a directory of
their own) never restore.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import search_entries
from connectors.logs import get_logger
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.deployment import StreamConfig
from connectors.stream.faust_compat import access
from connectors.stream.offsets import true_end_offsets
from connectors.stream.partition_scans import partition_of
from connectors.stream.topics import ensure_compacted
from sync.desired import Context
from sync.entries import Entry
from sync.rebuild import Rebuilt, rebuild

log = get_logger(__name__)

SOURCES_TABLE = "sources"
ENTITIES_TABLE = "entities"
MANAGED_BRANCHES = ("people", "structures", "groups")
_TOPIC_ALREADY_EXISTS = 36


def changelog_topic(app_id: str, table: str) -> str:
    """faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class Restored:
    """What was written back: per table, the number of states; the entries left alone."""

    tables: dict[str, int]
    counts: dict[str, int]
    skipped: int


async def _topic_partitions(kafka: KafkaParams, topic: str) -> int:
    consumer = clients.consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        await access.refresh_metadata(consumer)
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        await consumer.stop()


async def changelog_is_empty(kafka: KafkaParams, topic: str) -> bool:
    """No record in any partition (a missing topic is empty)."""
    partitions = await _topic_partitions(kafka, topic)
    if partitions == 0:
        return True
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    probe = clients.consumer(kafka, enable_auto_commit=False)
    await probe.start()
    try:
        firsts = await probe.beginning_offsets(tps)
    finally:
        await probe.stop()
    ends = await true_end_offsets(kafka, tps)
    return all(ends[tp] <= firsts[tp] for tp in tps)


def read_directory(params: LdapParams, base_dn: str) -> dict[str, Entry]:
    """Every entry the rebuild reads: the managed branches, and any entry holding a login."""
    directory: dict[str, Entry] = {}
    for branch in MANAGED_BRANCHES:
        for entry in search_entries(params, f"ou={branch},{base_dn}", scope="one"):
            directory[entry.dn] = dict(entry.attributes)
    for entry in search_entries(params, base_dn, "(ENTPersonLogin=*)", ["ENTPersonLogin"]):
        directory.setdefault(entry.dn, dict(entry.attributes))
    return directory


async def _write(kafka: KafkaParams, topic: str, partitions: int, states: dict[str, bytes]) -> None:
    await ensure_compacted(kafka, [topic], partitions)
    producer = clients.producer(kafka, acks="all", linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=value, key=(k := key.encode()), partition=partition_of(k, partitions)
            )
            for key, value in sorted(states.items())
        ]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def restore_lost_state(
    config: StreamConfig, kafka: KafkaParams, ctx: Context, ldap: LdapParams
) -> Restored | None:
    """Rebuild the tables whose changelog is empty, from the directory under ``ctx.base_dn``;
    None: nothing to do."""
    if config.replay:
        return None
    topics = {t: changelog_topic(config.app_id, t) for t in (SOURCES_TABLE, ENTITIES_TABLE)}
    empty = [t for t, topic in topics.items() if await changelog_is_empty(kafka, topic)]
    if not empty:
        return None
    directory = await asyncio.to_thread(read_directory, ldap, ctx.base_dn)
    if not directory:
        return None
    rebuilt: Rebuilt = await asyncio.to_thread(rebuild, directory, ctx)
    # Another worker of the group may have restored (and gone on) meanwhile: see the docstring.
    empty = [t for t in empty if await changelog_is_empty(kafka, topics[t])]
    if not empty:
        return None
    written: dict[str, int] = {}
    partitions = config.partitions
    if SOURCES_TABLE in empty and rebuilt.sources:
        values = {k: s.model_dump_json().encode() for k, s in rebuilt.sources.items()}
        await _write(kafka, topics[SOURCES_TABLE], partitions, values)
        written[SOURCES_TABLE] = len(values)
    if ENTITIES_TABLE in empty and rebuilt.entities:
        values = {k: s.model_dump_json().encode() for k, s in rebuilt.entities.items()}
        await _write(kafka, topics[ENTITIES_TABLE], partitions, values)
        written[ENTITIES_TABLE] = len(values)
    restored = Restored(written, rebuilt.counts(), len(rebuilt.skipped))
    # Counts and entity ids only: never a value of an entry.
    log.warning(
        "worker.state_rebuilt",
        tables=written,
        entities=restored.counts,
        skipped=restored.skipped,
        skipped_ids=[entity_id for entity_id, _ in rebuilt.skipped[:20]],
    )
    return restored

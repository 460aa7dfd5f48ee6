"""Retention of the audit store: old records go, the chain stays verifiable.

Per partition only a prefix is removed (records logged on the broker before the cutoff, up to
the first one that is not), and the last removed record becomes the partition's anchor: its hash
is where verification of what remains starts, so the remainder still verifies and a change to it,
or the removal of one more record at its start, is still found. Each anchor is logged
(``audit.pruned``), to be compared with ``entsync audit verify``'s output later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.auditstore.store import AuditStore
from connectors.logs import get_logger
from sync.auditchain import ChainEnd
from sync.auditindex import utc_text

log = get_logger(__name__)


def cutoff_for(days: int, now: datetime) -> str:
    return utc_text(now - timedelta(days=days))


def prune(store: AuditStore, cutoff: str, now: str) -> dict[tuple[str, int], int]:
    """Remove records logged before ``cutoff``; the records removed per partition."""
    removed: dict[tuple[str, int], int] = {}
    backend = store.backend
    for info in store.partitions():
        with backend.transaction():
            anchor = _prune_point(store, info.topic, info.partition, cutoff)
            if anchor is None or anchor.offset is None:
                continue
            where = "msg_topic = ? AND msg_partition = ? AND msg_offset <= ?"
            params = (info.topic, info.partition, anchor.offset)
            counted = backend.query(f"SELECT count(*) FROM audit_record WHERE {where}", params)
            count = int(counted[0][0])
            backend.execute(f"DELETE FROM audit_record WHERE {where}", params)
            backend.execute(
                "DELETE FROM audit_gap WHERE msg_topic = ? AND msg_partition = ?"
                " AND end_offset <= ?",
                (info.topic, info.partition, anchor.next_offset),
            )
            backend.execute(
                "UPDATE audit_partition SET anchor_offset = ?, anchor_hash = ?,"
                " pruned = pruned + ?, updated_at = ?"
                " WHERE msg_topic = ? AND msg_partition = ?",
                (anchor.offset, anchor.hash, count, now, info.topic, info.partition),
            )
        removed[(info.topic, info.partition)] = count
        log.info(
            "audit.pruned",
            topic=info.topic,
            partition=info.partition,
            records=count,
            anchor_offset=anchor.offset,
            anchor_hash=anchor.hash,
        )
    return removed


def _prune_point(store: AuditStore, topic: str, partition: int, cutoff: str) -> ChainEnd | None:
    """The last record of the partition's prefix logged before ``cutoff`` (None: none)."""
    bound = store.backend.query(
        "SELECT min(msg_offset) FROM audit_record WHERE msg_topic = ? AND msg_partition = ?"
        " AND (msg_at IS NULL OR msg_at >= ?)",
        (topic, partition, cutoff),
    )[0][0]
    sql = "SELECT msg_offset, hash FROM audit_record WHERE msg_topic = ? AND msg_partition = ?"
    params: list[Any] = [topic, partition]
    if bound is not None:
        sql += " AND msg_offset < ?"
        params.append(int(bound))
    rows = store.backend.query(sql + " ORDER BY msg_offset DESC LIMIT 1", params)
    return ChainEnd(int(rows[0][0]), str(rows[0][1])) if rows else None

"""Tables of the audit store, the same on SQLite and PostgreSQL.

``audit_record``: one row per consumed offset of the audit topic, chained per partition (see
:mod:`sync.auditchain`); ``status`` is ``event`` (stored once per event id), ``duplicate`` (an
event id already stored, e.g. after the topic was replayed) or ``invalid`` (digest only).
``audit_partition``: per partition the chain's head (the consumer position is the offset after
it) and its start (the anchor left by pruning). ``audit_gap``: offsets the broker never delivered.
Times are UTC text in one sortable form (``sync.auditindex.utc_text``).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Final

from sync.auditchain import Fields, Incoming
from sync.auditindex import IndexedEvent, index_message, utc_text

SCHEMA_VERSION: Final = "1"

# Chained columns, in table order; every one of them is covered by the record's hash.
RECORD_COLUMNS: Final = (
    "msg_topic",
    "msg_partition",
    "msg_offset",
    "msg_at",
    "status",
    "event_id",
    "type",
    "action",
    "entity_id",
    "entity_kind",
    "dn",
    "schools",
    "rule",
    "cause_at",
    "raw",
    "raw_digest",
)
INTEGER_COLUMNS: Final = frozenset({"msg_partition", "msg_offset"})

DDL: Final = (
    "CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS audit_record (
        msg_topic TEXT NOT NULL,
        msg_partition INTEGER NOT NULL,
        msg_offset BIGINT NOT NULL,
        msg_at TEXT,
        status TEXT NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT,
        action TEXT,
        entity_id TEXT,
        entity_kind TEXT,
        dn TEXT,
        schools TEXT,
        rule TEXT,
        cause_at TEXT,
        raw TEXT,
        raw_digest TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (msg_topic, msg_partition, msg_offset)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS audit_record_event_id ON audit_record (event_id) "
    "WHERE status = 'event'",
    "CREATE INDEX IF NOT EXISTS audit_record_entity ON audit_record (entity_id)",
    "CREATE INDEX IF NOT EXISTS audit_record_dn ON audit_record (lower(dn))",
    "CREATE INDEX IF NOT EXISTS audit_record_cause_at ON audit_record (cause_at)",
    """CREATE TABLE IF NOT EXISTS audit_partition (
        msg_topic TEXT NOT NULL,
        msg_partition INTEGER NOT NULL,
        head_offset BIGINT,
        head_hash TEXT NOT NULL,
        anchor_offset BIGINT,
        anchor_hash TEXT NOT NULL,
        pruned BIGINT NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (msg_topic, msg_partition)
    )""",
    """CREATE TABLE IF NOT EXISTS audit_gap (
        msg_topic TEXT NOT NULL,
        msg_partition INTEGER NOT NULL,
        start_offset BIGINT NOT NULL,
        end_offset BIGINT NOT NULL,
        detected_at TEXT NOT NULL,
        PRIMARY KEY (msg_topic, msg_partition, start_offset)
    )""",
)


def record_fields(
    topic: str, partition: int, offset: int, msg_at: str | None, indexed: IndexedEvent
) -> dict[str, str | int | None]:
    """The chained columns of one consumed message (the indexed fields are named as columns)."""
    return {
        "msg_topic": topic,
        "msg_partition": partition,
        "msg_offset": offset,
        "msg_at": msg_at,
        **asdict(indexed),
    }


def incoming(
    topic: str, partition: int, offset: int, timestamp_ms: int | None, value: bytes | None
) -> Incoming:
    """A consumed message as the chain takes it (its broker timestamp is ``msg_at``)."""
    msg_at = (
        utc_text(datetime.fromtimestamp(timestamp_ms / 1000, UTC))
        if timestamp_ms is not None and timestamp_ms >= 0
        else None
    )
    return Incoming(offset, record_fields(topic, partition, offset, msg_at, index_message(value)))


def fields_of_row(row: tuple[object, ...]) -> Fields:
    """The chained columns of a row selected as ``RECORD_COLUMNS``, typed as when hashed."""
    fields: dict[str, str | int | None] = {}
    for name, value in zip(RECORD_COLUMNS, row, strict=True):
        if value is None:
            fields[name] = None
        elif name in INTEGER_COLUMNS:
            fields[name] = int(str(value))
        else:
            fields[name] = str(value)
    return fields

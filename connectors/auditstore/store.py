"""The audit store: consumed audit messages, exactly once, chained per partition.

:meth:`AuditStore.append` is the consumer's one write: in a single transaction it reads the
partition's head (which is also the consumer position), chains the batch after it
(:func:`sync.auditchain.append`, event ids already stored become duplicates), inserts the records
and gaps and moves the head. A crash before the commit leaves nothing; after it, the consumer
resumes from the stored head, whatever Kafka's committed offsets say.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from connectors.auditstore.backends import Backend, Row, open_backend
from connectors.auditstore.schema import DDL, RECORD_COLUMNS, SCHEMA_VERSION, fields_of_row
from sync.auditchain import (
    EVENT,
    EVENT_ID,
    START,
    STATUS,
    Appended,
    ChainCheck,
    ChainEnd,
    Finding,
    Incoming,
    Link,
    append,
    verify_chain,
)

DEFAULT_FILE: Final = "audit.sqlite3"
_COLUMNS: Final = ", ".join(RECORD_COLUMNS)
_EVENT_TIME: Final = "COALESCE(cause_at, msg_at)"
_ID_CHUNK: Final = 500


class StoreVersionError(RuntimeError):
    pass


@dataclass(frozen=True)
class PartitionInfo:
    topic: str
    partition: int
    start: ChainEnd
    head: ChainEnd
    pruned: int


@dataclass(frozen=True)
class AuditRow:
    """A stored record, as queries return it."""

    fields: dict[str, Any]
    hash: str

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    @property
    def time(self) -> str | None:
        moment = self.fields["cause_at"] or self.fields["msg_at"]
        return str(moment) if moment else None


@dataclass(frozen=True)
class GapRow:
    topic: str
    partition: int
    start: int
    end: int
    detected_at: str


@dataclass(frozen=True)
class Search:
    """Filters of :meth:`AuditStore.search`; times in the store's text form."""

    school: str | None = None
    since: str | None = None
    until: str | None = None
    action: str | None = None
    entity_kind: str | None = None
    type: str | None = None
    limit: int | None = None


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AuditStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        with backend.transaction():
            for statement in DDL:
                backend.execute(statement)
            rows = backend.query("SELECT value FROM audit_meta WHERE name = 'schema_version'")
            if not rows:
                backend.execute(
                    "INSERT INTO audit_meta (name, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
            elif rows[0][0] != SCHEMA_VERSION:
                raise StoreVersionError(
                    f"audit store schema version {rows[0][0]}, this entsync reads {SCHEMA_VERSION}"
                )

    @property
    def kind(self) -> str:
        return self.backend.kind

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- consumer side -------------------------------------------------------------------------

    def partitions(self, topic: str | None = None) -> list[PartitionInfo]:
        sql = (
            "SELECT msg_topic, msg_partition, anchor_offset, anchor_hash, head_offset, head_hash,"
            " pruned FROM audit_partition"
        )
        params: tuple[str, ...] = ()
        if topic is not None:
            sql, params = sql + " WHERE msg_topic = ?", (topic,)
        return [_partition(r) for r in self.backend.query(sql + " ORDER BY 1, 2", params)]

    def head(self, topic: str, partition: int) -> ChainEnd:
        info = self._partition(topic, partition)
        return info.head if info else START

    def _partition(self, topic: str, partition: int) -> PartitionInfo | None:
        rows = self.backend.query(
            "SELECT msg_topic, msg_partition, anchor_offset, anchor_hash, head_offset, head_hash,"
            " pruned FROM audit_partition WHERE msg_topic = ? AND msg_partition = ?",
            (topic, partition),
        )
        return _partition(rows[0]) if rows else None

    def append(
        self, topic: str, partition: int, incoming: Sequence[Incoming], now: str
    ) -> Appended:
        """Store a batch of one partition, in offset order, after the stored head."""
        with self.backend.transaction():
            head = self.head(topic, partition)
            ids = [
                str(m.fields[EVENT_ID])
                for m in incoming
                if m.fields.get(STATUS) == EVENT and m.fields.get(EVENT_ID) is not None
            ]
            appended = append(head, incoming, self._known(ids))
            if not appended.links:
                return appended
            self.backend.executemany(
                f"INSERT INTO audit_record ({_COLUMNS}, prev_hash, hash) VALUES "
                f"({', '.join('?' for _ in RECORD_COLUMNS)}, ?, ?)",
                [
                    [*(link.fields[c] for c in RECORD_COLUMNS), link.prev_hash, link.hash]
                    for link in appended.links
                ],
            )
            self.backend.execute(
                "INSERT INTO audit_partition (msg_topic, msg_partition, head_offset, head_hash,"
                " anchor_offset, anchor_hash, pruned, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
                " ON CONFLICT (msg_topic, msg_partition) DO UPDATE SET"
                " head_offset = excluded.head_offset, head_hash = excluded.head_hash,"
                " updated_at = excluded.updated_at",
                (
                    topic,
                    partition,
                    appended.head.offset,
                    appended.head.hash,
                    START.offset,
                    START.hash,
                    now,
                ),
            )
            self.backend.executemany(
                "INSERT INTO audit_gap (msg_topic, msg_partition, start_offset, end_offset,"
                " detected_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(topic, partition, g.start, g.end, now) for g in appended.gaps],
            )
        return appended

    def _known(self, event_ids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        distinct = sorted(set(event_ids))
        for i in range(0, len(distinct), _ID_CHUNK):
            chunk = distinct[i : i + _ID_CHUNK]
            rows = self.backend.query(
                "SELECT event_id FROM audit_record WHERE status = 'event' AND event_id IN "
                f"({', '.join('?' for _ in chunk)})",
                chunk,
            )
            known.update(str(r[0]) for r in rows)
        return known

    # -- queries -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        rows = self.backend.query("SELECT status, count(*) FROM audit_record GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def history(self, ident: str, limit: int | None = None) -> list[AuditRow]:
        """Events of one entry, by entity id or DN (case-insensitive), oldest first."""
        return self._events(["(entity_id = ? OR lower(dn) = lower(?))"], [ident, ident], limit)

    def search(self, search: Search) -> list[AuditRow]:
        where: list[str] = []
        params: list[Any] = []
        if search.school:
            where.append("schools LIKE ? ESCAPE '\\'")
            params.append(f"%|{like_escape(search.school)}|%")
        for clause, value in (
            (f"{_EVENT_TIME} >= ?", search.since),
            (f"{_EVENT_TIME} < ?", search.until),
            ("action = ?", search.action),
            ("entity_kind = ?", search.entity_kind),
            ("type = ?", search.type),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self._events(where, params, search.limit)

    def _events(self, where: list[str], params: list[Any], limit: int | None) -> list[AuditRow]:
        sql = self._select(where)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.backend.query(sql, params)]

    def _select(self, where: list[str]) -> str:
        conditions = " AND ".join(["status = 'event'", *where])
        return (
            f"SELECT {_COLUMNS}, hash FROM audit_record WHERE {conditions}"
            f" ORDER BY {_EVENT_TIME}, msg_topic, msg_partition, msg_offset"
        )

    def export(self, since: str | None = None, until: str | None = None) -> Iterator[AuditRow]:
        """Stored events (not duplicates nor invalid messages), oldest first, streamed."""
        where, params = [], []
        if since is not None:
            where.append(f"{_EVENT_TIME} >= ?")
            params.append(since)
        if until is not None:
            where.append(f"{_EVENT_TIME} < ?")
            params.append(until)
        return (_row(r) for r in self.backend.stream(self._select(where), params))

    def gaps(self) -> list[GapRow]:
        rows = self.backend.query(
            "SELECT msg_topic, msg_partition, start_offset, end_offset, detected_at FROM audit_gap"
            " ORDER BY 1, 2, 3"
        )
        return [GapRow(str(t), int(p), int(s), int(e), str(d)) for t, p, s, e, d in rows]

    # -- tamper evidence and retention ---------------------------------------------------------

    def verify(self) -> list[tuple[PartitionInfo, ChainCheck]]:
        """Every partition's chain, from its start (genesis or anchor) to its stored head."""
        infos = {(i.topic, i.partition): i for i in self.partitions()}
        with_head = set(infos)
        seen = self.backend.query("SELECT DISTINCT msg_topic, msg_partition FROM audit_record")
        for topic, partition in seen:
            key = (str(topic), int(partition))
            infos.setdefault(key, PartitionInfo(key[0], key[1], START, START, 0))
        results = []
        for key in sorted(infos):
            info = infos[key]
            links = self._links(info.topic, info.partition)
            check = verify_chain(info.start, links, info.head)
            if key not in with_head:
                check.findings.insert(
                    0, Finding("no_head", None, "the partition's stored head was removed")
                )
            results.append((info, check))
        return results

    def _links(self, topic: str, partition: int) -> Iterable[Link]:
        rows = self.backend.stream(
            f"SELECT {_COLUMNS}, prev_hash, hash FROM audit_record"
            " WHERE msg_topic = ? AND msg_partition = ? ORDER BY msg_offset",
            (topic, partition),
        )
        for row in rows:
            fields = fields_of_row(row[: len(RECORD_COLUMNS)])
            offset = fields["msg_offset"]
            assert isinstance(offset, int)
            yield Link(offset, fields, str(row[-2]), str(row[-1]))


def _partition(row: Row) -> PartitionInfo:
    topic, partition, anchor_offset, anchor_hash, head_offset, head_hash, pruned = row
    return PartitionInfo(
        topic=str(topic),
        partition=int(partition),
        start=ChainEnd(None if anchor_offset is None else int(anchor_offset), str(anchor_hash)),
        head=ChainEnd(None if head_offset is None else int(head_offset), str(head_hash)),
        pruned=int(pruned),
    )


def _row(row: Row) -> AuditRow:
    return AuditRow(dict(fields_of_row(row[: len(RECORD_COLUMNS)])), str(row[-1]))


def open_store(url: str | None, state_dir: Path) -> AuditStore:
    """The store at ``url`` (see :func:`connectors.auditstore.backends.open_backend`), by
    default ``<state dir>/audit.sqlite3``."""
    return AuditStore(open_backend(url, state_dir / DEFAULT_FILE))

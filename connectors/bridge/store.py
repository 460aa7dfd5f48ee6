"""The bridge's own durable store: SQLite under the state directory, or PostgreSQL so that
several replicas of the bridge share it (:mod:`connectors.sqldb`: the same SQL on both).

It holds what only the bridge knows: bridged identities (provider, keyed subject digest → bridge
id, account origin), the guardian records of each bridge, the attachment decisions, the last
J+1 snapshot, the authorization responses already used, the open signed-in sessions (by
digest, so that a logout ends a copied cookie too) and rate-limit windows. No OIDC
subject, name or birth date in clear, except in the J+1 snapshot, which is a copy of directory
data (the birth dates the attachment page checks against).

Every write is one transaction under the store's exclusive write lock (``BEGIN IMMEDIATE``, or a
PostgreSQL advisory lock): a rate-limit window's read-count-write, a single-use response and a
first answer are decided once across all replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, cast

from connectors.sqldb import Backend, Row, SqliteBackend, open_backend
from schemas.bridge import AccountOrigin, Provider, Snapshot
from sync.bridge import Attachment, CandidateIndex, Window, hit

# DOUBLE PRECISION: PostgreSQL's REAL has 24 bits, too few for epoch seconds.
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS bridges (
    bridge_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    subject_digest TEXT NOT NULL,
    origin TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (provider, subject_digest)
)""",
    """CREATE TABLE IF NOT EXISTS bridge_guardians (
    guardian_id TEXT PRIMARY KEY,
    bridge_id TEXT NOT NULL REFERENCES bridges (bridge_id)
)""",
    """CREATE TABLE IF NOT EXISTS attachments (
    bridge_id TEXT NOT NULL,
    child_id TEXT NOT NULL,
    guardian_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('attached', 'blocked')),
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    PRIMARY KEY (bridge_id, child_id)
)""",
    """CREATE TABLE IF NOT EXISTS snapshots (
    run_at TEXT PRIMARY KEY,
    body TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS used_responses (
    digest TEXT PRIMARY KEY,
    at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS sessions (
    session_digest TEXT PRIMARY KEY,
    bridge_id TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS rate_windows (
    key TEXT PRIMARY KEY,
    started DOUBLE PRECISION NOT NULL,
    count INTEGER NOT NULL
)""",
)
# Arbitrary constant naming the bridge store's write lock (pg_advisory_xact_lock).
_PG_WRITE_LOCK: Final = 0x62726467
DEFAULT_FILE: Final = "bridge.sqlite3"


def open_bridge_store(url: str | None, default_path: Path) -> BridgeStore:
    """The store at ``url`` (``postgresql://…``, ``sqlite:///…``, a file path), or the SQLite
    file ``default_path`` when None."""
    backend = open_backend(
        url, default_path, what="bridge store", lock_key=_PG_WRITE_LOCK, shared=True
    )
    return BridgeStore(backend)


class BridgeStore:
    """Thread-safe access to one database connection (serialized)."""

    def __init__(self, backend: Backend | Path) -> None:
        """``backend``, or the SQLite file at that path."""
        self._db = backend if isinstance(backend, Backend) else SqliteBackend(backend, shared=True)
        self.kind = self._db.kind
        self._lock = threading.RLock()
        with self._tx() as db:
            for statement in _SCHEMA:
                db.execute(statement)
        # The parsed J+1 snapshot (it is read at every sign-in and form; at academy size its
        # JSON takes seconds to parse), keyed by its run time: a new run, by this process or
        # another (``educonnect sync-now``, another replica), has another.
        self._snapshot: tuple[str, Snapshot] | None = None
        self._index: tuple[str, CandidateIndex] | None = None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[Backend]:
        with self._lock, self._db.transaction():
            yield self._db

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[Row]:
        with self._lock:
            return self._db.query(sql, tuple(params))

    def _one(self, sql: str, params: Iterable[object] = ()) -> Row | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def ping(self) -> None:
        """Raise if the database does not answer (a readiness check)."""
        self._query("SELECT 1")

    # --- bridges ---------------------------------------------------------------------------

    def bridge_for(self, provider: Provider, subject_digest: str) -> str | None:
        row = self._one(
            "SELECT bridge_id FROM bridges WHERE provider = ? AND subject_digest = ?",
            (provider, subject_digest),
        )
        return None if row is None else str(row[0])

    def create_bridge(
        self,
        bridge_id: str,
        provider: Provider,
        subject_digest: str,
        origin: AccountOrigin | None,
        guardian_ids: tuple[str, ...],
        at: datetime,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO bridges VALUES (?, ?, ?, ?, ?)",
                (bridge_id, provider, subject_digest, origin, at.isoformat()),
            )
            db.executemany(
                "INSERT INTO bridge_guardians VALUES (?, ?)",
                [(g, bridge_id) for g in guardian_ids],
            )

    def join_guardians(self, bridge_id: str, guardian_ids: tuple[str, ...]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO bridge_guardians VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(g, bridge_id) for g in guardian_ids],
            )

    def bridge_info(self, bridge_id: str) -> tuple[Provider, AccountOrigin | None] | None:
        row = self._one("SELECT provider, origin FROM bridges WHERE bridge_id = ?", (bridge_id,))
        if row is None:
            return None
        return cast(Provider, row[0]), cast("AccountOrigin | None", row[1])

    def guardians_of(self, bridge_id: str) -> tuple[str, ...]:
        rows = self._query(
            "SELECT guardian_id FROM bridge_guardians WHERE bridge_id = ? ORDER BY guardian_id",
            (bridge_id,),
        )
        return tuple(str(r[0]) for r in rows)

    def bridged(self) -> dict[str, str]:
        """guardian id → bridge id, for every bridged guardian record."""
        rows = self._query("SELECT guardian_id, bridge_id FROM bridge_guardians")
        return {str(g): str(b) for g, b in rows}

    def bridged_among(self, guardian_ids: Iterable[str]) -> dict[str, str]:
        """guardian id → bridge id, for those of ``guardian_ids`` that are bridged."""
        ids = sorted(set(guardian_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # SQLite bounds the parameters of one query
            chunk = ids[start : start + 500]
            rows = self._query(
                "SELECT guardian_id, bridge_id FROM bridge_guardians WHERE guardian_id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({str(g): str(b) for g, b in rows})
        return found

    def bridge_of_guardian(self, guardian_id: str) -> str | None:
        return self.bridged_among([guardian_id]).get(guardian_id)

    # --- attachments -----------------------------------------------------------------------

    def attachments(self, bridge_id: str) -> dict[str, Attachment]:
        rows = self._query(
            "SELECT child_id, guardian_id, status, at, by FROM attachments WHERE bridge_id = ?",
            (bridge_id,),
        )
        return {
            str(child): Attachment(
                child_id=str(child),
                guardian_id=str(guardian),
                status=cast(Literal["attached", "blocked"], status),
                at=datetime.fromisoformat(str(at)),
                by=cast(Literal["parent", "school"], by),
            )
            for child, guardian, status, at, by in rows
        }

    @staticmethod
    def _attachment_row(bridge_id: str, attachment: Attachment) -> tuple[str, ...]:
        return (
            bridge_id,
            attachment.child_id,
            attachment.guardian_id,
            attachment.status,
            attachment.at.isoformat(),
            attachment.by,
        )

    def record_attachment(self, bridge_id: str, attachment: Attachment) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (bridge_id, child_id) DO UPDATE SET "
                "guardian_id = excluded.guardian_id, status = excluded.status, "
                "at = excluded.at, by = excluded.by",
                self._attachment_row(bridge_id, attachment),
            )

    def record_if_pending(self, bridge_id: str, attachment: Attachment) -> bool:
        """Record only if no decision exists yet (two concurrent answers: the first wins)."""
        with self._tx() as db:
            added = db.execute(
                "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                self._attachment_row(bridge_id, attachment),
            )
            return added == 1

    def remove_attachment(self, bridge_id: str, child_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM attachments WHERE bridge_id = ? AND child_id = ?",
                (bridge_id, child_id),
            )

    # --- J+1 snapshots ---------------------------------------------------------------------

    def last_snapshot(self) -> Snapshot | None:
        with self._lock:
            row = self._one("SELECT run_at FROM snapshots ORDER BY run_at DESC LIMIT 1")
            if row is None:
                self._snapshot = None
                return None
            run_at = str(row[0])
            if self._snapshot is not None and self._snapshot[0] == run_at:
                return self._snapshot[1]
            body = self._one("SELECT body FROM snapshots WHERE run_at = ?", (run_at,))
            if body is None:  # replaced meanwhile by another process: read the newest again
                return self.last_snapshot()
            snapshot = Snapshot.model_validate_json(str(body[0]))
            self._snapshot = (run_at, snapshot)
            return snapshot

    def indexed_snapshot(self) -> tuple[Snapshot, CandidateIndex] | None:
        """The last snapshot and its sign-in index, built once per snapshot."""
        with self._lock:
            snapshot = self.last_snapshot()
            if snapshot is None or self._snapshot is None:
                return None
            run_at = self._snapshot[0]
            if self._index is None or self._index[0] != run_at:
                self._index = (run_at, CandidateIndex.of(snapshot.guardians))
            return snapshot, self._index[1]

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep the new snapshot only: the previous one is what it was compared with."""
        with self._tx() as db:
            db.execute("DELETE FROM snapshots")
            db.execute(
                "INSERT INTO snapshots VALUES (?, ?)",
                (snapshot.run_at.isoformat(), snapshot.model_dump_json()),
            )

    # --- single-use authorization responses, rate limits --------------------------------------

    def use_once(self, digest: str, at: datetime) -> bool:
        """Mark an authorization response (state, code) used; False if it already was."""
        with self._tx() as db:
            added = db.execute(
                "INSERT INTO used_responses VALUES (?, ?) ON CONFLICT DO NOTHING",
                (digest, at.isoformat()),
            )
            return added == 1

    def window(self, key: str) -> Window | None:
        row = self._one("SELECT started, count FROM rate_windows WHERE key = ?", (key,))
        return None if row is None else Window(started=float(row[0]), count=int(row[1]))

    def hit(self, key: str, now: float, *, limit: int, seconds: float) -> bool:
        """Count one attempt under ``key``; False once ``limit`` is reached in the window.

        One transaction: two replicas counting the same key take turns."""
        with self._tx() as db:
            allowed, window = hit(self.window(key), now, limit=limit, seconds=seconds)
            db.execute(
                "INSERT INTO rate_windows VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "started = excluded.started, count = excluded.count",
                (key, window.started, window.count),
            )
            return allowed

    # --- signed-in sessions ------------------------------------------------------------------

    def open_session(self, session_digest: str, bridge_id: str, expires: float) -> None:
        """A signed-in session, valid until ``expires`` (epoch seconds) or its logout."""
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT (session_digest) DO UPDATE "
                "SET bridge_id = excluded.bridge_id, expires = excluded.expires",
                (session_digest, bridge_id, expires),
            )

    def session_bridge(self, session_digest: str, now: float) -> str | None:
        """The bridge of an open, unexpired session; None after logout or expiry."""
        row = self._one(
            "SELECT bridge_id FROM sessions WHERE session_digest = ? AND expires >= ?",
            (session_digest, now),
        )
        return None if row is None else str(row[0])

    def close_session(self, session_digest: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE session_digest = ?", (session_digest,))

    def purge_used(self, before: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM used_responses WHERE at < ?", (before.astimezone(UTC).isoformat(),)
            )

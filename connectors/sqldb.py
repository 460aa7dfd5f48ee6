"""The two databases of entsync's stores (audit, bridge): SQLite (default, a file) and
PostgreSQL (psycopg 3).

Both run the same SQL, written with ``?`` parameters. A write transaction is exclusive: SQLite
takes its write lock at ``BEGIN IMMEDIATE``, PostgreSQL a transaction-scoped advisory lock named
by the store, so two processes on one store take turns and the second sees the first's writes.
A PostgreSQL connection found broken is opened again before the next statement outside a
transaction (a server restart, a failover), not inside one: that statement fails instead.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

Row = tuple[Any, ...]
Params = Sequence[Any]

SQLITE_SCHEMES: Final = ("sqlite://",)
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """A database URL a store cannot open."""


class Backend(ABC):
    kind: str

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """Rows one by one, without holding the whole result in memory."""

    @abstractmethod
    def transaction(self) -> Any:
        """A context manager: one exclusive write transaction (rolled back on error)."""

    @abstractmethod
    def close(self) -> None: ...


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        """``shared``: used from several threads, each call serialized by the caller."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            path, isolation_level=None, timeout=30.0, check_same_thread=not shared
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        cursor = self._conn.execute(sql, tuple(params))
        try:
            yield from cursor
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class PostgresBackend(Backend):
    kind = "postgresql"

    def __init__(self, url: str, *, lock_key: int) -> None:
        """``lock_key``: the advisory lock of this store's write transactions."""
        self._url = url
        self._lock_key = lock_key
        self._in_transaction = False
        self._conn = self._connect()

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._url, autocommit=True, connect_timeout=15)

    def _db(self) -> Any:
        if (self._conn.closed or self._conn.broken) and not self._in_transaction:
            self._conn = self._connect()
        return self._conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Params = ()) -> int:
        return int(self._db().execute(self._sql(sql), tuple(params)).rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._db().cursor() as cursor:
            cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._db().execute(self._sql(sql), tuple(params))
        return list(cursor.fetchall())

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        db = self._db()
        with db.transaction(), db.cursor(name="entsync_stream") as cursor:
            cursor.itersize = 2000
            cursor.execute(self._sql(sql), tuple(params))
            yield from cursor

    @contextmanager
    def transaction(self) -> Iterator[None]:
        db = self._db()
        self._in_transaction = True
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                yield
        finally:
            self._in_transaction = False

    def close(self) -> None:
        self._conn.close()


def open_backend(
    url: str | None, default_path: Path, *, what: str, lock_key: int, shared: bool = False
) -> Backend:
    """``postgresql://...`` (or ``postgres://``), ``sqlite:///relative`` /
    ``sqlite:////absolute``, a plain file path, or None for ``default_path``; ``what`` names
    the store in messages, ``lock_key`` is its PostgreSQL write lock, ``shared`` as
    :class:`SqliteBackend`'s."""
    if url is None or not url.strip():
        return SqliteBackend(default_path, shared=shared)
    url = url.strip()
    if url.startswith(POSTGRES_SCHEMES):
        return PostgresBackend(url, lock_key=lock_key)
    if url.startswith(SQLITE_SCHEMES):
        path = url.split("://", 1)[1]
        if not path.startswith("/") or path == "/":
            raise StoreUrlError(f"not an SQLite URL: {redact(url)} (sqlite:///path/to/file)")
        return SqliteBackend(Path(path[1:]), shared=shared)
    if "://" in url:
        raise StoreUrlError(f"unsupported {what} URL: {redact(url)}")
    return SqliteBackend(Path(url), shared=shared)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))

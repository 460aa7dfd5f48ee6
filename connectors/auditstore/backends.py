"""The two databases of the audit store: SQLite (default, a file) and PostgreSQL (psycopg 3).

Both run the same SQL, written with ``?`` parameters. A write transaction is exclusive: SQLite
takes its write lock at ``BEGIN IMMEDIATE``, PostgreSQL a transaction-scoped advisory lock, so two
consumers on one store take turns and the second sees the first's head.
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

# Arbitrary constant naming the store's write lock (pg_advisory_xact_lock).
_PG_WRITE_LOCK: Final = 0x656E7473
SQLITE_SCHEMES: Final = ("sqlite://",)
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """An audit database URL this store cannot open."""


class Backend(ABC):
    kind: str

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> None: ...

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

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, params: Params = ()) -> None:
        self._conn.execute(sql, tuple(params))

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

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True, connect_timeout=15)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Params = ()) -> None:
        self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._conn.execute(self._sql(sql), tuple(params))
        return list(cursor.fetchall())

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        with self._conn.transaction(), self._conn.cursor(name="audit_stream") as cursor:
            cursor.itersize = 2000
            cursor.execute(self._sql(sql), tuple(params))
            yield from cursor

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
            yield

    def close(self) -> None:
        self._conn.close()


def open_backend(url: str | None, default_path: Path) -> Backend:
    """``postgresql://...`` (or ``postgres://``), ``sqlite:///relative`` /
    ``sqlite:////absolute``, a plain file path, or None for ``default_path``."""
    if url is None or not url.strip():
        return SqliteBackend(default_path)
    url = url.strip()
    if url.startswith(POSTGRES_SCHEMES):
        return PostgresBackend(url)
    if url.startswith(SQLITE_SCHEMES):
        path = url.split("://", 1)[1]
        if not path.startswith("/") or path == "/":
            raise StoreUrlError(f"not an SQLite URL: {redact(url)} (sqlite:///path/to/file)")
        return SqliteBackend(Path(path[1:]))
    if "://" in url:
        raise StoreUrlError(f"unsupported audit database URL: {redact(url)}")
    return SqliteBackend(Path(url))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))

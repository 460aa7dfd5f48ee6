"""The audit store's databases: :mod:`connectors.sqldb`, under the audit store's write lock."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from connectors import sqldb
from connectors.sqldb import Backend, Params, Row, StoreUrlError, redact

# Arbitrary constant naming the store's write lock (pg_advisory_xact_lock).
_PG_WRITE_LOCK: Final = 0x656E7473

__all__ = ["Backend", "Params", "Row", "StoreUrlError", "open_backend", "redact"]


def open_backend(url: str | None, default_path: Path) -> Backend:
    """See :func:`connectors.sqldb.open_backend`."""
    return sqldb.open_backend(url, default_path, what="audit database", lock_key=_PG_WRITE_LOCK)

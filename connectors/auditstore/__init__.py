"""The audit store: audit events kept durably, exactly once, hash-chained per partition."""

from connectors.auditstore.backends import StoreUrlError, redact
from connectors.auditstore.store import AuditRow, AuditStore, PartitionInfo, Search, open_store

__all__ = [
    "AuditRow",
    "AuditStore",
    "PartitionInfo",
    "Search",
    "StoreUrlError",
    "open_store",
    "redact",
]

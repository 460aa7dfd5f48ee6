"""LDAP connector: connection parameters, the directory writer and whole-directory helpers."""

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import (
    BRANCHES,
    DirectoryEntry,
    clear_subtree,
    count_entries,
    ensure_base_dit,
    export_ldif,
    read_entry,
    search_entries,
)
from connectors.ldap.errors import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryTlsError,
    DirectoryUnavailableError,
    DirectoryWriteError,
)
from connectors.ldap.pipelined import PipelinedWriter
from connectors.ldap.writer import Action, BatchWriter, DirectoryWriter, OpResult, RetryPolicy

__all__ = [
    "BRANCHES",
    "Action",
    "BatchWriter",
    "DirectoryAuthError",
    "DirectoryEntry",
    "DirectoryError",
    "DirectoryTlsError",
    "DirectoryUnavailableError",
    "DirectoryWriteError",
    "DirectoryWriter",
    "LdapParams",
    "OpResult",
    "PipelinedWriter",
    "RetryPolicy",
    "clear_subtree",
    "count_entries",
    "ensure_base_dit",
    "export_ldif",
    "read_entry",
    "search_entries",
]

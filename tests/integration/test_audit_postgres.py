"""The audit store's contract on a real PostgreSQL server (``postgres_support``, fixture
``postgres`` of the conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.postgres_support import PostgresServer
from tests.unit.test_audit_store import (  # noqa: F401  (the same contract, run on PostgreSQL)
    store,
    test_a_batch_is_stored_whole_or_not_at_all,
    test_each_event_is_stored_once_and_the_position_survives_reopening,
    test_history_search_and_export,
    test_pruning_keeps_the_rest_verifiable_and_still_tamper_evident,
    test_verify_finds_removed_records_and_heads,
    test_verify_names_a_changed_record,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store_url(postgres: PostgresServer) -> str:
    """Each test gets a database of its own on the session's server."""
    return postgres.create_database("audit")


def test_the_store_runs_on_postgresql(store_url: str, tmp_path: Path) -> None:
    from connectors.auditstore import open_store

    with open_store(store_url, tmp_path) as opened:
        assert opened.kind == "postgresql"
    assert not (tmp_path / "audit.sqlite3").exists()

"""Shared fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """CLI commands point structlog at the runner's captured stderr, closed after each test."""
    yield
    structlog.reset_defaults()

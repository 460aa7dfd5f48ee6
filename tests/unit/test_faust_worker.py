"""The worker's faust ``Worker`` leaves the root logger at the level asked for."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from connectors.stream.faust_worker import faust_worker


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_no_debug_records_are_built_for_a_warning_worker() -> None:
    app = faust.App("entsync-test-logging", broker="kafka://localhost:1", store="memory://")
    worker = faust_worker(app, "warn")
    worker._setup_logging()  # what faust's worker does when it starts
    assert logging.getLogger().level == logging.WARNING
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)

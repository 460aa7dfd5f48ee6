"""The worker's consumer gets the configured fetch wait (faust hard-codes 1,500 ms)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as driver

from connectors.stream.faust_fixes import fetch_max_wait


def test_the_worker_consumer_waits_at_most_the_configured_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread_class = driver.AIOKafkaConsumerThread
    created: list[Any] = []

    def fake_create(self: Any, transport: Any) -> Any:
        consumer = SimpleNamespace(_fetch_max_wait_ms=1500)
        created.append(consumer)
        return consumer

    monkeypatch.setattr(thread_class, "_create_worker_consumer", fake_create)
    # Whatever fetch_max_wait records on the class is undone after the test.
    monkeypatch.setattr(thread_class, "_entsync_create_worker_consumer", None, raising=False)
    fetch_max_wait(100)
    assert thread_class._create_worker_consumer(None, None)._fetch_max_wait_ms == 100
    fetch_max_wait(250)  # called again (another app in the process): wraps the original once
    consumer = thread_class._create_worker_consumer(None, None)
    assert consumer._fetch_max_wait_ms == 250 and len(created) == 2

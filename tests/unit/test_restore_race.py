"""Two workers of a group restoring lost tables at once: the later one never writes over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.stream import restore
from connectors.stream.clients import KafkaParams
from connectors.stream.deployment import StreamConfig, StreamTopics
from sync.desired import Context

CONFIG = StreamConfig(
    app_id="entsync",
    partitions=4,
    topics=StreamTopics("feed", "entities", "audit", "decisions", "lifecycle"),
    state_dir=Path("/nonexistent"),
    session_timeout_s=6,
    fetch_max_wait_ms=100,
    sweep_hour=None,
)


def run(monkeypatch: pytest.MonkeyPatch, empty_answers: list[bool]) -> list[str]:
    """``empty_answers``: what each emptiness check of a changelog finds, in order."""
    answers = iter(empty_answers)
    written: list[str] = []

    async def changelog_is_empty(kafka: Any, topic: str) -> bool:
        return next(answers)

    async def write(kafka: Any, topic: str, partitions: int, states: dict[str, bytes]) -> None:
        written.append(topic)

    state = SimpleNamespace(model_dump_json=lambda: "{}")
    rebuilt = SimpleNamespace(sources={"k": state}, entities={"e": state}, counts=dict, skipped=[])
    monkeypatch.setattr(restore, "changelog_is_empty", changelog_is_empty)
    monkeypatch.setattr(restore, "_write", write)
    monkeypatch.setattr(restore, "read_directory", lambda params, base: {"uid=x": {}})
    monkeypatch.setattr(restore, "rebuild", lambda directory, ctx: rebuilt)
    ctx = Context(base_dn="dc=example")
    asyncio.run(restore.restore_lost_state(CONFIG, KafkaParams("x:9092"), ctx, None))  # type: ignore[arg-type]
    return written


def test_both_tables_restored_when_still_empty_after_the_directory_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(monkeypatch, [True, True, True, True]) == [
        "entsync-sources-changelog",
        "entsync-entities-changelog",
    ]


def test_a_table_another_worker_restored_meanwhile_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sources, entities empty at first; after the read, entities has the other worker's states.
    assert run(monkeypatch, [True, True, True, False]) == ["entsync-sources-changelog"]
    assert run(monkeypatch, [True, True, False, False]) == []

"""The worker's flow-control settings (ENTSYNC_INTAKE_MAX_WAITING, _KAFKA_FETCH_PARTITION_BYTES,
_WRITE_WINDOW_MAX_INPUTS): one default each, carried to the stream shell's plain values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.stream import deployment
from connectors.stream.intake import IntakeLimits
from connectors.stream.write_window import WindowLimits
from entsync.settings import Settings
from entsync.stream_config import stream_config

NAMES = (
    "ENTSYNC_INTAKE_MAX_WAITING",
    "ENTSYNC_KAFKA_FETCH_PARTITION_BYTES",
    "ENTSYNC_WRITE_WINDOW_MAX_INPUTS",
)


@pytest.fixture(autouse=True)
def no_flow_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_the_shells_own(tmp_path: Path) -> None:
    config = stream_config(Settings(state_dir=tmp_path))
    assert config.intake_max_waiting == IntakeLimits().high == deployment.INTAKE_MAX_WAITING
    assert config.fetch_partition_bytes == deployment.FETCH_PARTITION_BYTES
    assert config.window_max_inputs == WindowLimits().max_inputs == deployment.WINDOW_MAX_INPUTS


def test_a_smaller_write_window_is_carried_to_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTSYNC_WRITE_WINDOW_MAX_INPUTS", "2500")
    assert stream_config(Settings(state_dir=tmp_path)).window_max_inputs == 2500


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_write_window_of_no_input_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ENTSYNC_WRITE_WINDOW_MAX_INPUTS", value)
    with pytest.raises(ValidationError, match="write_window_max_inputs"):
        Settings(state_dir=tmp_path)

"""What the stream shell needs to know of the deployment, as plain values.

Built from the settings by :mod:`entsync.stream_config`; ``connectors/`` never reads the settings
itself, so the shell can be driven by a test, a benchmark or a replay with values of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Defaults of the flow-control values, shared with the settings (ENTSYNC_*), which say what
# each one trades (README "Configuration").
INTAKE_MAX_WAITING = 300  # entity inputs waiting over which the feed is paused
FETCH_PARTITION_BYTES = 16_384  # the most one fetch brings per partition
WINDOW_MAX_INPUTS = 10_000  # the inputs a write window holds at most


@dataclass(frozen=True)
class StreamTopics:
    """The topic names a run uses: the live ones, or a replay's private copies."""

    feed: str
    entities: str
    audit: str
    decisions: str
    lifecycle: str

    def streams(self) -> tuple[str, str]:
        """The two topics the worker's agents consume."""
        return self.feed, self.entities


@dataclass(frozen=True)
class StreamConfig:
    app_id: str  # consumer group and prefix of the table changelogs
    partitions: int
    topics: StreamTopics
    state_dir: Path  # faust's data directory goes under it
    session_timeout_s: float
    fetch_max_wait_ms: int
    sweep_hour: int | None  # hour (Paris time) of the nightly lifecycle sweep; None: no sweep
    replay: bool = False  # a replay's worker: private topics, never restores lost tables
    intake_max_waiting: int = INTAKE_MAX_WAITING  # feed paused above (intake); 0: never
    fetch_partition_bytes: int = FETCH_PARTITION_BYTES  # a fetch's most per partition (intake)
    window_max_inputs: int = WINDOW_MAX_INPUTS  # a write window's inputs (write_window)

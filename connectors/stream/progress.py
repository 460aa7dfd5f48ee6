"""The worker's counters, read by the idle detector, the benchmark and the end-of-run summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Progress:
    """Counters read by the idle detector and the end-of-run summary."""

    in_flight: int = 0
    feed_events: int = 0
    control_events: int = 0  # of which the worker's own snapshot scans and tallies
    entity_inputs: int = 0
    directory_changes: int = 0
    noop_writes: int = 0
    refused_writes: int = 0
    logins_reallocated: int = 0  # of the refused writes: an add whose login another entry had
    by_action: dict[str, int] = field(default_factory=dict)
    feed_pauses: int = 0  # times the intake paused the feed (connectors.stream.intake)

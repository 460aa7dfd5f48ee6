"""The group benchmark's figures (bench/group.py): several workers' results as one load."""

from __future__ import annotations

from typing import Any

from tests.unit.bench_files import load_bench

group = load_bench("group")


def _result(first: float | None, last: float | None, **counts: float) -> dict[str, Any]:
    base = {"feed_events": 0, "entity_inputs": 0, "directory_changes": 0, "cpu_s": 0.0}
    return {
        **base,
        "decide_s": 0.0,
        "peak_rss_mb": 200.0,
        "first_batch_at": first,
        "last_update_at": last,
        **counts,
    }


def test_the_window_spans_every_worker_and_counts_add_up() -> None:
    figures = group.group_figures(
        [
            _result(100.0, 150.0, feed_events=600, directory_changes=900),
            _result(104.0, 162.5, feed_events=400, directory_changes=700),
        ]
    )
    assert figures["window_s"] == 62.5  # first batch of one, last update of the other
    assert figures["feed_events"] == 1000
    assert figures["directory_changes"] == 1600
    assert (figures["workers"], figures["busy_workers"]) == (2, 2)


def test_a_worker_that_got_no_work_does_not_shape_the_window() -> None:
    figures = group.group_figures([_result(10.0, 40.0), _result(None, None)])
    assert figures["window_s"] == 30.0
    assert (figures["workers"], figures["busy_workers"]) == (2, 1)


def test_no_batch_at_all_has_no_window() -> None:
    assert group.group_figures([_result(None, None)])["window_s"] is None

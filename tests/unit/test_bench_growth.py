"""The growth benchmark's table and verdicts (bench/growth_table.py): figures in, verdicts out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.bench_files import load_bench

growth = load_bench("growth_table")


def _row(pupils: int, rate: float, rss: float, restart: float | None = 9.0, **more: Any) -> Any:
    return {
        "pupils": pupils,
        "entries_per_s": rate,
        "peak_rss_mb": rss,
        "restart_s": restart,
        "valid": True,
        **more,
    }


def _statuses(rows: list[dict[str, Any]]) -> list[str]:
    return [v["status"] for v in growth.verdicts(rows)]


def test_every_target_met() -> None:
    rows = [_row(100_000, 1_200, 250), _row(10_000, 900, 230)]  # any order
    assert _statuses(rows) == ["met", "met", "met", "met"]


def test_rate_judged_at_the_largest_size_and_rss_growth_smallest_to_largest() -> None:
    rows = [_row(10_000, 2_000, 200), _row(50_000, 1_500, 320), _row(100_000, 999, 242)]
    found = growth.verdicts(rows)
    assert [v["status"] for v in found] == ["MISSED", "MISSED", "MISSED", "met"]
    assert "999 entries/s at 100,000 pupils" in found[0]["figure"]
    assert "320.0 MB at 50,000 pupils" in found[1]["figure"]  # the highest, not the last
    assert "+21.0%" in found[2]["figure"]  # 242 / 200: above 20 %
    assert found[0]["note"] == ""  # the target's own size was measured


def test_flat_within_twenty_percent_is_met() -> None:
    assert _statuses([_row(10_000, 1_000, 200), _row(100_000, 1_000, 240)])[2] == "met"


def test_a_smaller_largest_size_is_said() -> None:
    found = growth.verdicts([_row(2_000, 1_500, 100)])
    assert found[0]["status"] == "met"
    assert "smaller" in found[0]["note"]
    assert found[2]["status"] == "not measured"  # one size: no growth


def test_restarts_not_run_are_not_measured() -> None:
    found = growth.verdicts([_row(1_000, 10, 100, None), _row(2_000, 10, 100, None)])
    assert found[3]["status"] == "not measured"
    assert _statuses([_row(1_000, 10, 100, 16.0), _row(2_000, 10, 100, None)])[3] == "MISSED"


def test_a_row_not_valid_makes_its_verdicts_invalid() -> None:
    rows = [_row(10_000, 2_000, 100), _row(100_000, 2_000, 100, valid=False)]
    assert _statuses(rows) == ["invalid", "invalid", "invalid", "invalid"]
    rows = [
        _row(10_000, 2_000, 100, valid=False),
        _row(50_000, 2_000, 100),
        _row(100_000, 2_000, 100),
    ]
    assert _statuses(rows) == ["met", "invalid", "invalid", "invalid"]


def test_no_rows_no_verdicts() -> None:
    assert growth.verdicts([]) == []


def test_size_row_figures() -> None:
    load = {
        "window_s": 20.0,
        "changes_per_s": 110.0,
        "directory_changes": 2_200,
        "decide_s": 5.0,
        "peak_rss_mb": 150.0,
        "writer_peak_rss_mb": 40.0,
    }
    restarts = [{"startup_s": 8.0}, {"startup_s": 11.5}, {"startup_s": None}]
    clients = {"ldapadd": 1_000.0, "pipelined": 4_000.0}
    row = growth.size_row(1_000, 10, load, 2_000, restarts, clients, [])
    assert row["entries_per_s"] == 100.0
    assert row["writes_per_entry"] == 1.1
    assert row["restart_s"] == 11.5  # the slowest
    assert row["capacity_share"] == 0.025  # of the faster client
    assert row["worker_vs_ldapadd"] == 0.1
    assert row["valid"] is True
    no_window = growth.size_row(1_000, 10, {**load, "window_s": None}, 2_000, [], clients, ["x"])
    assert no_window["capacity_share"] is None
    assert no_window["restart_s"] is None
    assert no_window["valid"] is False


def test_table_marks_invalid_rows_and_missing_figures() -> None:
    rows = [_row(2_000, 120.4, 140.0, None, valid=False), _row(1_000, 100.0, 130.0)]
    lines = growth.table_lines(rows)
    assert lines[0].split()[:3] == ["pupils", "entries", "entries/s"]
    assert lines[1].split()[0] == "1,000"  # sorted by size
    assert lines[2].split()[0] == "2,000!"
    assert lines[2].split()[-1] == "-"  # no restart
    assert len({len(line) for line in lines}) == 1  # aligned


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("10000,20k,1e5", [10_000, 20_000, 100_000]), (" 500, 500 ,1000,", [500, 1_000])],
)
def test_parse_sizes(text: str, sizes: list[int]) -> None:
    assert growth.parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "0", "1.5", "many"])
def test_parse_sizes_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        growth.parse_sizes(text)


def test_schools_for() -> None:
    assert growth.schools_for(10_000, 100) == 100
    assert growth.schools_for(150, 100) == 2
    assert growth.schools_for(1, 100) == 1

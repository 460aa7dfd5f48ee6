"""The growth table of ``bench/growth.py`` and its verdicts: figures in, lines out (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

TARGET_ENTRIES_PER_S = 1000.0
TARGET_AT_PUPILS = 100_000
TARGET_RSS_MB = 300.0
TARGET_RSS_GROWTH = 0.20
TARGET_RESTART_S = 15.0


def parse_sizes(text: str) -> list[int]:
    """``10000,20k,1e5`` style lists, sorted, without repeats."""
    sizes = set()
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        scale = 1000 if part.endswith("k") else 1
        value = float(part.removesuffix("k")) * scale
        if value < 1 or value != int(value):
            raise ValueError(f"not a number of pupils: {part!r}")
        sizes.add(int(value))
    if not sizes:
        raise ValueError("no size given")
    return sorted(sizes)


def schools_for(pupils: int, per_school: int) -> int:
    """Schools of ``per_school`` pupils for at least ``pupils`` (the row gives the real count)."""
    return max(1, math.ceil(pupils / per_school))


def _ratio(value: float | None, of: float | None) -> float | None:
    return round(value / of, 3) if value is not None and of else None


def _verdict(
    target: str,
    figure: str,
    met: bool | None,
    used: Sequence[Mapping[str, Any]] = (),
    note: str = "",
) -> dict[str, Any]:
    if met is None:
        status = "not measured"
    elif not all(r["valid"] for r in used):
        status = "invalid"  # a worker stopped with work left: its figures say nothing
    else:
        status = "met" if met else "MISSED"
    return {"target": target, "figure": figure, "status": status, "note": note}


_FLAT = f"worker peak RSS flat, within {TARGET_RSS_GROWTH:.0%}, smallest to largest size"
_RESTART = f"restart to first batch <= {TARGET_RESTART_S:,.0f} s"


def verdicts(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per target of issue #17 from the rows of the growth table.

    A row needs ``pupils``, ``entries_per_s``, ``peak_rss_mb``, ``restart_s`` (None: not
    measured) and ``valid``.
    """
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: r["pupils"])
    smallest, largest = rows[0], rows[-1]
    rate = largest["entries_per_s"]
    short = largest["pupils"] < TARGET_AT_PUPILS
    found = [
        _verdict(
            f"initial load >= {TARGET_ENTRIES_PER_S:,.0f} entries/s at {TARGET_AT_PUPILS:,} pupils",
            f"{rate:,.0f} entries/s at {largest['pupils']:,} pupils",
            rate >= TARGET_ENTRIES_PER_S,
            [largest],
            "judged at the largest size here, smaller than the target's" if short else "",
        )
    ]
    heaviest = max(rows, key=lambda r: r["peak_rss_mb"])
    found.append(
        _verdict(
            f"worker peak RSS <= {TARGET_RSS_MB:,.0f} MB",
            f"{heaviest['peak_rss_mb']:,.1f} MB at {heaviest['pupils']:,} pupils (the highest)",
            heaviest["peak_rss_mb"] <= TARGET_RSS_MB,
            rows,
            "the worker process; its writer process is apart, in the table",
        )
    )
    if len(rows) < 2:
        found.append(_verdict(_FLAT, "one size only", None))
    else:
        growth = largest["peak_rss_mb"] / smallest["peak_rss_mb"] - 1
        found.append(
            _verdict(
                _FLAT,
                f"{growth:+.1%} from {smallest['pupils']:,} to {largest['pupils']:,} pupils "
                f"({smallest['peak_rss_mb']:,.1f} -> {largest['peak_rss_mb']:,.1f} MB)",
                growth <= TARGET_RSS_GROWTH,
                [smallest, largest],
            )
        )
    restarted = [r for r in rows if r["restart_s"] is not None]
    if not restarted:
        found.append(_verdict(_RESTART, "no restart run", None))
    else:
        slowest = max(restarted, key=lambda r: r["restart_s"])
        found.append(
            _verdict(
                _RESTART,
                f"{slowest['restart_s']:,.1f} s at {slowest['pupils']:,} pupils (the slowest)",
                slowest["restart_s"] <= TARGET_RESTART_S,
                restarted,
            )
        )
    return found


COLUMNS = (
    ("pupils", "pupils", ",.0f"),
    ("entries", "directory_entries", ",.0f"),
    ("entries/s", "entries_per_s", ",.0f"),
    ("changes/s", "changes_per_s", ",.0f"),
    ("writes/entry", "writes_per_entry", ".2f"),
    ("window s", "window_s", ",.1f"),
    ("decide s", "decide_s", ",.1f"),
    ("ldapadd/s", "ldapadd_adds_per_s", ",.0f"),
    ("pipelined/s", "pipelined_adds_per_s", ",.0f"),
    ("of capacity", "capacity_share", ".0%"),
    ("RSS MB", "peak_rss_mb", ",.0f"),
    ("writer MB", "writer_peak_rss_mb", ",.0f"),
    ("restart s", "restart_s", ",.1f"),
)


def table_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The growth table, one line per size ("-": not measured, "!": the run is not valid)."""
    cells = [[title for title, _key, _spec in COLUMNS]]
    for row in sorted(rows, key=lambda r: r["pupils"]):
        line = []
        for _title, key, spec in COLUMNS:
            value = row.get(key)
            line.append("-" if value is None else format(value, spec))
        if not row["valid"]:
            line[0] += "!"
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]


def verdict_lines(found: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"{v['status']:>12}: {v['target']}: {v['figure']}"
        + (f" ({v['note']})" if v["note"] else "")
        for v in found
    ]


def size_row(
    pupils: int,
    schools: int,
    load: Mapping[str, Any],
    entries: int,
    restarts: Sequence[Mapping[str, Any]],
    clients: Mapping[str, float],
    problems: Sequence[str],
) -> dict[str, Any]:
    """The table's figures of one size, from the worker's summary (``bench/sync.py``'s
    ``_summary``), the restart runs and the C clients' adds/s."""
    window = load["window_s"]
    rate = entries / window if window else None
    capacity = max(clients.values(), default=None)
    return {
        "pupils": pupils,
        "schools": schools,
        "directory_entries": entries,
        "entries_per_s": round(rate, 1) if rate is not None else 0.0,
        "changes_per_s": load["changes_per_s"],
        "writes_per_entry": _ratio(load["directory_changes"], entries),
        "window_s": window,
        "decide_s": load["decide_s"],
        "peak_rss_mb": load["peak_rss_mb"],
        "writer_peak_rss_mb": load["writer_peak_rss_mb"],
        "restart_s": max(
            (r["startup_s"] for r in restarts if r["startup_s"] is not None), default=None
        ),
        "ldapadd_adds_per_s": clients.get("ldapadd"),
        "pipelined_adds_per_s": clients.get("pipelined"),
        "capacity_share": _ratio(rate, capacity),
        "worker_vs_ldapadd": _ratio(rate, clients.get("ldapadd")),
        "valid": not problems,
        "problems": list(problems),
    }

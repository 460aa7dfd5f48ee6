"""Scale-out on one machine: the same initial load by one worker, then by several in one group.

For each worker count of ``--workers`` (default ``1,2``), on services of their own (a new, empty
slapd and a new broker, as ``bench/sync.py`` starts them), the same generated extract (same
seed) is published and that many of ``bench/sync.py``'s measuring workers (``run_worker`` until
idle, each in a subprocess) are started at once on one state dir: one consumer group, sharing
the ``ENTSYNC_TOPIC_PARTITIONS`` partitions. The group's window runs from the first batch any
worker took to the last counter any worker moved; entries/s over that window is compared with
the single worker's, measured in the same invocation.

A count's run is valid when each worker exits 0 (idle means the whole group's input is done),
the feed was read whole, the directory holds as many entries as with one worker, and one more
worker run on the same extract published again finds nothing to do (no premature idle).

    .venv/bin/python bench/group.py                       # 1 then 2 workers, 50 x 100 pupils
    .venv/bin/python bench/group.py --workers 1,2,4 --schools 100

On a machine with fewer cores than the workers, slapd and the broker need, workers only share
the same cores: the figure says how much a second worker gains where the first leaves CPU idle.
Exit status 1 if a run was not valid, 130 if interrupted; every process started is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is in bench/: without its folder on the path, ``import sync`` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))


def _sync() -> ModuleType:
    """``bench/sync.py`` as a module (``bench`` is no package; ``sync`` is the core's name)."""
    if "bench_sync" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_sync", HERE / "sync.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_sync"] = module  # before it runs: its dataclasses look it up
        spec.loader.exec_module(module)
    return sys.modules["bench_sync"]


def group_figures(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One group's load from its workers' results: counts summed, the window from the first
    batch of any worker to the last update of any."""
    firsts = [r["first_batch_at"] for r in results if r.get("first_batch_at") is not None]
    lasts = [r["last_update_at"] for r in results if r.get("last_update_at") is not None]
    window = max(lasts) - min(firsts) if firsts and lasts else None
    total = {
        key: sum(r[key] for r in results)
        for key in ("feed_events", "entity_inputs", "directory_changes", "cpu_s", "decide_s")
    }
    return {
        **total,
        "window_s": window,
        "workers": len(results),
        "busy_workers": len(firsts),
        "peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in results],
        "feed_pauses": sum(r.get("feed_pauses", 0) for r in results),
    }


def measure(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    from connectors.ldap import count_entries
    from entsync.kafka_clients import kafka_params
    from entsync.ldap_clients import ldap_params

    sync = _sync()
    with sync.fresh_run() as run:
        settings = sync.start_services(run, _say)
        kafka, partitions = kafka_params(settings), settings.topic_partitions
        feed = sync._extract(run.work_dir, args.schools, args.pupils, args.seed)
        asyncio.run(sync._publish_feed(kafka, partitions, feed))
        _say(f"{workers} worker(s) at once: initial load of {len(feed):,} feed events ...")
        results, services_cpu = run.children_at_once("worker", workers)
        entries = count_entries(ldap_params(settings), settings.ldap_base_dn)
        asyncio.run(sync._publish_feed(kafka, partitions, feed))
        _say(f"{workers} worker(s): the same extract again, one worker ...")
        again, _ = run.child("worker")
    group = group_figures(results)
    problems = sync.premature_idle(len(feed), group, again)
    return {
        **group,
        "partitions": partitions,
        "published": len(feed),
        "entries": entries,
        "entries_per_s": round(sync._rate(entries, group["window_s"]), 1),
        "changes_per_s": round(sync._rate(group["directory_changes"], group["window_s"]), 1),
        "slapd_cpu_s": services_cpu.get("slapd"),
        "broker_cpu_s": services_cpu.get("broker"),
        "problems": problems,
    }


def report(rows: Sequence[dict[str, Any]], args: argparse.Namespace) -> bool:
    """The table and the JSON line; whether every run was valid."""
    sync = _sync()
    base = rows[0]
    for row in rows[1:]:
        if row["entries"] != base["entries"]:
            row["problems"].append(
                f"{row['entries']:,} entries with {row['workers']} workers, "
                f"{base['entries']:,} with {base['workers']}"
            )
    print(
        f"\nentsync group benchmark: {args.schools} schools x {args.pupils} pupils (seed "
        f"{args.seed}), {base['partitions']} partitions; each count on services of its own"
    )
    header = ["workers", "entries", "window s", "entries/s", "vs first", "writes/entry", "RSS MB"]
    print("  ".join(f"{h:>12}" for h in header))
    for row in rows:
        ratio = row["entries_per_s"] / base["entries_per_s"] if base["entries_per_s"] else None
        cells = [
            f"{row['workers']} ({row['busy_workers']} busy)",
            sync._fmt(row["entries"]),
            sync._fmt(row["window_s"], ".1f"),
            sync._fmt(row["entries_per_s"], ",.1f"),
            "-" if ratio is None else f"{ratio:.2f}x",
            f"{row['directory_changes'] / max(1, row['entries']):.2f}",
            " / ".join(f"{mb:.0f}" for mb in row["peak_rss_mb"]),
        ]
        print("  ".join(f"{c:>12}" for c in cells))
    for row in rows:
        for problem in row["problems"]:
            print(f"INVALID RUN with {row['workers']} workers: {problem}")
    valid = not any(row["problems"] for row in rows)
    summary = {"bench": "group", "schools": args.schools, "pupils_per_school": args.pupils}
    print(json.dumps({**summary, "seed": args.seed, "rows": list(rows), "valid": valid}))
    return valid


def _say(message: str) -> None:
    if sys.stderr.isatty():
        print(message, file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--schools", type=int, default=50)
    parser.add_argument("--pupils", type=int, default=100, help="pupils a school")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error("--workers: comma-separated whole numbers, for instance 1,2")
    if not counts or min(counts) < 1 or args.schools < 1 or args.pupils < 1:
        parser.error("worker counts, --schools and --pupils must be at least 1")
    sync = _sync()
    sync._quiet_logs()
    signal.signal(signal.SIGTERM, sync._on_sigterm)
    rows = []
    try:
        for workers in counts:
            rows.append(measure(workers, args))
    except KeyboardInterrupt:
        return 130
    return 0 if rows and report(rows, args) else 1


if __name__ == "__main__":
    sys.exit(main())

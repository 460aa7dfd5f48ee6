"""Benchmark of ingestion: records/s of pass 1 (scan) and pass 2 (events), events/s published,
and peak RSS.

Two generated extracts (small and large, the large one ≥ 500,000 records) are measured side by
side, each in a fresh subprocess so that its peak RSS is its own. Each pass is run ``--repeat``
times and the best time kept (shared machines are noisy). Publishing (pass 2 + the feed producer,
as ``entsync ingest`` does) is measured once per size on a local broker this script starts and
stops by pid; ``--no-publish`` skips it.

    .venv/bin/python bench/ingest.py                      # defaults: ~22 k and ~525 k records
    .venv/bin/python bench/ingest.py --small 20x50 --large 2400x100 --workdir /tmp/aafbench

Targets: ≥ 20,000 records/s per pass on one core, peak RSS < 200 MB and flat across sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path: keep its other scripts (bench/sync.py...)
# from shadowing the project's packages.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

TARGET_RATE = 20_000
TARGET_RSS_MB = 200


def _quiet_logs() -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _publish(scans: list[object], bootstrap: str) -> tuple[int, float]:
    import asyncio

    from connectors.aaf import events
    from connectors.stream.clients import KafkaParams
    from connectors.stream.publisher import FeedPublisher
    from connectors.stream.topics import ensure_topics

    kafka = KafkaParams(bootstrap)

    async def run() -> tuple[int, float]:
        await ensure_topics(kafka, 4)
        async with FeedPublisher(kafka) as publisher:
            start = time.perf_counter()
            count = await publisher.publish_all(e for s in scans for e in events(s))  # type: ignore[arg-type]
            return count, time.perf_counter() - start

    return asyncio.run(run())


def measure(directory: Path, repeat: int, bootstrap: str | None = None) -> dict[str, float]:
    """Runs in the child: pass 1 then pass 2 over the full files of ``directory``.

    Each pass is timed ``repeat`` times and the best time kept (the machine may be shared); the
    peak RSS covers every repetition.
    """
    _quiet_logs()
    from connectors.aaf import events, scan

    paths = sorted(p for p in directory.glob("ENT_*_Complet_*.xml"))
    pass1 = pass2 = float("inf")
    emitted = records = 0
    for _ in range(repeat):
        start = time.perf_counter()
        scans = [scan(p) for p in paths]
        pass1 = min(pass1, time.perf_counter() - start)
        start = time.perf_counter()
        emitted = sum(1 for s in scans for _ in events(s))
        pass2 = min(pass2, time.perf_counter() - start)
        records = sum(s.records for s in scans)
        del scans  # a repetition must not hold the previous one's reports
    published, publish_s = 0, float("nan")
    if bootstrap:
        published, publish_s = _publish([scan(p) for p in paths], bootstrap)
    return {
        "published": published,
        "publish_s": publish_s,
        "publish_rate": published / publish_s if published else float("nan"),
        "records": records,
        "events": emitted,
        "bytes": sum(p.stat().st_size for p in paths),
        "pass1_s": pass1,
        "pass2_s": pass2,
        "pass1_rate": records / pass1,
        "pass2_rate": records / pass2,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` where /proc has it (a child's ``ru_maxrss`` starts at
    its parent's peak on Linux), else ``ru_maxrss`` (KiB on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(directory: Path, schools: int, pupils: int, seed: int) -> None:
    _quiet_logs()
    from connectors.aaf.generator import GeneratorConfig, generate

    config = GeneratorConfig(schools=schools, pupils_per_school=pupils, seed=seed, delta=False)
    generate(directory, config)


def _size(text: str) -> tuple[int, int]:
    schools, pupils = text.lower().split("x")
    return int(schools), int(pupils)


def _run_child(directory: Path, repeat: int, bootstrap: str | None) -> dict[str, float]:
    extra = ["--bootstrap", bootstrap] if bootstrap else []
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(directory), "--repeat", str(repeat), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", default="100x100", help="SCHOOLSxPUPILS_PER_SCHOOL")
    parser.add_argument("--large", default="2400x100", help="SCHOOLSxPUPILS_PER_SCHOOL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings per pass")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the extracts here")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--no-publish", action="store_true", help="skip the publishing figure")
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.repeat, args.bootstrap)))
        return 0
    if args.generate is not None:
        directory, *numbers = args.generate
        schools, pupils, seed = (int(n) for n in numbers)
        _generate(Path(directory), schools, pupils, seed)
        return 0

    base = args.workdir or Path(tempfile.mkdtemp(prefix="aafbench-"))
    if args.no_publish:
        return _measure_all(args, base, None)
    from connectors.services import broker
    from connectors.services.process import free_port, stop_pid

    layout = broker.BrokerLayout(base / "broker")
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    pid = broker.start(broker.find_broker(), layout, port)
    try:
        broker.wait_ready(port=port, pid=pid, layout=layout, timeout=30)
        return _measure_all(args, base, broker.bootstrap(port))
    finally:
        stop_pid(pid, marker=broker.marker(port))


def _measure_all(args: argparse.Namespace, base: Path, bootstrap: str | None) -> int:
    results: dict[str, dict[str, float]] = {}
    for label, size in (("small", args.small), ("large", args.large)):
        schools, pupils = _size(size)
        directory = base / label
        if not any(directory.glob("ENT_*_Complet_*.xml")):
            t = time.perf_counter()
            # Generated in a subprocess too: the measuring child starts with a clean heap.
            command = [sys.executable, __file__, "--generate", str(directory)]
            subprocess.run([*command, str(schools), str(pupils), str(args.seed)], check=True)
            print(
                f"generated {label} extract ({size}) in {time.perf_counter() - t:.1f}s",
                file=sys.stderr,
            )
        results[label] = _run_child(directory, args.repeat, bootstrap)

    small, large = results["small"], results["large"]
    rows = [
        ("records", "records", "{:,.0f}"),
        ("file bytes (MB)", "bytes", "{:,.1f}"),
        ("pass 1 scan (rec/s)", "pass1_rate", "{:,.0f}"),
        ("pass 2 events (rec/s)", "pass2_rate", "{:,.0f}"),
        ("published (events/s)", "publish_rate", "{:,.0f}"),
        ("pass 1 time (s)", "pass1_s", "{:,.2f}"),
        ("pass 2 time (s)", "pass2_s", "{:,.2f}"),
        ("publish time (s)", "publish_s", "{:,.2f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:,.1f}"),
    ]
    print(f"{'':24}{'small':>14}{'large':>14}{'large/small':>14}")
    for title, key, fmt in rows:
        a, b = small[key], large[key]
        if key == "bytes":
            a, b = a / 1e6, b / 1e6
        print(f"{title:24}{fmt.format(a):>14}{fmt.format(b):>14}{b / a:>14.2f}")
    ok_rate = (
        min(small["pass1_rate"], small["pass2_rate"], large["pass1_rate"], large["pass2_rate"])
        >= TARGET_RATE
    )
    ok_rss = max(small["peak_rss_mb"], large["peak_rss_mb"]) < TARGET_RSS_MB
    print(
        f"target ≥ {TARGET_RATE:,} rec/s per pass: {'met' if ok_rate else 'NOT met'}; "
        f"peak RSS < {TARGET_RSS_MB} MB: {'met' if ok_rss else 'NOT met'}; "
        f"RSS large/small = {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

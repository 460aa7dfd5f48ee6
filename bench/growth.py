"""Growth table: the worker's initial load at several sizes, beside the directory's capacity.

Several sizes in one invocation, each measured side by side with the directory server's own
capacity for the same entries.

For each size (pupils, ``--pupils-per-school`` a school), on services of its own (a new, empty
slapd and a new broker, started and stopped as ``bench/sync.py`` does):

1. initial load: a generated full extract is published and the worker (``bench/sync.py``'s
   measuring child: ``run_worker`` until idle, in a subprocess) syncs it into the empty
   directory: entries/s and changes/s over its processing window, writes an entry, time in
   ``decide()``, peak RSS of the worker process and of its writer process;
2. restarts (``--restarts N``, default 1): the same extract published again and the worker
   started on the tables the runs before left: restart to first batch. The first also checks
   that the load left no work (else the size's row is not valid);
3. the directory server's capacity: every entry the worker wrote added again by ``ldapadd``
   (OpenLDAP's C client, one request at a time, under ``ou=bench-c-*``), then by python-ldap
   alone, ``--window`` requests in flight on one connection (under ``ou=bench-p-*``): the
   clients of ``bench/ldap_writer.py``. The worker's entries/s is given as a share of the faster.
   (The clients add into a directory already holding the worker's entries: if anything, theirs
   is the larger directory.)

Then the growth table, one verdict line per target of issue #17 (met / MISSED / not measured)
and, last, one JSON object with every figure. Progress goes to stderr on a terminal only.

    .venv/bin/python bench/growth.py                       # 10k, 20k, 50k, 100k: under an hour
    .venv/bin/python bench/growth.py --pupils 500,1000,2000   # a quick look, about 4 min
    .venv/bin/python bench/growth.py --restarts 0          # no restart runs

Targets (issue #17, on the 2-core machine): initial load at least 1,000 entries/s at 100,000
pupils; worker peak RSS at most 300 MB and within 20 % from the smallest size to the largest;
restart to first batch at most 15 s. Exit status 1 if a size's run was not valid, 130 if
interrupted; every process the benchmark started is stopped by pid in every case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is in bench/: without its folder on the path, ``import sync`` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

DEFAULT_PUPILS = "10000,20000,50000,100000"
# The worker child's time limit, unless ENTSYNC_BENCH_CHILD_TIMEOUT_S says: large loads are slow.
CHILD_SECONDS_PER_PUPIL = 0.06


def _sibling(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (``bench`` is no package; ``sync`` is the core's name)."""
    key = f"bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[key]


table = _sibling("growth_table")  # the pure part: figures in, table and verdicts out


# -- the measurements -------------------------------------------------------------------------


def _say_on_terminal(message: str) -> None:
    if sys.stderr.isatty():
        print(message, file=sys.stderr)


@contextlib.contextmanager
def _quiet_unless_terminal() -> Iterator[None]:
    """bench/ldap_writer.py's clients print each figure to stderr: only on a terminal here."""
    if sys.stderr.isatty():
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def directory_capacity(
    run: Any, settings: Any, window: int, say: Callable[[str], None]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """adds/s of ``ldapadd`` and of python-ldap pipelined, each adding a copy of every entry the
    worker wrote (bench/sync.py's copies); with their rows (CPU per add, slapd's included)."""
    from connectors.ldap.healing import AddRequest
    from connectors.ldap.ldif import LdifEntry, format_ldif
    from entsync.ldap_clients import ldap_params

    sync, writers = _sibling("sync"), _sibling("ldap_writer")
    params = ldap_params(settings)
    bench = writers.Bench(params, run.service_pid("slapd"), run.work_dir, None)
    password = writers.password_file(params, run.work_dir)

    copies = sync.bench_copies(settings, "bench-c-")
    ldif = run.work_dir / "copies.ldif"
    with open(ldif, "w") as out:
        out.writelines(format_ldif(LdifEntry(dn, attributes) for dn, attributes in copies))
    say(f"directory capacity: ldapadd of {len(copies):,} entries ...")
    with _quiet_unless_terminal():
        bench.measure(
            "ldapadd (C, one at a time)",
            "add",
            len(copies),
            lambda: writers.ldap_tool("ldapadd", params, password, ldif),
        )
    ldif.unlink()
    del copies  # not two lists of copies at once (large sizes)

    copies = sync.bench_copies(settings, "bench-p-")
    requests = (AddRequest(dn, attributes) for dn, attributes in copies)
    say(f"directory capacity: python-ldap, {window} in flight ...")
    with writers.libldap_connection(params) as conn, _quiet_unless_terminal():
        bench.measure(
            f"python-ldap alone, window {window}",
            "add",
            len(copies),
            lambda: writers.pipeline(conn, requests, window),
        )
    ldapadd, pipelined = bench.rows
    return {"ldapadd": ldapadd["ops_per_s"], "pipelined": pipelined["ops_per_s"]}, bench.rows


def measure_size(
    pupils: int, args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, Any]:
    """One size on services of its own: the initial load, the restarts, the directory's
    capacity for the same entries."""
    from connectors.ldap import count_entries
    from entsync.kafka_clients import kafka_params
    from entsync.ldap_clients import ldap_params

    sync = _sibling("sync")
    schools = table.schools_for(pupils, args.pupils_per_school)
    pupils = schools * args.pupils_per_school
    started = time.perf_counter()
    with sync.fresh_run() as run:
        settings = sync.start_services(run, say)
        kafka, partitions = kafka_params(settings), settings.topic_partitions
        feed = sync._extract(run.work_dir, schools, args.pupils_per_school, args.seed)
        published = len(feed)
        say(f"{pupils:,} pupils: {published:,} feed events; initial load: worker ...")
        asyncio.run(sync._publish_feed(kafka, partitions, feed))
        load, load_cpu = run.child("worker")
        entries = count_entries(ldap_params(settings), settings.ldap_base_dn)
        restarts, first_restart = [], None
        for n in range(args.restarts):
            asyncio.run(sync._publish_feed(kafka, partitions, feed))
            say(f"restart after {n + 1} run(s): worker ...")
            result, _ = run.child("worker")
            first_restart = first_restart or result
            restarts.append(sync.restart_figures(result, n + 1))
        del feed  # the copies of the entries are next: not both in memory
        clients, client_rows = directory_capacity(run, settings, args.window, say)
        problems = sync.premature_idle(published, load, first_restart)
        initial = sync._summary(load, load_cpu)
    row: dict[str, Any] = table.size_row(
        pupils, schools, initial, entries, restarts, clients, problems
    )
    row.update(
        feed_events=published,
        pupils_per_school=args.pupils_per_school,
        initial=initial,
        restarts=restarts,
        directory_clients=client_rows,
        size_total_s=round(time.perf_counter() - started, 1),
    )
    return row


def report(rows: Sequence[dict[str, Any]], args: argparse.Namespace, stopped: str | None) -> bool:
    """The table, the verdicts and the JSON line; whether every run was valid."""
    print(
        f"\nentsync growth benchmark: initial load by size ({args.pupils_per_school} pupils a "
        f"school, seed {args.seed}); capacity: ldapadd and python-ldap ({args.window} in flight) "
        "adding the same entries"
    )
    for line in table.table_lines(rows):
        print(line)
    print(
        "entries/s and changes/s over the worker's processing window; of capacity: entries/s "
        "over the faster client's adds/s; RSS: peak of the worker process, writer: of its "
        "writer process; restart: start to first batch, the slowest restart"
    )
    found = table.verdicts(rows)
    for line in table.verdict_lines(found):
        print(line)
    for row in rows:
        for problem in row["problems"]:
            print(f"INVALID RUN at {row['pupils']:,} pupils: {problem}")
    if stopped:
        print(f"STOPPED ({stopped}): the sizes after these were not measured")
    valid = all(r["valid"] for r in rows) and not stopped
    summary = {
        "bench": "sync_growth",
        "pupils_per_school": args.pupils_per_school,
        "seed": args.seed,
        "restarts": args.restarts,
        "window": args.window,
        "rows": list(rows),
        "verdicts": found,
        "valid": valid,
        "stopped": stopped,
        # this process: the extract, then the copies of the entries (not a target's figure)
        "driver_peak_rss_mb": round(_sibling("sync")._peak_rss_mb(), 1),
    }
    print(json.dumps(summary, sort_keys=True))
    return valid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pupils",
        default=DEFAULT_PUPILS,
        help=f"sizes, comma-separated (default {DEFAULT_PUPILS}; 20k is 20000)",
    )
    parser.add_argument("--pupils-per-school", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--restarts", type=int, default=1, metavar="N", help="restart runs after each load"
    )
    parser.add_argument("--window", type=int, default=64, help="python-ldap alone: in flight")
    args = parser.parse_args()
    try:
        sizes = table.parse_sizes(args.pupils)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pupils_per_school < 1 or args.restarts < 0 or args.window < 1:
        parser.error("--pupils-per-school and --window must be at least 1, --restarts 0 or more")
    # Read by bench/sync.py when it loads, and by its worker children.
    timeout = max(600.0, CHILD_SECONDS_PER_PUPIL * sizes[-1])
    os.environ.setdefault("ENTSYNC_BENCH_CHILD_TIMEOUT_S", str(int(timeout)))
    sync = _sibling("sync")
    sync._quiet_logs()
    signal.signal(signal.SIGTERM, sync._on_sigterm)
    rows: list[dict[str, Any]] = []
    stopped: str | None = None  # why the sizes after the rows were not measured
    for pupils in sizes:
        try:
            rows.append(measure_size(pupils, args, _say_on_terminal))
        except KeyboardInterrupt:
            stopped = "interrupted"
        except (SystemExit, Exception) as exc:  # a child failed: its log is kept, named
            stopped = f"failed at {pupils:,} pupils: {exc}"
        if stopped:
            print(stopped, file=sys.stderr)
            break
    valid = report(rows, args, stopped) if rows else False
    if stopped == "interrupted":
        return 130
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the stream worker against bare baselines, measured side by side in one run.

On a slapd and a tansu broker it starts itself in a temporary state directory:

(b) initial load: a generated full extract is published and the worker (``run_worker``,
    until idle) syncs it into the empty directory: LDAP writes/s (directory changes / processing
    window) vs raw ldap3 synchronous adds/s of the same entries (copied under ``ou=bench-*``)
    with as many threads, one connection each, as the writer's ``max_in_flight``;
(a) nothing changed: the same extract is published again and the worker runs until idle: feed
    events/s vs a bare faust agent that only counts the same messages (same keys, same bytes,
    same app settings, ``take_events`` batches), started the same way.
(r) restarts (``--restarts N``): N more runs of (a), each a worker restarted on the tables the
    runs before left (on disk, and a longer changelog each time): restart to first batch, table
    recovery and peak RSS after 2, 3, ... N + 1 previous runs.

Each worker runs in a subprocess (own peak RSS). The processing window runs from the first batch
handed to an agent to the last counter update; the start-up before it (faust start, table
recovery, group join, first fetch) and the idle detection after it are printed separately.

    .venv/bin/python bench/sync.py                 # 20 schools x 100 pupils, about 1 minute
    .venv/bin/python bench/sync.py --quick         # smoke run (3 x 20)
    .venv/bin/python bench/sync.py --schools 60 --pupils 100 --keep     # about 2.5 minutes
    .venv/bin/python bench/sync.py --py-spy /path/to/py-spy   # where the worker's CPU goes
    .venv/bin/python bench/sync.py --null-writer  # the worker's own cost: LDAP never written
    .venv/bin/python bench/sync.py --writer ldap3  # the ldap3 writer (in 2 processes)
    .venv/bin/python bench/sync.py --writer ldap3 --writer-processes 0  # ldap3, in threads
    .venv/bin/python bench/sync.py --repeat 5     # five runs, then each ratio's median
    .venv/bin/python bench/sync.py --restarts 3   # restart to first batch after 2, 3, 4 runs
    ENTSYNC_WRITE_WINDOW_MAX_INPUTS=3000 .venv/bin/python bench/sync.py  # another window bound
    ENTSYNC_BENCH_FILE_ORDER=1 .venv/bin/python bench/sync.py  # the load in file order
    ENTSYNC_BENCH_TRACEMALLOC=1 .venv/bin/python bench/sync.py  # where the memory is (slow)
    ENTSYNC_INTAKE_MAX_WAITING=0 .venv/bin/python bench/sync.py  # the feed never held back

The last line of output is one JSON object with every figure (with ``--repeat``, the medians
and every run's figures). Exit status 1 if a run was not valid (a worker stopped as idle with
work left), 130 if interrupted; the services are stopped by pid in every case unless ``--keep``.

Targets: worker ≥ 50 % of the bare agent's events/s (a), ≥ 70 % of raw ldap3 adds/s (b).
The initial load at several sizes, beside ``ldapadd`` of the same entries: ``bench/growth.py``
(it reuses this module's runs and children).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is bench/sync.py: without its folder on the path, ``import sync`` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

TARGET_EVENTS_RATIO = 0.50
TARGET_WRITES_RATIO = 0.70
BARE_TOPIC = "entsync.bench.bare.v1"
BARE_APP_ID = "entsync-bench-bare"
BENCH_BRANCH_PREFIX = "bench-"
UNIQUE_ATTRIBUTE = "ENTPersonLogin"  # slapd's unique overlay: copies need logins of their own
# a worker run longer than this fails the run (larger sizes on a busy machine: raise it)
CHILD_TIMEOUT_S = float(os.environ.get("ENTSYNC_BENCH_CHILD_TIMEOUT_S", "600"))
FAUST_LOGLEVEL = "info"  # into the child's log file: joins, rebalances and recovery are there
# Variables that would point the benchmark at other services than the ones it starts.
_CONNECTION_VARS = (
    "ENTSYNC_KAFKA_BOOTSTRAP",
    "ENTSYNC_LDAP_URL",
    "ENTSYNC_LDAP_BIND_DN",
    "ENTSYNC_LDAP_PASSWORD",
    "ENTSYNC_LDAP_BASE_DN",
    "ENTSYNC_CONFIG",
    "ENTSYNC_STATE_DIR",
    "ENTSYNC_APP_ID",
)


def _quiet_logs() -> None:
    from entsync.logs import configure_logging

    configure_logging("console", "WARNING")


def _settings(state_dir: Path) -> Any:
    """Settings for the services recorded in ``state_dir`` (never the caller's ENTSYNC_* ones)."""
    from pydantic import SecretStr

    from connectors.services import read_info
    from entsync.settings import Settings

    info = read_info(state_dir)
    if not info:
        raise SystemExit(f"no services recorded in {state_dir}")
    return Settings(
        state_dir=state_dir,
        kafka_bootstrap=info["kafka_bootstrap"],
        ldap_url=info["ldap_url"],
        ldap_bind_dn=info["ldap_bind_dn"],
        ldap_password=SecretStr(info["ldap_password"]),
        ldap_base_dn=info["ldap_base_dn"],
        log_format="console",
        log_level="WARNING",
    )


def _peak_rss_mb() -> float:
    """This process's peak RSS. From /proc where there is one: a child's ``ru_maxrss`` starts
    at its parent's peak (Linux keeps it across fork and exec), so every measuring child would
    report at least this driver's peak, which holds the whole extract."""
    own = _vm_hwm_mb(os.getpid())
    if own is not None:
        return own
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _vm_hwm_mb(pid: int) -> float | None:
    """Peak RSS of a live process, from /proc (None if it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (the writer processes)."""
    return _self_cpu_s() + _children_cpu_s()


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of another process, from /proc (None if unreadable)."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


@contextlib.contextmanager
def _profiled(path: Path | None) -> Iterator[None]:
    """cProfile of the calling thread (the event loop) into ``path`` (.prof and .txt)."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(str(path))
        with open(path.with_suffix(".txt"), "w") as out:
            stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
            stats.print_stats(40)
            stats.sort_stats("cumulative").print_stats(60)


@contextlib.contextmanager
def _traced_memory(path: Path | None) -> Iterator[None]:
    """Where the worker's Python memory is when it is highest: every 15 s, if more is traced
    than at the last report, the 30 largest allocation sites go to ``path`` (slows the run)."""
    if path is None:
        yield
        return
    import tracemalloc

    tracemalloc.start(4)
    done = threading.Event()

    def watch() -> None:
        reported = 0
        while not done.wait(15):
            current = tracemalloc.get_traced_memory()[0]
            if current <= reported * 1.05:
                continue
            reported = current
            top = tracemalloc.take_snapshot().statistics("traceback")[:30]
            lines = [f"traced {current / 2**20:.1f} MB at {time.strftime('%H:%M:%S')}"]
            for stat in top:
                lines.append(f"{stat.size / 2**20:8.1f} MB {stat.count:>9,} blocks")
                lines += [f"    {frame}" for frame in stat.traceback.format()[-8:]]
            path.write_text("\n".join(lines) + "\n")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        tracemalloc.stop()


# -- child: our worker ------------------------------------------------------------------------


@dataclass
class _Marks:
    """Timestamps and time sums collected inside the worker process."""

    first_batch: float | None = None
    batches: int = 0
    last_update: float | None = None
    route_s: float = 0.0
    decide_s: float = 0.0
    ldap_s: float = 0.0
    ldap_ops: int = 0
    ldap_calls: int = 0
    writer_rss_mb: float | None = None  # the largest writer process's peak RSS
    inputs_by_type: dict[str, int] = field(default_factory=dict)  # decided, by input type


def _timed(func: Callable[..., Any], marks: _Marks, attr: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            setattr(marks, attr, getattr(marks, attr) + time.perf_counter() - start)

    return wrapper


def _patch(module: ModuleType, name: str, value: object) -> None:
    setattr(module, name, value)


def _instrument(marks: _Marks) -> None:
    """Observe the worker without changing it: counters' timestamps, route/decide/LDAP time.

    ``build_app`` looks ``Progress`` up in its module, the agents' batches ``route`` and
    ``decide`` in theirs, and ``run_worker`` looks ``directory_writer`` (the factory) up in its
    module, when they are called.
    """
    import connectors.stream.app as app_module
    import connectors.stream.feed_router as router_module
    import connectors.stream.reconciler as reconciler_module
    import entsync.worker as worker_module

    counters = {"feed_events", "entity_inputs", "directory_changes", "noop_writes"}

    from connectors.stream.progress import Progress

    class TimedProgress(Progress):
        def __setattr__(self, name: str, value: Any) -> None:
            previous = self.__dict__.get(name)
            if previous is not None:  # not during __init__
                now = time.perf_counter()
                if name == "in_flight":
                    if value > previous:
                        marks.batches += 1
                        if marks.first_batch is None:
                            marks.first_batch = now
                elif name in counters and value != previous:
                    marks.last_update = now
            object.__setattr__(self, name, value)

    from connectors.ldap.batch import BatchWriter

    # Names are patched where the worker looks them up: names those modules import, hence
    # vars() and _patch rather than attributes (mypy's strict re-export check).
    base_factory = vars(worker_module)["directory_writer"]

    def timed(base: type[BatchWriter]) -> type[BatchWriter]:
        """The writer's own class, its ``apply`` timed (either writer)."""

        class TimedWriter(base):  # type: ignore[misc,valid-type]
            async def apply(self, ops: Sequence[Any]) -> Any:
                start = time.perf_counter()
                try:
                    if os.environ.get("ENTSYNC_BENCH_NULL_WRITER"):
                        from connectors.ldap.writer import Action, OpResult

                        return [OpResult(op, Action.ADDED) for op in ops]
                    return await super().apply(ops)
                finally:
                    marks.ldap_s += time.perf_counter() - start
                    marks.ldap_ops += len(ops)
                    marks.ldap_calls += 1

            def close(self) -> None:
                executor = getattr(self, "_executor", None)
                processes = getattr(executor, "_processes", None) or {}
                for pid in list(processes):  # read before they exit
                    peak = _vm_hwm_mb(pid)
                    if peak is not None:
                        marks.writer_rss_mb = max(marks.writer_rss_mb or 0.0, peak)
                super().close()

        return TimedWriter

    _patch(app_module, "Progress", TimedProgress)
    route = vars(router_module)["route_batch"]
    _patch(router_module, "route_batch", _timed(route, marks, "route_s"))
    timed_decide = _timed(vars(reconciler_module)["decide"], marks, "decide_s")

    def counted_decide(state: Any, inp: Any, ctx: Any) -> Any:
        name = type(inp).__name__
        marks.inputs_by_type[name] = marks.inputs_by_type.get(name, 0) + 1
        return timed_decide(state, inp, ctx)

    _patch(reconciler_module, "decide", counted_decide)

    def timed_writer(settings: Any, **kwargs: Any) -> BatchWriter:
        writer: BatchWriter = base_factory(settings, **kwargs)
        writer.__class__ = timed(type(writer))  # the same writer, its apply timed
        return writer

    _patch(worker_module, "directory_writer", timed_writer)


def child_worker(state_dir: Path, out: Path, profile: Path | None) -> int:
    _quiet_logs()
    from entsync.kafka_clients import kafka_params
    from entsync.worker import run_worker

    settings = _settings(state_dir)
    marks = _Marks()
    _instrument(marks)
    cpu0, children0 = _cpu_s(), _children_cpu_s()
    started = time.perf_counter()
    traced = os.environ.get("ENTSYNC_BENCH_TRACEMALLOC")
    traced_out = out.with_suffix(".memory.txt") if traced else None
    with _profiled(profile), _traced_memory(traced_out):
        result = run_worker(
            settings,
            kafka_params(settings),
            until_idle=True,
            timeout_s=CHILD_TIMEOUT_S,
            loglevel=FAUST_LOGLEVEL,
        )
    ended = time.perf_counter()
    now_wall = time.time() - ended  # perf_counter -> wall clock (children side by side)
    p = result.progress
    first = marks.first_batch
    last = marks.last_update
    _write_json(
        out,
        {
            "exit_code": result.exit_code,
            "error": result.error,
            # The worker's own scans and tallies travel on the feed topic too: not feed events.
            "feed_events": p.feed_events - p.control_events,
            "control_events": p.control_events,
            "entity_inputs": p.entity_inputs,
            "directory_changes": p.directory_changes,
            "noop_writes": p.noop_writes,
            "feed_pauses": p.feed_pauses,
            "by_action": dict(p.by_action),
            "total_s": ended - started,
            "startup_s": (first - started) if first is not None else None,
            "window_s": (last - first) if first is not None and last is not None else None,
            "tail_s": (ended - last) if last is not None else None,
            "first_batch_at": (now_wall + first) if first is not None else None,
            "last_update_at": (now_wall + last) if last is not None else None,
            "route_s": marks.route_s,
            "decide_s": marks.decide_s,
            "inputs_by_type": dict(sorted(marks.inputs_by_type.items())),
            "ldap_s": marks.ldap_s,
            "ldap_ops": marks.ldap_ops,
            "ldap_calls": marks.ldap_calls,
            "batches": marks.batches,
            "cpu_s": _cpu_s() - cpu0,
            "writers_cpu_s": _children_cpu_s() - children0,
            "peak_rss_mb": _peak_rss_mb(),
            "writer_peak_rss_mb": marks.writer_rss_mb,  # none in threads
            "writer_processes": settings.writer_processes(),
            "ldap_writer": settings.ldap_writer,
            "max_in_flight": settings.ldap_max_in_flight,
            "partitions": settings.topic_partitions,
        },
    )
    return result.exit_code


# -- child: bare faust agent ------------------------------------------------------------------


class _Captured(Exception):
    pass


def _app_settings(settings: Any) -> dict[str, Any]:
    """The keyword arguments ``build_app`` gives ``faust.App``, captured by calling it."""
    import faust

    from connectors.stream.app import build_app
    from entsync.kafka_clients import kafka_params
    from entsync.stream_config import context_of, guard_from, policy_from, stream_config

    captured: dict[str, Any] = {}
    real_app = faust.App

    def capture(app_id: str, **kwargs: Any) -> Any:
        captured.update(kwargs)
        raise _Captured

    _patch(faust, "App", capture)
    try:
        build_app(
            stream_config(settings),
            context_of(settings),
            None,  # type: ignore[arg-type]  # never used: faust.App raises first
            kafka_params(settings),
            guard=guard_from(settings),
            policy=policy_from(settings),
        )
    except _Captured:
        pass
    finally:
        _patch(faust, "App", real_app)
    if not captured:
        raise RuntimeError("could not capture the faust.App settings of build_app")
    return captured


def child_bare(state_dir: Path, out: Path, expected: int) -> int:
    _quiet_logs()
    import faust

    from connectors.stream.app import BATCH_MAX, BATCH_WITHIN_S

    settings = _settings(state_dir)
    app_kwargs = _app_settings(settings)  # also installs guard_untracked_acks, as build_app does
    cpu0 = _cpu_s()
    started = time.perf_counter()
    app = faust.App(BARE_APP_ID, **app_kwargs)
    topic = app.topic(
        BARE_TOPIC, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions
    )
    state: dict[str, Any] = {"count": 0, "first": None, "last": None, "error": None}
    worker = faust.Worker(app, loglevel=FAUST_LOGLEVEL, quiet=True, redirect_stdouts=False)
    stopping: list[Any] = []

    def stop() -> None:
        if not stopping:
            stopping.append(asyncio.ensure_future(worker.stop()))

    @app.agent(topic, name="bare_count")
    async def bare_count(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["count"] += len(batch)
            state["last"] = time.perf_counter()
            if state["count"] >= expected:
                stop()

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def watchdog() -> None:
        if time.perf_counter() - started > CHILD_TIMEOUT_S:
            state["error"] = f"only {state['count']} of {expected} messages after timeout"
            stop()

    exit_code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        exit_code = exc.code if isinstance(exc.code, int) else 1
    ended = time.perf_counter()
    first, last = state["first"], state["last"]
    if state["count"] < expected:
        exit_code = exit_code or 1
        state["error"] = state["error"] or f"stopped after {state['count']} of {expected}"
    _write_json(
        out,
        {
            "exit_code": exit_code,
            "error": state["error"],
            "messages": state["count"],
            "total_s": ended - started,
            "startup_s": (first - started) if first is not None else None,
            "window_s": (last - first) if first is not None and last is not None else None,
            "tail_s": (ended - last) if last is not None else None,
            "cpu_s": _cpu_s() - cpu0,
            "peak_rss_mb": _peak_rss_mb(),
        },
    )
    return exit_code


# -- parent -----------------------------------------------------------------------------------


@dataclass
class Run:
    """The parent's handle: state dir, services, children to stop on the way out."""

    state_dir: Path
    work_dir: Path
    keep: bool
    profile: bool
    py_spy: str | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services_up: bool = False
    keep_logs: bool = False

    def service_info(self, name: str) -> dict[str, Any]:
        from connectors.services import read_info

        info: dict[str, Any] = (read_info(self.state_dir) or {}).get(name) or {}
        return info

    def service_pid(self, name: str) -> int | None:
        pid = self.service_info(name).get("pid")
        return pid if isinstance(pid, int) else None

    def child(self, mode: str, *extra: str) -> tuple[dict[str, Any], dict[str, float | None]]:
        """Run a measuring child; return its result and the services' CPU seconds meanwhile."""
        results, cpu = self.children_at_once(mode, 1, *extra)
        return results[0], cpu

    def children_at_once(
        self, mode: str, count: int, *extra: str
    ) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """Run ``count`` measuring children side by side (on one state dir, several workers get
        data dirs of their own: one consumer group); their results and the services' CPU
        seconds meanwhile."""
        pids = {name: self.service_pid(name) for name in ("slapd", "broker")}
        before = {name: _proc_cpu_s(pid) for name, pid in pids.items()}
        started = [self._start_child(mode, extra) for _ in range(count)]
        deadline = time.monotonic() + CHILD_TIMEOUT_S + 60
        for proc, _, log in started:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop_children()
                raise SystemExit(f"{mode} child did not finish in time; log: {log}") from None
        cpu: dict[str, float | None] = {}
        for name, pid in pids.items():
            after = _proc_cpu_s(pid)
            start = before[name]
            cpu[name] = after - start if after is not None and start is not None else None
        return [self._child_result(mode, *child) for child in started], cpu

    def _start_child(
        self, mode: str, extra: Sequence[str]
    ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        out = self.work_dir / f"{mode}-{len(self.children)}.json"
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
        argv += ["--state-dir", str(self.state_dir), "--out", str(out), *extra]
        if self.profile and mode == "worker":
            argv += ["--profile-out", str(out.with_suffix(".prof"))]
        if self.py_spy and mode == "worker":
            # Collapsed stacks of the thread holding the GIL (where the CPU goes); a bit slower.
            spy = [self.py_spy, "record", "--threads", "--gil", "--nonblocking", "--format", "raw"]
            argv = [*spy, "--output", str(out.with_suffix(".spy.txt")), "--", *argv]
        env = {k: v for k, v in os.environ.items() if k not in _CONNECTION_VARS}
        env["ENTSYNC_STATE_DIR"] = str(self.state_dir)
        log = out.with_suffix(".log")
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log_file, stderr=log_file)
        self.children.append(proc)
        return proc, out, log

    def _child_result(
        self, mode: str, proc: subprocess.Popen[bytes], out: Path, log: Path
    ) -> dict[str, Any]:
        if not out.exists() or json.loads(out.read_text()).get("exit_code"):
            self.keep_logs = True
            tail = log.read_text(errors="replace").splitlines()[-30:]
            print("\n".join(tail), file=sys.stderr)
            raise SystemExit(f"{mode} child failed (exit {proc.returncode}); log: {log}")
        result: dict[str, Any] = json.loads(out.read_text())
        result["log"] = str(log)
        result.update(_startup_phases(log))
        return result

    def stop_children(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _extract(work_dir: Path, schools: int, pupils: int, seed: int) -> list[Any]:
    from connectors.aaf import events_many, load_events, scan_many
    from connectors.aaf.generator import GeneratorConfig, generate

    generated = generate(
        work_dir / "extract",
        GeneratorConfig(schools=schools, pupils_per_school=pupils, seed=seed, delta=False),
    )
    scanned = scan_many(sorted(generated.full_files))
    if not scanned.report.ok:
        raise SystemExit("the generated extract was refused by the validator")
    if os.environ.get("ENTSYNC_BENCH_FILE_ORDER"):  # not school by school (load_order)
        return list(events_many(scanned.scans))
    return list(load_events(scanned.scans))  # as ``entsync ingest`` publishes them


async def _publish_feed(kafka: Any, partitions: int, feed: Sequence[Any]) -> None:
    from connectors.stream.publisher import FeedPublisher
    from connectors.stream.topics import ensure_topics

    await ensure_topics(kafka, partitions)
    async with FeedPublisher(kafka) as publisher:
        await publisher.publish_all(feed)


async def _publish_bare(kafka: Any, partitions: int, feed: Sequence[Any]) -> None:
    """The feed's keys and values, byte for byte, on a topic of the same shape."""
    from connectors.stream import clients
    from schemas.feed import FeedMessage

    admin = clients.admin(kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        if BARE_TOPIC not in set(await admin.list_topics()):
            await admin.create_topics([clients.new_topic(kafka, BARE_TOPIC, partitions)])
    finally:
        await admin.close()
    # Same producer settings as connectors.stream.publisher.FeedPublisher.
    producer = clients.producer(
        kafka,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )
    await producer.start()
    try:
        for event in feed:
            value = FeedMessage(event).model_dump_json().encode()
            await producer.send(BARE_TOPIC, key=event.key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


def _feed_bytes(feed: Sequence[Any]) -> float:
    from schemas.feed import FeedMessage

    sizes = [len(FeedMessage(e).model_dump_json()) for e in feed]
    return sum(sizes) / max(len(sizes), 1)


BRANCHES = ("structures", "people", "groups")


def bench_copies(
    settings: Any, prefix: str = BENCH_BRANCH_PREFIX
) -> list[tuple[str, dict[str, list[str]]]]:
    """Every entry the worker wrote, to be added again under ``ou=<prefix><branch>`` (those
    branches are created here, empty).

    Same attributes and values (logins suffixed, as the unique overlay demands), so slapd does
    the same schema, index and uniqueness work as for the worker's adds.
    """
    from connectors.ldap import search_entries
    from connectors.ldap.connection import close_quietly, connect
    from entsync.ldap_clients import ldap_params

    params = ldap_params(settings)
    base = settings.ldap_base_dn
    entries: list[tuple[str, dict[str, list[str]]]] = []
    for branch in BRANCHES:
        suffix = f",ou={branch},{base}"
        for entry in search_entries(params, f"ou={branch},{base}", scope="one"):
            rdn = entry.dn[: len(entry.dn) - len(suffix)]
            target = f"{rdn},ou={prefix}{branch},{base}"
            attributes = {k: list(v) for k, v in entry.attributes.items()}
            for name in attributes:
                if name.lower() == UNIQUE_ATTRIBUTE.lower():  # the unique overlay checks it
                    attributes[name] = [f"{v}.{prefix[:-1]}" for v in attributes[name]]
            entries.append((target, attributes))
    setup = connect(params)
    try:
        for branch in BRANCHES:
            name = prefix + branch
            setup.add(
                f"ou={name},{base}", attributes={"objectClass": ["organizationalUnit"], "ou": name}
            )
    finally:
        close_quietly(setup)
    return entries


def _raw_adds(settings: Any, threads: int) -> dict[str, Any]:
    """Copy every entry the worker wrote under ``ou=bench-<branch>`` with ldap3 sync adds."""
    from connectors.ldap import clear_subtree
    from connectors.ldap.connection import close_quietly, connect
    from entsync.ldap_clients import ldap_params

    params = ldap_params(settings)
    base = settings.ldap_base_dn
    entries = bench_copies(settings)
    connections = [connect(params) for _ in range(threads)]
    failures: list[str] = []
    go = threading.Event()

    def adder(index: int) -> None:
        conn = connections[index]
        go.wait()
        for dn, attributes in entries[index::threads]:
            if not conn.add(dn, attributes=attributes):
                failures.append(f"{dn}: {conn.result.get('description')}")

    pool = [threading.Thread(target=adder, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    cpu0 = _cpu_s()
    start = time.perf_counter()
    go.set()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    cpu = _cpu_s() - cpu0
    for conn in connections:
        close_quietly(conn)
    for branch in BRANCHES:  # leave the directory as the worker made it
        clear_subtree(params, f"ou={BENCH_BRANCH_PREFIX}{branch},{base}", keep_root=False)
    if failures:
        raise SystemExit(f"raw ldap3 adds failed ({len(failures)}), e.g. {failures[0]}")
    return {"adds": len(entries), "seconds": elapsed, "threads": threads, "cpu_s": cpu}


def _rate(count: float, seconds: float | None) -> float:
    return count / seconds if seconds else 0.0


def _fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n{title}")
    widths = [max(34, len(header[0]))] + [max(14, len(h) + 2) for h in header[1:]]
    print(
        "".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header))
    )
    for row in rows:
        print(
            "".join(
                str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
                for i, c in enumerate(row)
            )
        )


_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")


def _startup_phases(log: Path) -> dict[str, float | None]:
    """Group join and table recovery before the worker was ready, from faust's info log."""
    marks: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        found = _LOG_TIME.match(line)
        if not found:
            continue
        at = time.mktime(time.strptime(found[1], "%Y-%m-%d %H:%M:%S")) + int(found[2]) / 1000
        if "[^Worker]: Ready" in line:
            break
        if "(Re-)joining group" in line:
            marks.setdefault("join_start", at)
        elif "Successfully synced group" in line:
            marks["join_end"] = at
        elif "Restoring state from changelog topics" in line:
            marks.setdefault("recovery_start", at)
        elif "Recovery complete" in line:
            marks["recovery_end"] = at

    def span(name: str) -> float | None:
        start, end = marks.get(f"{name}_start"), marks.get(f"{name}_end")
        return round(end - start, 3) if start is not None and end is not None else None

    return {"join_s": span("join"), "recovery_s": span("recovery")}


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2


def start_services(run: Run, say: Callable[[str], None] | None = None) -> Any:
    """slapd and the broker in ``run``'s state dir; their settings."""
    from connectors.services import ServicesConfig, up

    (say or _say)(f"services: starting slapd and the broker in {run.state_dir}")
    run.services_up = True  # before: an interrupted start is stopped too
    up(ServicesConfig(state_dir=run.state_dir))
    return _settings(run.state_dir)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def restart_figures(result: dict[str, Any], previous_runs: int) -> dict[str, Any]:
    """What a worker run restarted on earlier runs' tables says about its start."""
    return {
        "previous_runs": previous_runs,
        "startup_s": _round(result["startup_s"]),
        "join_s": result["join_s"],
        "recovery_s": result["recovery_s"],
        "peak_rss_mb": _round(result["peak_rss_mb"], 1),
        "feed_events": result["feed_events"],
        "entity_inputs": result["entity_inputs"],
    }


def premature_idle(published: int, load: dict[str, Any], again: dict[str, Any] | None) -> list[str]:
    """Why a run is not valid: a worker stopped as idle with work left (none: valid)."""
    problems = []
    if again is not None and (again["entity_inputs"] or again["directory_changes"]):
        problems.append(
            f"the initial-load worker stopped as idle with work left: the next run had "
            f"{again['entity_inputs']:,} entity inputs and {again['directory_changes']:,} "
            f"directory changes (premature idle)"
        )
    for name, result in (("initial-load", load), ("unchanged", again)):
        if result is not None and result["feed_events"] < published:
            problems.append(
                f"the {name} worker stopped as idle after {result['feed_events']:,} of "
                f"{published:,} feed events (premature idle)"
            )
    return problems


def _bench(run: Run, schools: int, pupils: int, seed: int, restarts: int = 0) -> dict[str, Any]:
    from connectors.ldap import count_entries
    from entsync.kafka_clients import kafka_params
    from entsync.ldap_clients import ldap_params

    settings = start_services(run)
    kafka = kafka_params(settings)
    partitions = settings.topic_partitions
    slapd_sync = run.service_info("slapd").get("sync_writes")

    t = time.perf_counter()
    feed = _extract(run.work_dir, schools, pupils, seed)
    generate_s = time.perf_counter() - t
    print(f"extract: {len(feed):,} feed events in {generate_s:.1f} s", file=sys.stderr)

    # (b) initial load into the empty directory.
    t = time.perf_counter()
    asyncio.run(_publish_feed(kafka, partitions, feed))
    publish_s = time.perf_counter() - t
    print("(b) initial load: worker ...", file=sys.stderr)
    load, load_cpu = run.child("worker")
    params = ldap_params(settings)
    entries = count_entries(params, settings.ldap_base_dn)
    print("(b) initial load: raw ldap3 adds ...", file=sys.stderr)
    raw = _raw_adds(settings, int(load["max_in_flight"]))

    # (a) nothing changed: the same extract again, then the bare agent on the same messages.
    asyncio.run(_publish_feed(kafka, partitions, feed))
    print("(a) nothing changed: worker ...", file=sys.stderr)
    again, again_cpu = run.child("worker")
    restarted = []
    for n in range(restarts):
        # (r) the same again: each run stamps every feed key, so the changelogs grow.
        asyncio.run(_publish_feed(kafka, partitions, feed))
        print(f"(r) restart after {n + 2} runs: worker ...", file=sys.stderr)
        result, _ = run.child("worker")
        restarted.append(restart_figures(result, n + 2))
    state_mb = _dir_mb(run.state_dir / "faust")
    asyncio.run(_publish_bare(kafka, partitions, feed))
    print("(a) nothing changed: bare faust agent ...", file=sys.stderr)
    bare, bare_cpu = run.child("bare", "--expected", str(len(feed)))

    problems = premature_idle(len(feed), load, again)
    ours_events = _rate(again["feed_events"], again["window_s"])
    bare_events = _rate(bare["messages"], bare["window_s"])
    ours_writes = _rate(load["directory_changes"], load["window_s"])
    raw_writes = _rate(raw["adds"], raw["seconds"])
    return {
        "bench": "sync",
        "schools": schools,
        "pupils_per_school": pupils,
        "seed": seed,
        "partitions": partitions,
        "max_in_flight": load["max_in_flight"],
        "slapd_sync_writes": slapd_sync,
        "feed_events": len(feed),
        "feed_value_bytes_avg": round(_feed_bytes(feed)),
        "generate_s": round(generate_s, 2),
        "publish_s": round(publish_s, 2),
        "directory_entries": entries,
        "initial": _summary(load, load_cpu),
        "raw_ldap3": {
            "adds": raw["adds"],
            "threads": raw["threads"],
            "seconds": round(raw["seconds"], 3),
            "adds_per_s": round(raw_writes, 1),
            "client_cpu_s": round(raw["cpu_s"], 3),
        },
        "unchanged": _summary(again, again_cpu),
        "restarts": restarted,
        "worker_state_mb": round(state_mb, 1),
        "bare_agent": {
            "messages": bare["messages"],
            "startup_s": _round(bare["startup_s"]),
            "join_s": bare["join_s"],
            "window_s": _round(bare["window_s"]),
            "tail_s": _round(bare["tail_s"]),
            "events_per_s": round(bare_events, 1),
            "cpu_s": _round(bare["cpu_s"]),
            "peak_rss_mb": _round(bare["peak_rss_mb"], 1),
            "broker_cpu_s": _round(bare_cpu.get("broker")),
        },
        "writes_per_s": round(ours_writes, 1),
        "raw_adds_per_s": round(raw_writes, 1),
        "writes_ratio": round(ours_writes / raw_writes, 3) if raw_writes else None,
        "events_per_s": round(ours_events, 1),
        "bare_events_per_s": round(bare_events, 1),
        "events_ratio": round(ours_events / bare_events, 3) if bare_events else None,
        "valid": not problems,
        "problems": problems,
    }


def _round(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _summary(result: dict[str, Any], cpu: dict[str, float | None]) -> dict[str, Any]:
    window = result["window_s"]
    return {
        "feed_events": result["feed_events"],
        "entity_inputs": result["entity_inputs"],
        "directory_changes": result["directory_changes"],
        "noop_writes": result["noop_writes"],
        "feed_pauses": result["feed_pauses"],
        "by_action": result["by_action"],
        "startup_s": _round(result["startup_s"]),
        "join_s": result["join_s"],
        "recovery_s": result["recovery_s"],
        "window_s": _round(window),
        "tail_s": _round(result["tail_s"]),
        "total_s": _round(result["total_s"]),
        "events_per_s": round(_rate(result["feed_events"], window), 1),
        "inputs_per_s": round(_rate(result["entity_inputs"], window), 1),
        "changes_per_s": round(_rate(result["directory_changes"], window), 1),
        "route_s": _round(result["route_s"]),
        "decide_s": _round(result["decide_s"]),
        "inputs_by_type": result.get("inputs_by_type", {}),
        "ldap_apply_s": _round(result["ldap_s"]),
        "ldap_ops": result["ldap_ops"],
        "ldap_apply_calls": result["ldap_calls"],
        "agent_batches": result["batches"],
        "cpu_s": _round(result["cpu_s"]),
        "writers_cpu_s": _round(result["writers_cpu_s"]),
        "peak_rss_mb": _round(result["peak_rss_mb"], 1),
        "writer_peak_rss_mb": _round(result["writer_peak_rss_mb"], 1),
        "writer_processes": result["writer_processes"],
        "ldap_writer": result.get("ldap_writer"),
        "slapd_cpu_s": _round(cpu.get("slapd")),
        "broker_cpu_s": _round(cpu.get("broker")),
    }


def _row(label: str, left: Any, right: Any, spec: str = ",.0f") -> list[str]:
    return [label, _fmt(left, spec), _fmt(right, spec)]


def _report(r: dict[str, Any]) -> None:
    ini, unc, bare, raw = r["initial"], r["unchanged"], r["bare_agent"], r["raw_ldap3"]
    sync = "durable" if r["slapd_sync_writes"] else "dbnosync"
    print(
        f"\nentsync sync benchmark: {r['schools']} schools x {r['pupils_per_school']} pupils "
        f"(seed {r['seed']}): {r['feed_events']:,} feed events of {r['feed_value_bytes_avg']} B "
        f"avg, {r['partitions']} partitions, max_in_flight {r['max_in_flight']}, slapd {sync}"
    )
    pct = "{:.0%}".format
    if os.environ.get("ENTSYNC_BENCH_NULL_WRITER"):
        print("NULL WRITER: the worker wrote nothing to LDAP; (b) ratio and raw figures are void")

    def verdict(ratio: float | None, target: float) -> str:
        if ratio is None:
            return "-"
        return f"{pct(ratio)} ({'met' if ratio >= target else 'MISSED'}, target {pct(target)})"

    s2 = ".2f"
    _table(
        "(b) initial load into an empty directory",
        ["", "worker", "raw ldap3"],
        [
            _row("LDAP writes/s", r["writes_per_s"], r["raw_adds_per_s"]),
            _row("directory entries/s", _rate(r["directory_entries"], ini["window_s"]), None),
            _row("writes", ini["directory_changes"], raw["adds"]),
            _row("processing window (s)", ini["window_s"], raw["seconds"], s2),
            _row("parallel connections", r["max_in_flight"], raw["threads"]),
            _row("  writer", ini["ldap_writer"], "ldap3"),
            _row("  writer processes (0: threads)", ini["writer_processes"], 0),
            _row("client CPU, writers included (s)", ini["cpu_s"], raw["client_cpu_s"], s2),
        ],
    )
    print(f"ratio worker / raw ldap3: {verdict(r['writes_ratio'], TARGET_WRITES_RATIO)}")
    _table(
        "(a) nothing changed: the same extract published again",
        ["", "worker", "bare agent"],
        [
            _row("feed events/s", r["events_per_s"], r["bare_events_per_s"]),
            _row("messages processed", unc["feed_events"], bare["messages"]),
            _row("processing window (s)", unc["window_s"], bare["window_s"], s2),
            _row("start-up to first batch (s)", unc["startup_s"], bare["startup_s"], s2),
            _row("  of which group join (s)", unc["join_s"], bare["join_s"], s2),
            _row("  of which table recovery (s)", unc["recovery_s"], None, s2),
            _row("after last batch: idle + stop (s)", unc["tail_s"], bare["tail_s"], s2),
            _row("process CPU, whole run (s)", unc["cpu_s"], bare["cpu_s"], s2),
            _row("peak RSS (MB)", unc["peak_rss_mb"], bare["peak_rss_mb"], ".1f"),
        ],
    )
    print(f"ratio worker / bare agent: {verdict(r['events_ratio'], TARGET_EVENTS_RATIO)}")
    reread = unc["feed_events"] - r["feed_events"]
    if reread:
        print(
            f"note: the worker processed {reread:+,} feed events more than were published "
            "(re-reads: records delivered while faust seeks to the committed offsets at start-up, "
            "or a partition the stall guard sought back)"
        )
    if (unc["join_s"] or 0) > (bare["join_s"] or 0) + 4:
        print(
            "note: the group join waited for the previous worker's session to expire: it left "
            "without LeaveGroup (tansu numbers the first generation 0, aiokafka only leaves a "
            "generation > 0)"
        )
    _table(
        "worker runs",
        ["", "initial load", "unchanged"],
        [
            _row("feed events", ini["feed_events"], unc["feed_events"]),
            _row("entity inputs", ini["entity_inputs"], unc["entity_inputs"]),
            _row("directory changes", ini["directory_changes"], unc["directory_changes"]),
            _row("writes found already done (noop)", ini["noop_writes"], unc["noop_writes"]),
            _row("feed paused (intake)", ini["feed_pauses"], unc["feed_pauses"]),
            _row("agent batches", ini["agent_batches"], unc["agent_batches"]),
            _row("start-up to first batch (s)", ini["startup_s"], unc["startup_s"], s2),
            _row("  of which group join (s)", ini["join_s"], unc["join_s"], s2),
            _row("  of which table recovery (s)", ini["recovery_s"], unc["recovery_s"], s2),
            _row("processing window (s)", ini["window_s"], unc["window_s"], s2),
            _row("  in route() (s)", ini["route_s"], unc["route_s"], s2),
            _row("  in decide() (s)", ini["decide_s"], unc["decide_s"], s2),
            _row("  awaiting writer.apply() (s)", ini["ldap_apply_s"], unc["ldap_apply_s"], s2),
            _row("  LDAP ops", ini["ldap_ops"], unc["ldap_ops"]),
            _row("idle detection + stop (s)", ini["tail_s"], unc["tail_s"], s2),
            _row("whole run (s)", ini["total_s"], unc["total_s"], s2),
            _row("worker CPU, whole run (s)", ini["cpu_s"], unc["cpu_s"], s2),
            _row("  of which writer processes (s)", ini["writers_cpu_s"], unc["writers_cpu_s"], s2),
            _row("slapd CPU during the run (s)", ini["slapd_cpu_s"], unc["slapd_cpu_s"], s2),
            _row("broker CPU during the run (s)", ini["broker_cpu_s"], unc["broker_cpu_s"], s2),
            _row("peak RSS (MB)", ini["peak_rss_mb"], unc["peak_rss_mb"], ".1f"),
            _row(
                "  each writer process (MB)",
                ini["writer_peak_rss_mb"],
                unc["writer_peak_rss_mb"],
                ".1f",
            ),
        ],
    )
    if r["restarts"]:
        _table(
            "(r) restarts: the worker started again on the tables the runs before left",
            ["previous runs", "to 1st batch (s)", "recovery (s)", "join (s)", "peak RSS (MB)"],
            [
                [
                    str(x["previous_runs"]),
                    _fmt(x["startup_s"], s2),
                    _fmt(x["recovery_s"], s2),
                    _fmt(x["join_s"], s2),
                    _fmt(x["peak_rss_mb"], ".1f"),
                ]
                for x in [{"previous_runs": 1, **unc}, *r["restarts"]]
            ],
        )
    print(f"worker state dir (tables' databases): {r['worker_state_mb']:,.1f} MB")
    actions = ", ".join(f"{k} {v:,}" for k, v in sorted(ini["by_action"].items()))
    print(f"initial load actions: {actions}; directory entries: {r['directory_entries']:,}")
    for problem in r["problems"]:
        print(f"INVALID RUN: {problem}")
    print(json.dumps(r, sort_keys=True))


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=100, help="pupils per school")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="N runs, then each ratio's median"
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=0,
        metavar="N",
        help="N more unchanged runs: restart to first batch after 2 .. N + 1 runs",
    )
    parser.add_argument("--keep", action="store_true", help="leave the services running")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the worker runs (slows them down)"
    )
    parser.add_argument(
        "--py-spy", metavar="BIN", help="record the worker runs with this py-spy binary"
    )
    parser.add_argument(
        "--null-writer",
        action="store_true",
        help="the worker's writer writes nothing and reports success (its own cost, no ratios)",
    )
    parser.add_argument(
        "--writer",
        choices=("python-ldap", "ldap3"),
        help="the worker's directory writer (ENTSYNC_LDAP_WRITER; default python-ldap)",
    )
    parser.add_argument(
        "--writer-processes",
        type=int,
        metavar="N",
        help="the worker writes LDAP in N processes of its own (ENTSYNC_LDAP_WRITER_PROCESSES)",
    )
    parser.add_argument("--child", choices=("worker", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "worker":
        return child_worker(args.state_dir, args.out, args.profile_out)
    if args.child == "bare":
        return child_bare(args.state_dir, args.out, args.expected)

    if args.quick:
        args.schools, args.pupils = 3, 20
    if args.writer is not None:  # read by the worker children's settings
        os.environ["ENTSYNC_LDAP_WRITER"] = args.writer
    if args.writer_processes is not None:  # read by the worker children's settings
        os.environ["ENTSYNC_LDAP_WRITER_PROCESSES"] = str(args.writer_processes)
    if args.null_writer:  # read by the worker children (see _instrument)
        os.environ["ENTSYNC_BENCH_NULL_WRITER"] = "1"
    _quiet_logs()
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    runs: list[dict[str, Any]] = []
    for index in range(args.repeat):
        if args.repeat > 1:
            print(f"run {index + 1} of {args.repeat}", file=sys.stderr)
        results = _one_run(args)
        if results is None:
            return 130
        runs.append(results)
        _report(results)
    if args.repeat > 1:
        _report_repeats(runs)
    return 0 if all(r["valid"] for r in runs) else 1


def _one_run(args: argparse.Namespace) -> dict[str, Any] | None:
    """One measurement on services of its own (an empty directory, new topics); None if
    interrupted."""
    started = time.perf_counter()
    try:
        with fresh_run(keep=args.keep, profile=args.profile, py_spy=args.py_spy) as run:
            results = _bench(run, args.schools, args.pupils, args.seed, args.restarts)
            results["bench_total_s"] = round(time.perf_counter() - started, 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return None
    return results


@contextlib.contextmanager
def fresh_run(
    *, keep: bool = False, profile: bool = False, py_spy: str | None = None
) -> Iterator[Run]:
    """A temporary state dir for services of its own; on the way out, however it is left
    (an error, Ctrl-C), its children and services are stopped by pid, unless ``keep``."""
    work_dir = Path(tempfile.mkdtemp(prefix="entsync-syncbench-"))
    run = Run(
        state_dir=work_dir / "state", work_dir=work_dir, keep=keep, profile=profile, py_spy=py_spy
    )
    try:
        yield run
    finally:
        run.stop_children()
        if run.services_up and not keep:
            from connectors.services import down

            down(run.state_dir)
        if keep:
            print(
                f"services kept: {ROOT}/.venv/bin/entsync services down --state-dir "
                f"{run.state_dir}",
                file=sys.stderr,
            )
        elif profile or py_spy or run.keep_logs:
            print(f"profiles and logs kept in {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


def _report_repeats(runs: Sequence[dict[str, Any]]) -> None:
    """Each ratio over the runs: median and range, and how many runs met the target. On a
    machine shared with others (CPU steal) one run says little; the median says more."""
    print(f"\nover {len(runs)} runs (each on services of its own):")
    summary: dict[str, Any] = {"bench": "sync", "repeat": len(runs), "runs": list(runs)}
    for key, label, target in (
        ("writes_ratio", "(b) worker / raw ldap3 writes/s", TARGET_WRITES_RATIO),
        ("events_ratio", "(a) worker / bare agent events/s", TARGET_EVENTS_RATIO),
    ):
        ratios = sorted(r[key] for r in runs if r[key] is not None)
        if not ratios:
            continue
        median = statistics.median(ratios)
        met = sum(ratio >= target for ratio in ratios)
        print(
            f"  {label}: median {median:.0%}, {ratios[0]:.0%}-{ratios[-1]:.0%}, target "
            f"{target:.0%} met in {met} of {len(ratios)} runs"
        )
        summary[f"{key}_median"] = round(median, 3)
        summary[f"{key}_min"] = ratios[0]
        summary[f"{key}_max"] = ratios[-1]
        summary[f"{key}_met"] = met
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())

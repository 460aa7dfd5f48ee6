"""Event-to-directory latency of the continuous worker, measured by reading the directory.

On a slapd and a tansu broker it starts itself in a temporary state directory, a generated
extract is synced (``entsync run``), then a continuous ``entsync worker`` runs while one-record
delta files (a guardian's mobile phone changed) are ingested at a steady rate, each through the
project's own ingest (scan, validation, publication). A poller reads each changed guardian's
entry until the directory holds the new number. Two latencies per delta:

- event to directory: from the publication acknowledged by the broker (``ingest`` returned) to
  the new value read in the directory;
- file to directory: from the start of the ingest of the file.

    .venv/bin/python bench/latency.py                     # 2 deltas/s for 60 s
    .venv/bin/python bench/latency.py --rate 5 --seconds 30 --schools 20

Prints p50/p95/p99/max of both, and one JSON line with every figure. Target (issue #17): p95
event to directory at most 2 s. The services and the worker are stopped by pid in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from connectors.aaf.attrs import record_to_attrs  # noqa: E402
from connectors.aaf.filename import format_file_name  # noqa: E402
from connectors.aaf.generator import GeneratedRecord, GeneratorConfig, generate  # noqa: E402
from connectors.aaf.xmlwrite import AafWriter  # noqa: E402
from connectors.ldap.directory import read_entry  # noqa: E402
from connectors.services import ServicesConfig, down, up  # noqa: E402
from entsync.ingest import ingest  # noqa: E402
from entsync.ldap_clients import ldap_params  # noqa: E402
from entsync.logs import configure_logging  # noqa: E402
from entsync.settings import load_settings  # noqa: E402
from schemas.feed import Category, Guardian  # noqa: E402
from sync import dit, ids  # noqa: E402

ENTSYNC = str(Path(sys.executable).with_name("entsync"))
POLL_S = 0.02
DEADLINE_S = 60.0  # a delta not in the directory after this is counted lost
START_S = 180.0


@dataclass
class Delta:
    n: int
    dn: str
    phone: str
    started: float = 0.0  # ingest of the file begun
    published: float = 0.0  # ingest returned: the broker acknowledged the event
    seen: float | None = None  # the directory holds the new number
    deadline_s: float = DEADLINE_S  # not seen by then: lost


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def at(p: int) -> float:
        return ordered[0] if not cuts else cuts[p - 1]

    return {"p50": at(50), "p95": at(95), "p99": at(99), "max": ordered[-1]}


def _guardians(out: Path, schools: int, pupils: int) -> list[Guardian]:
    found: list[Guardian] = []

    def keep(record: GeneratedRecord) -> None:
        if isinstance(record.record, Guardian) and record.record.phone_mobile is not None:
            found.append(record.record)

    config = GeneratorConfig(schools=schools, pupils_per_school=pupils, faults=False, delta=False)
    generate(out, config, keep)
    return found


def _delta_file(folder: Path, guardian: Guardian, phone: str, n: int, scope: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = format_file_name(scope, False, GeneratorConfig().extract_date, Category.GUARDIANS, n)
    path = folder / name
    changed = guardian.model_copy(update={"phone_mobile": phone})
    with AafWriter(path, Category.GUARDIANS) as writer:
        writer.write("add", guardian.jointure, record_to_attrs(changed))
    return path


class Poller(threading.Thread):
    """Reads each pending delta's entry until it holds the new number."""

    def __init__(self, params: Any) -> None:
        super().__init__(daemon=True)
        self.params = params
        self.pending: list[Delta] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, delta: Delta) -> None:
        with self.lock:
            self.pending.append(delta)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                pending = list(self.pending)
            for delta in pending:
                entry = read_entry(self.params, delta.dn, ["mobile"])
                now = time.monotonic()
                if entry is not None and delta.phone in entry.get("mobile"):
                    delta.seen = now
                elif now - delta.published > delta.deadline_s:
                    delta.seen = None
                else:
                    continue
                with self.lock:
                    self.pending.remove(delta)
            time.sleep(POLL_S)

    def drain(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if not self.pending:
                    return
            time.sleep(POLL_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2.0, help="deltas per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long deltas arrive")
    parser.add_argument("--schools", type=int, default=5)
    parser.add_argument("--pupils", type=int, default=40, help="pupils per school")
    parser.add_argument("--warmup", type=int, default=3, help="first deltas not counted")
    parser.add_argument("--keep", action="store_true", help="leave the state directory")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="entsync-latency-"))
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(state),
        "ENTSYNC_LOG_LEVEL": "WARNING",
        "ENTSYNC_METRICS_PORT": "0",
    }
    os.environ.update({k: env[k] for k in ("ENTSYNC_STATE_DIR", "ENTSYNC_LOG_LEVEL")})
    worker: subprocess.Popen[bytes] | None = None
    try:
        up(ServicesConfig(state_dir=state))
        settings = load_settings(state_dir=state)
        configure_logging(settings.log_format, "WARNING")
        extract = state / "extract"
        guardians = _guardians(extract, args.schools, args.pupils)
        files = sorted(str(p) for p in extract.glob("*.xml"))
        started = time.monotonic()
        subprocess.run([ENTSYNC, "run", *files], env=env, check=True, capture_output=True)
        print(f"initial load: {len(files)} files in {time.monotonic() - started:.1f} s")
        worker = subprocess.Popen(
            [ENTSYNC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        params = ldap_params(settings)
        poller = Poller(params)
        poller.start()
        count = int(args.rate * args.seconds) + args.warmup
        deltas: list[Delta] = []
        ready = time.monotonic()
        # The worker's start (table recovery, group join) is not latency: a first delta waits
        # for it, then the deltas arrive at the rate.
        probe = Delta(-1, "", "")
        first = 0.0  # when delta 0 of the measured ones is due
        for n in range(count + 1):
            guardian = guardians[n % len(guardians)]
            entity = ids.guardian_id(settings.id_namespace, guardian.jointure)
            delta = Delta(n, dit.people_dn(entity, settings.ldap_base_dn), f"+3367{n:07d}")
            path = _delta_file(state / "deltas" / str(n), guardian, delta.phone, n, "AC-TOULOUSE")
            wait = first + n / args.rate - time.monotonic()
            if probe.n >= 0 and wait > 0:
                time.sleep(wait)
            delta.started = time.monotonic()
            outcome = ingest(settings, [path])
            delta.published = time.monotonic()
            if outcome.refused or outcome.error:
                raise RuntimeError(f"delta {n} not ingested: {outcome.error or 'refused'}")
            if probe.n < 0:
                delta.deadline_s = START_S
            poller.add(delta)
            if probe.n < 0:
                probe = delta
                poller.drain(START_S)
                if probe.seen is None:
                    raise RuntimeError(f"the worker did not apply a first delta in {START_S:g} s")
                print(f"worker ready: first delta applied {time.monotonic() - ready:.1f} s in")
                first = time.monotonic() - (n + 1) / args.rate
                continue
            deltas.append(delta)
        poller.drain(DEADLINE_S)
        poller.stop.set()
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        down(state)
    counted = deltas[args.warmup :]
    lost = [d.n for d in counted if d.seen is None]
    event = percentiles([d.seen - d.published for d in counted if d.seen is not None])
    whole = percentiles([d.seen - d.started for d in counted if d.seen is not None])
    ingest_s = percentiles([d.published - d.started for d in counted])
    print(f"{len(counted)} deltas at {args.rate:g}/s ({len(lost)} not seen in {DEADLINE_S:g} s)")
    for label, figures in (
        ("event to directory", event),
        ("file to directory", whole),
        ("ingest of one file", ingest_s),
    ):
        shown = "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items())
        print(f"  {label:20s} {shown}")
    target = event.get("p95")
    if target is not None:
        print(f"target p95 event to directory <= 2 s: {'met' if target <= 2.0 else 'NOT met'}")
    print(
        json.dumps(
            {
                "rate": args.rate,
                "deltas": len(counted),
                "lost": lost,
                "event_to_directory_s": event,
                "file_to_directory_s": whole,
                "ingest_s": ingest_s,
            }
        )
    )
    if not args.keep:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

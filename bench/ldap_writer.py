"""The directory writers side by side, on one slapd it starts itself (dbnosync, our schema).

The same entries (people of the ENT schema: the unique overlay checks their logins) are added,
then modified (a value replaced, a value added to a multi-valued attribute) by:

* ``ldapadd`` / ``ldapmodify`` (OpenLDAP's C client, one connection, one request at a time):
  the server's pace for a synchronous client;
* python-ldap without the writer: requests pipelined on one connection (``--window`` at most
  in flight): the C library's ceiling;
* the python-ldap writer (``PipelinedWriter``) at several ``max_in_flight``, in a thread of
  this process, and in one process of its own (the worker's default);
* the ldap3 writer (``DirectoryWriter``) in threads, and in two processes of its own.

The writers add other entries once more while the event loop's thread computes half of the
time (``busy adds/s``): in a worker, the loop's thread decides the next batch while the writes
run, and a writer's thread shares the interpreter lock with it.

Writers get the ops in ``apply`` calls of ``--batch`` ops, as the worker does. Each row says
ops/s and the client's CPU per op (this process and its children: the writer processes,
ldapadd; slapd's is in the JSON line). Each client writes under a branch of its own.

    .venv/bin/python bench/ldap_writer.py                  # 10,000 entries, about a minute
    .venv/bin/python bench/ldap_writer.py --entries 2000   # a quick look

The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is in bench/: without its folder on the path, ``import sync`` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from connectors.ldap import DirectoryWriter, LdapParams, PipelinedWriter  # noqa: E402
from connectors.ldap.batch import BatchWriter  # noqa: E402
from connectors.ldap.directory import ensure_base_dit  # noqa: E402
from connectors.ldap.healing import OpResult  # noqa: E402
from connectors.ldap.ldif import LdifEntry, format_ldif  # noqa: E402
from connectors.services import slapd  # noqa: E402
from connectors.services.process import free_port, stop_pid  # noqa: E402
from sync.ops import AddEntry, DirectoryOp, ModifyEntry  # noqa: E402

BASE = "dc=bench,dc=example"
PERSON = ("top", "person", "organizationalPerson", "inetOrgPerson", "ENTPerson")
PROFILES = ("National_1", "National_2")


def _cpu_s(slapd_pid: int) -> float:
    """CPU seconds of this process (every thread) and of its children, ended (ldapadd) or
    running (the writer processes), slapd's aside."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = sum(_proc_cpu_s(pid) for pid in _children() if pid != slapd_pid)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime + running


def _children() -> list[int]:
    found = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(pid) for pid in (task / "children").read_text().split()]
    return found


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile: counted in RUSAGE_CHILDREN once waited for
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _entries(branch: str, count: int) -> list[tuple[str, dict[str, tuple[str, ...]]]]:
    people = f"ou={branch},{BASE}"
    found = []
    for n in range(count):
        uid = f"{branch}-{n:07d}"
        found.append(
            (
                f"uid={uid},{people}",
                {
                    "objectClass": (*PERSON, "entsyncOperational"),
                    "uid": (uid,),
                    "cn": (f"Prénom{n} Nom{n}",),
                    "sn": (f"Nom{n}",),
                    "givenName": (f"Prénom{n}",),
                    "ENTPersonLogin": (f"p.nom{n}.{branch}",),
                    "ENTPersonJointure": (f"ONDE${uid}",),
                    "ENTPersonProfils": PROFILES,
                    "entsyncId": (uid,),
                    "entsyncAccountState": ("active",),
                },
            )
        )
    return found


def _modifies(entries: Sequence[tuple[str, dict[str, tuple[str, ...]]]]) -> list[ModifyEntry]:
    """A value replaced and a value added to a multi-valued attribute, per entry."""
    return [
        ModifyEntry(
            dn,
            {"sn": ("Autre",), "ENTPersonProfils": (*PROFILES, "National_3")},
            desired=attributes,
            previous={"sn": attributes["sn"], "ENTPersonProfils": PROFILES},
        )
        for dn, attributes in entries
    ]


def _ldif_adds(entries: Sequence[tuple[str, dict[str, tuple[str, ...]]]]) -> str:
    return "".join(format_ldif(LdifEntry(dn, attributes) for dn, attributes in entries))


def _ldif_modifies(ops: Sequence[ModifyEntry]) -> str:
    chunks = []
    for op in ops:
        lines = [f"dn: {op.dn}", "changetype: modify", "replace: sn", "sn: Autre", "-"]
        lines += ["add: ENTPersonProfils", "ENTPersonProfils: National_3", "-"]
        chunks.append("\n".join(lines) + "\n\n")
    return "".join(chunks)


def password_file(params: LdapParams, work: Path) -> Path:
    """The bind password in a file only its owner reads (for the OpenLDAP tools' ``-y``)."""
    path = work / "password"
    path.write_text(params.password)
    path.chmod(0o600)
    return path


def ldap_tool(name: str, params: LdapParams, password: Path, ldif: Path) -> None:
    """``ldapadd`` / ``ldapmodify`` of ``ldif``: one connection, one request at a time; stops
    at the first refusal."""
    common = ["-x", "-H", params.url, "-D", params.bind_dn, "-y", str(password)]
    done = subprocess.run([name, *common, "-f", str(ldif)], capture_output=True)
    if done.returncode:
        raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")


@contextlib.contextmanager
def libldap_connection(params: LdapParams) -> Iterator[Any]:
    """A python-ldap connection, unbound at the end unless the run is interrupted.

    The benchmarks turn SIGTERM into KeyboardInterrupt, which can land between python-ldap
    taking its connection lock and the ``try`` that releases it: unbinding would then wait on
    that lock for ever (bench/growth.py hung so). The exiting process closes the socket."""
    from connectors.ldap import libldap

    conn = libldap.open_connection(params)
    try:
        yield conn
    except KeyboardInterrupt:
        raise
    except BaseException:
        libldap.close(conn)
        raise
    libldap.close(conn)


def pipeline(conn: Any, requests: Iterable[Any], window: int) -> None:
    """python-ldap alone: each request sent without waiting, at most ``window`` in flight; a
    refusal raises."""
    import ldap

    from connectors.ldap import libldap

    in_flight = 0
    for request in requests:
        libldap.send(conn, request)
        in_flight += 1
        if in_flight >= window:
            conn.result4(ldap.RES_ANY, 1, -1)
            in_flight -= 1
    for _ in range(in_flight):
        conn.result4(ldap.RES_ANY, 1, -1)


class Bench:
    def __init__(self, params: LdapParams, slapd_pid: int, work: Path, args: Any) -> None:
        self.params, self.slapd_pid, self.work, self.args = params, slapd_pid, work, args
        self.rows: list[dict[str, Any]] = []

    def _branch(self, name: str) -> list[tuple[str, dict[str, tuple[str, ...]]]]:
        from connectors.ldap.connection import connection

        with connection(self.params) as conn:
            conn.add(f"ou={name},{BASE}", attributes={"objectClass": ["organizationalUnit"]})
        return _entries(name, self.args.entries)

    def measure(self, label: str, phase: str, ops: int, run: Callable[[], None]) -> None:
        cpu, server = _cpu_s(self.slapd_pid), _proc_cpu_s(self.slapd_pid)
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        row = {
            "client": label,
            "phase": phase,
            "ops": ops,
            "seconds": round(seconds, 3),
            "ops_per_s": round(ops / seconds, 1),
            "client_cpu_ms_per_op": round((_cpu_s(self.slapd_pid) - cpu) * 1000 / ops, 4),
            "slapd_cpu_ms_per_op": round((_proc_cpu_s(self.slapd_pid) - server) * 1000 / ops, 4),
        }
        self.rows.append(row)
        print(f"  {label:<34} {phase:<8} {row['ops_per_s']:>9,.0f} ops/s", file=sys.stderr)

    # -- the clients --------------------------------------------------------------------

    def ldapadd(self) -> None:
        entries = self._branch("ldapadd")
        adds, modifies = self.work / "adds.ldif", self.work / "modifies.ldif"
        adds.write_text(_ldif_adds(entries))
        modifies.write_text(_ldif_modifies(_modifies(entries)))
        password = password_file(self.params, self.work)

        def tool(name: str, ldif: Path) -> Callable[[], None]:
            return lambda: ldap_tool(name, self.params, password, ldif)

        label = "ldapadd / ldapmodify (C, sync)"
        self.measure(label, "add", len(entries), tool("ldapadd", adds))
        self.measure(label, "modify", len(entries), tool("ldapmodify", modifies))

    def raw_pipelined(self) -> None:
        """python-ldap alone: add_ext / modify_ext and result4, ``--window`` in flight."""
        from connectors.ldap.healing import AddRequest, ModifyRequest, value_changes

        entries = self._branch("raw")
        window = self.args.window

        adds = (
            AddRequest(dn, {k: list(v) for k, v in attributes.items()})
            for dn, attributes in entries
        )
        modifies = (ModifyRequest(op.dn, value_changes(op)) for op in _modifies(entries))
        label = f"python-ldap alone, window {window}"
        with libldap_connection(self.params) as conn:
            self.measure(label, "add", len(entries), lambda: pipeline(conn, adds, window))
            self.measure(label, "modify", len(entries), lambda: pipeline(conn, modifies, window))

    def writer(self, label: str, branch: str, make: Callable[[], BatchWriter]) -> None:
        """Adds, modifies, then adds of other entries while the event loop's thread computes
        half of the time (``--busy-ms`` on, as long off: about the worker's share, deciding)."""
        entries, more = self._branch(branch), self._branch(f"{branch}-busy")
        batch = self.args.batch
        phases: list[tuple[str, list[DirectoryOp]]] = [
            ("add", [AddEntry(dn, attributes) for dn, attributes in entries]),
            ("modify", list(_modifies(entries))),
            ("busy add", [AddEntry(dn, attributes) for dn, attributes in more]),
        ]

        async def apply_all(writer: BatchWriter, ops: list[DirectoryOp]) -> list[OpResult]:
            results: list[OpResult] = []
            for start in range(0, len(ops), batch):
                results += await writer.apply(ops[start : start + batch])
            return results

        async def busy(until: threading.Event) -> None:
            while not until.is_set():
                started = time.perf_counter()
                while time.perf_counter() - started < self.args.busy_ms / 1000:
                    sum(range(200))
                await asyncio.sleep(self.args.busy_ms / 1000)

        async def all_phases() -> None:
            writer = make()
            writer.start()  # processes: a start-up cost, not the first batch's
            results: dict[str, list[OpResult]] = {}
            loop = asyncio.get_running_loop()
            try:
                for phase, ops in phases:
                    until = threading.Event()
                    hog = asyncio.ensure_future(busy(until)) if phase == "busy add" else None

                    def run(phase: str = phase, ops: list[DirectoryOp] = ops) -> None:
                        future = asyncio.run_coroutine_threadsafe(apply_all(writer, ops), loop)
                        results[phase] = future.result()

                    await asyncio.to_thread(self.measure, label, phase, len(ops), run)
                    until.set()
                    if hog is not None:
                        await hog
            finally:
                writer.close()
            wrong = {r.action.value for rs in results.values() for r in rs} - {"added", "modified"}
            if wrong:
                raise SystemExit(f"{label}: unexpected actions {wrong}")

        asyncio.run(all_phases())


def _table(rows: list[dict[str, Any]]) -> None:
    header = ("client", "adds/s", "CPU ms/add", "modifies/s", "CPU ms/mod", "busy adds/s")
    print()
    print(f"{header[0]:<40}" + "".join(f"{h:>12}" for h in header[1:]))
    by_client: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_client.setdefault(row["client"], {})[row["phase"]] = row
    for client, phases in by_client.items():
        add, mod, busy = phases["add"], phases["modify"], phases.get("busy add")
        cells = (
            f"{add['ops_per_s']:,.0f}",
            f"{add['client_cpu_ms_per_op']:.3f}",
            f"{mod['ops_per_s']:,.0f}",
            f"{mod['client_cpu_ms_per_op']:.3f}",
            f"{busy['ops_per_s']:,.0f}" if busy else "-",
        )
        print(f"{client:<40}" + "".join(f"{c:>12}" for c in cells))
    print(
        "\nCPU: this process and its children (writer processes, ldapadd), slapd aside; busy "
        "adds/s: while the event loop's thread computes half of the time (as the worker's, "
        "deciding)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000, help="entries per client")
    parser.add_argument("--batch", type=int, default=500, help="ops per apply call")
    parser.add_argument("--window", type=int, default=64, help="python-ldap alone: in flight")
    parser.add_argument(
        "--in-flight",
        default="1,8,32",
        help="the python-ldap writer's max_in_flight values, comma-separated",
    )
    parser.add_argument(
        "--busy-ms", type=float, default=20.0, help="busy adds: the loop's slices of work"
    )
    parser.add_argument("--ldap3-threads", type=int, default=8, help="the ldap3 writer's")
    parser.add_argument("--skip-ldap3", action="store_true", help="leave out the ldap3 writer")
    args = parser.parse_args()

    from connectors.logs import configure_logging

    configure_logging("console", "WARNING")
    with tempfile.TemporaryDirectory(prefix="entsync-writerbench-") as tmp:
        work = Path(tmp)
        layout = slapd.SlapdLayout(work / "slapd")
        password = slapd.prepare(layout, base_dn=BASE)
        port = free_port()
        pid = slapd.start(slapd.find_slapd(), layout, port)
        try:
            params = LdapParams(slapd.ldap_url(port), f"cn=admin,{BASE}", password)
            slapd.wait_ready(params, pid=pid, layout=layout, timeout=20)
            ensure_base_dit(params, BASE)
            print(
                f"slapd (dbnosync) pid {pid}; {args.entries:,} entries per client", file=sys.stderr
            )
            bench = Bench(params, pid, work, args)
            bench.ldapadd()
            bench.raw_pipelined()
            for window in (int(w) for w in args.in_flight.split(",")):
                bench.writer(
                    f"python-ldap writer, in flight {window}",
                    f"pyldap{window}",
                    functools.partial(PipelinedWriter, params, max_in_flight=window),
                )
            bench.writer(
                "python-ldap writer, 1 process, in flight 8",
                "pyldapprocess",
                lambda: PipelinedWriter(params, max_in_flight=8, processes=1),
            )
            if not args.skip_ldap3:
                threads = args.ldap3_threads
                bench.writer(
                    f"ldap3 writer, {threads} threads",
                    "ldap3threads",
                    lambda: DirectoryWriter(params, max_in_flight=threads),
                )
                bench.writer(
                    f"ldap3 writer, 2 processes, {threads} conns",
                    "ldap3processes",
                    lambda: DirectoryWriter(params, max_in_flight=threads, processes=2),
                )
        finally:
            stop_pid(pid, marker=slapd.marker(layout), timeout=10)
    print(f"\nwriters: {args.entries:,} entries each, apply calls of {args.batch} ops")
    _table(bench.rows)
    print(json.dumps({"bench": "ldap_writer", "entries": args.entries, "rows": bench.rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

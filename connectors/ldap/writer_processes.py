"""Directory writes in processes of their own: the parent's pool, and what runs in each process.

Why processes: a writer's threads share the worker's interpreter lock with deciding. ldap3 is
pure Python (about half a millisecond of CPU an op); python-ldap costs little CPU, but each of
its calls gives the lock up and waits to get it back, up to the interpreter's switch interval
(5 ms) while the worker decides, so that a thread writes a few hundred ops a second where a
process of its own writes thousands.

Each process holds a writer of its own, of the parent's kind, without processes (ldap3: its
share of the in-flight connections in threads; python-ldap: its share of the requests in
flight on one connection), and runs whole shares of an ``apply`` call: one message per process
and call, results back without their ops. The processes are spawned (not forked: the worker
runs threads) with the program's main module out of sight, so that they import this module and
the writer, not the whole CLI. Each process exits as soon as its parent does, and stops
retrying when the parent aborts (see :mod:`connectors.ldap.lifeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Literal

from connectors.ldap.connection import LdapParams
from connectors.ldap.errors import DirectoryError
from connectors.ldap.healing import Action, OpResult
from connectors.ldap.lifeline import EitherStop, StopFlag, watch_parent

if TYPE_CHECKING:
    from connectors.ldap.batch import BatchWriter, Chain, Outcome, RetryPolicy

Kind = Literal["ldap3", "python-ldap"]
LogSetup = tuple[Literal["json", "console", "auto"], str]  # (format, level) of a process
CompactResult = tuple[Action, tuple[str, ...], str, int, float]  # an OpResult without its op

_writer: BatchWriter | None = None  # in a writer process: its own, without processes
_abort: StopFlag | None = None  # in a writer process: set when the parent aborts its writes


class WriterProcesses:
    """The parent's side: the pool, its lifeline and abort event, and each call's shares."""

    def __init__(
        self,
        kind: Kind,
        params: LdapParams,
        retry: RetryPolicy,
        log_setup: LogSetup | None,
        processes: int,
        max_in_flight: int,
    ) -> None:
        # not fork: the caller runs threads (faust's consumer, the event loop's executor)
        context = multiprocessing.get_context("spawn")
        self.processes = processes
        self.abort = context.Event()
        # The processes' lifeline: they exit when this end closes (see lifeline).
        self._lifeline_end, self._lifeline = context.Pipe(duplex=False)
        self.executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=context,
            initializer=start_writer,
            initargs=(
                kind,
                params,
                retry,
                log_setup,
                -(-max_in_flight // processes),  # each process's share, at least one
                self._lifeline_end,
                self.abort,
            ),
        )
        self._started = False

    def start(self) -> None:
        """Start the processes now (each binds on its first op), not at the first call: a
        start-up cost, not one of the first batch.

        The processes are spawned (each submit starts one until there are ``processes``) with
        the program's main module out of sight: a spawned process imports the main module of
        its parent, here the whole CLI (faust and all), about a second and 30 MB for nothing;
        they import the writer alone.
        """
        if self._started:
            return
        with main_module_hidden():
            ready_ones = [self.executor.submit(ready) for _ in range(self.processes)]
        for future in ready_ones:
            future.result()
        self._started = True

    async def run(self, chains: list[Chain]) -> list[Outcome]:
        """One message per process: its share of the chains, whole (a DN's ops stay in order).

        Shares are balanced by op count; results come back without their ops (the caller has
        them). A process finishes its share even if the call is cancelled.
        """
        shares: list[list[Chain]] = [[] for _ in range(min(self.processes, len(chains)))]
        sizes = [0] * len(shares)
        for chain in sorted(chains, key=len, reverse=True):
            smallest = sizes.index(min(sizes))
            shares[smallest].append(chain)
            sizes[smallest] += len(chain)
        loop = asyncio.get_running_loop()
        done = await asyncio.gather(
            *(loop.run_in_executor(self.executor, run_share, share) for share in shares)
        )
        by_index = {index: op for chain in chains for index, op in chain}
        outcomes: list[Outcome] = []
        for share_outcomes in done:
            for index, outcome in share_outcomes:
                if isinstance(outcome, DirectoryError):
                    outcomes.append((index, outcome))
                else:
                    action, attributes, detail, retries, seconds = outcome
                    op = by_index[index]
                    result = OpResult(op, action, attributes, detail, retries, seconds)
                    outcomes.append((index, result))
        return outcomes

    def close(self) -> None:
        """Wait for the shares under way, then end the processes."""
        self.executor.shutdown(wait=True)
        self._lifeline.close()
        self._lifeline_end.close()


# -- in a writer process ----------------------------------------------------------------------


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """``multiprocessing`` spawn re-imports the parent's ``__main__`` (by its spec or its file)
    in the child; a stand-in with neither makes it import nothing."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def main_imported() -> bool:
    """In a writer process: whether the parent's main module was imported."""
    main = sys.modules["__main__"]  # the spawn bootstrap's, unless the parent's was re-run
    return (
        getattr(main, "__file__", None) is not None or getattr(main, "__spec__", None) is not None
    )


def start_writer(
    kind: Kind,
    params: LdapParams,
    retry: RetryPolicy,
    log_setup: LogSetup | None,
    in_flight: int,
    lifeline: Connection,
    abort: StopFlag,
) -> None:
    """The process initializer: die with the parent, logging, then the process's own writer."""
    global _writer, _abort
    watch_parent(lifeline)  # first: a parent already gone is seen at once
    _abort = abort
    writer_class: type[BatchWriter]
    if kind == "ldap3":
        from connectors.ldap.writer import DirectoryWriter

        writer_class = DirectoryWriter
    else:
        from connectors.ldap.pipelined import PipelinedWriter

        writer_class = PipelinedWriter
    if log_setup is not None:
        from connectors.logs import configure_logging

        configure_logging(*log_setup)
    _writer = writer_class(params, max_in_flight=in_flight, retry=retry)


def ready() -> bool:
    return _writer is not None


def run_share(chains: list[Chain]) -> list[tuple[int, CompactResult | DirectoryError]]:
    """Run the chains on this process's writer."""
    writer = _writer
    assert writer is not None and _abort is not None, "not a writer process"
    stop = EitherStop(_abort)  # set by the parent's abort, or here by an unreachable directory
    compact: list[tuple[int, CompactResult | DirectoryError]] = []
    for index, outcome in writer.run_chains(chains, stop):
        if isinstance(outcome, DirectoryError):
            compact.append((index, outcome))
        else:
            compact.append(
                (
                    index,
                    (
                        outcome.action,
                        outcome.attributes,
                        outcome.detail,
                        outcome.retries,
                        outcome.seconds,
                    ),
                )
            )
    return compact

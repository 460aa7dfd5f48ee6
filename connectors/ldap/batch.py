"""The front every directory writer shares: ``apply`` a batch, ``abort``, ``close``.

``apply`` groups a batch's ops by DN into chains (one DN's ops, in the order given) and hands
them to the writer's own :meth:`BatchWriter._run`; it gathers one outcome per op done or refused
and raises the first refusal with every op's result. Ops on different DNs run concurrently, so
the caller must not rely on an order between DNs (e.g. a parent created in the same batch as its
children must come in an earlier ``apply`` call). The per-DN order holds within one ``apply``
call; concurrent calls touching the same DN are not ordered.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import dn_sort_key
from connectors.ldap.errors import DirectoryError, WriterStoppedError
from connectors.ldap.healing import OpResult
from connectors.ldap.lifeline import StopFlag
from connectors.ldap.writer_processes import Kind, LogSetup, WriterProcesses
from sync.ops import DirectoryOp


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on transient errors, for at most ``total`` seconds."""

    initial_delay: float = 0.1
    max_delay: float = 2.0
    total: float = 60.0

    def pause(self, delay: float) -> float:
        """The pause before the next attempt, ``delay`` being the current backoff step."""
        return min(delay, self.max_delay) * random.uniform(0.5, 1.0)


# A DN written with spaces around its separators, escapes, quotes or several values in an RDN:
# parsed (slow) to find which other spelling names the same entry.
_IRREGULAR_DN = re.compile(r'[\\"+;#]|\s[,=]|[,=]\s|^\s|\s$')


def chain_key(dn: str) -> str:
    """The same string for every spelling of one DN (case, spaces around separators): the
    plain lower-cased DN when it has nothing to parse (our DNs: parsing each cost more CPU than
    writing it), else its parsed components joined the same way."""
    if not _IRREGULAR_DN.search(dn):
        return dn.lower()
    return ",".join(f"{name}={value}" for name, value in reversed(dn_sort_key(dn)))


Chain = list[tuple[int, DirectoryOp]]  # one DN's ops, with their indexes in the apply() call
Outcome = tuple[int, "OpResult | DirectoryError"]


class BatchWriter:
    """What the worker writes with: ``apply`` a batch of :mod:`sync.ops` operations.

    A writer runs the chains (one DN's ops, in order) of each ``apply`` call its own way, here
    (:meth:`_run_here`) or in ``processes`` of its own
    (:class:`connectors.ldap.writer_processes.WriterProcesses`, each running
    :meth:`run_chains` on a writer of the same kind), reporting one outcome per op it did or
    refused; an op without an outcome was not done.
    """

    KIND: ClassVar[Kind]  # which writer a writer process builds

    def __init__(
        self,
        params: LdapParams,
        *,
        max_in_flight: int,
        retry: RetryPolicy | None,
        processes: int = 0,
        log_setup: LogSetup | None = None,
    ) -> None:
        """``processes``: run the ops in that many processes of their own, each with its share
        of ``max_in_flight`` (at least one); each process configures logging with
        ``log_setup`` (format, level)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._params = params
        self._retry = retry or RetryPolicy()
        self._max_in_flight = max_in_flight
        self._processes: WriterProcesses | None = None
        self._executor: Executor  # where the ops run: the subclass's threads, or the processes
        self._abort: StopFlag
        if processes:
            self._processes = WriterProcesses(
                self.KIND, params, self._retry, log_setup, processes, max_in_flight
            )
            self._executor = self._processes.executor
            self._abort = self._processes.abort
        else:
            self._abort = threading.Event()
        self._closed = False

    @property
    def params(self) -> LdapParams:
        """Where it writes (for the shell's reads after a refused write)."""
        return self._params

    def start(self) -> None:
        """Start the writer processes now, if any: a start-up cost, not one of the first
        batch (see :meth:`WriterProcesses.start`)."""
        if self._processes is not None:
            self._processes.start()

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]:
        """Apply ``ops``; return one result per op, in the same order.

        On a permanent error the ops after it on the same DN are skipped, other DNs go on, then
        the first error (in op order) is raised with ``results`` (None for ops not done) and
        ``errors`` (all of them) set.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if not ops:
            return []
        if self._abort.is_set():
            raise WriterStoppedError(f"{len(ops)} directory writes not started: writer stopping")
        self.start()
        chains: dict[str, Chain] = {}
        for index, op in enumerate(ops):
            chains.setdefault(chain_key(op.dn), []).append((index, op))
        outcomes = await self._run(list(chains.values()))
        results: list[OpResult | None] = [None] * len(ops)
        errors: list[tuple[int, DirectoryError]] = []
        for index, outcome in outcomes:
            if isinstance(outcome, DirectoryError):
                errors.append((index, outcome))
            else:
                results[index] = outcome
        if len(outcomes) < len(ops) and self._abort.is_set():
            # Not "refused": the ops not done must be done again, not skipped.
            raise WriterStoppedError(
                f"{len(ops) - len(outcomes)} of {len(ops)} directory writes abandoned: "
                "writer stopping"
            )
        if errors:
            errors.sort(key=lambda item: item[0])
            first = errors[0][1]
            first.results = results
            first.errors = [error for _index, error in errors]
            raise first
        return [result for result in results if result is not None]

    async def _run(self, chains: list[Chain]) -> list[Outcome]:
        if self._processes is not None:
            return await self._processes.run(chains)
        return await self._run_here(chains)

    async def _run_here(self, chains: list[Chain]) -> list[Outcome]:
        """Run the chains in this process."""
        raise NotImplementedError

    def run_chains(self, chains: list[Chain], stop: StopFlag) -> list[Outcome]:
        """In a writer process: run the chains, blocking, until done or ``stop``."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop retrying (now, in every thread and process) and start no more op: ``apply``
        calls in progress raise :class:`WriterStoppedError` once their current attempts end,
        later ones at once. Then ``close``. Safe from any thread."""
        self._abort.set()

    def close(self) -> None:
        """Wait for running ops, then close the connections (and end the processes).
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._processes is not None:
            self._processes.close()
        self._close_here()

    def _close_here(self) -> None:
        """Wait for the ops running in this process, then close their connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

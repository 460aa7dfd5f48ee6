"""What runs in a writer process of :class:`connectors.ldap.writer.DirectoryWriter`.

Each process holds a ``DirectoryWriter`` of its own, with threads (its share of the in-flight
connections), and runs whole shares of an ``apply`` call: one message per process and call,
results back without their ops. The processes are spawned (not forked: the worker runs threads)
with the program's main module out of sight, so that they import this module and the writer,
not the whole CLI. Each process exits as soon as its parent does, and stops retrying when
the parent aborts (see :mod:`connectors.ldap.lifeline`).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Literal

from connectors.ldap.connection import LdapParams
from connectors.ldap.errors import DirectoryError
from connectors.ldap.lifeline import EitherStop, StopFlag, watch_parent

if TYPE_CHECKING:
    from connectors.ldap.writer import Action, Chain, DirectoryWriter, RetryPolicy

LogSetup = tuple[Literal["json", "console", "auto"], str]  # (format, level) of a process
CompactResult = tuple["Action", tuple[str, ...], str, int, float]  # an OpResult without its op

_writer: DirectoryWriter | None = None  # in a writer process: its own, with threads
_abort: StopFlag | None = None  # in a writer process: set when the parent aborts its writes


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
    params: LdapParams,
    retry: RetryPolicy,
    log_setup: LogSetup | None,
    threads: int,
    lifeline: Connection,
    abort: StopFlag,
) -> None:
    """The process initializer: die with the parent, logging, then the process's own writer."""
    global _writer, _abort
    watch_parent(lifeline)  # first: a parent already gone is seen at once
    _abort = abort
    from connectors.ldap.writer import DirectoryWriter

    if log_setup is not None:
        from connectors.logs import configure_logging

        configure_logging(*log_setup)
    _writer = DirectoryWriter(params, max_in_flight=threads, retry=retry)


def ready() -> bool:
    return _writer is not None


def run_share(chains: list[Chain]) -> list[tuple[int, CompactResult | DirectoryError]]:
    """Run the chains on this process's threads, as many at a time as it has."""
    writer = _writer
    assert writer is not None and _abort is not None, "not a writer process"
    stop = EitherStop(_abort)  # set by the parent's abort, or here by an unreachable directory
    compact: list[tuple[int, CompactResult | DirectoryError]] = []
    for future in [writer._executor.submit(writer._run_chain, chain, stop) for chain in chains]:
        for index, outcome in future.result():
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

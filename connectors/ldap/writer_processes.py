"""What runs in a writer process of :class:`connectors.ldap.writer.DirectoryWriter`.

Each process holds a ``DirectoryWriter`` of its own, with threads (its share of the in-flight
connections), and runs whole shares of an ``apply`` call: one message per process and call,
results back without their ops. The processes are spawned (not forked: the worker runs threads)
with the program's main module out of sight, so that they import this module and the writer,
not the whole CLI.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from connectors.ldap.connection import LdapParams
from connectors.ldap.errors import DirectoryError

if TYPE_CHECKING:
    from connectors.ldap.writer import Action, Chain, DirectoryWriter, RetryPolicy

LogSetup = tuple[Literal["json", "console", "auto"], str]  # (format, level) of a process
CompactResult = tuple["Action", tuple[str, ...], str, int]  # an OpResult without its op

_writer: DirectoryWriter | None = None  # in a writer process: its own, with threads


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
    params: LdapParams, retry: RetryPolicy, log_setup: LogSetup | None, threads: int
) -> None:
    """The process initializer: logging, then the process's own writer."""
    global _writer
    from connectors.ldap.writer import DirectoryWriter

    if log_setup is not None:
        from entsync.logs import configure_logging

        configure_logging(*log_setup)
    _writer = DirectoryWriter(params, max_in_flight=threads, retry=retry)


def ready() -> bool:
    return _writer is not None


def run_share(chains: list[Chain]) -> list[tuple[int, CompactResult | DirectoryError]]:
    """Run the chains on this process's threads, as many at a time as it has."""
    writer = _writer
    assert writer is not None, "not a writer process"
    stop = threading.Event()
    compact: list[tuple[int, CompactResult | DirectoryError]] = []
    for future in [writer._executor.submit(writer._run_chain, chain, stop) for chain in chains]:
        for index, outcome in future.result():
            if isinstance(outcome, DirectoryError):
                compact.append((index, outcome))
            else:
                compact.append(
                    (index, (outcome.action, outcome.attributes, outcome.detail, outcome.retries))
                )
    return compact

"""The stream shell's collaborators, as the shell uses them (typed ports).

faust's topics, tables, events and app are typed ``Any`` by faust itself; the shell names what
it uses of each here, so its modules say what they need and mypy checks that they use nothing
else. What faust leaves untyped and the shell only passes through is named here too, each
with its reason (:data:`FaustApp`, :data:`FaustStream`, :data:`FaustWorker`): outside
``faust_compat/`` and the store (``statestore.py``), the door to faust's internals, an ``Any``
in the shell is one of these or says why it is there. The LDAP side is :class:`DirectoryPort`,
which both directory writers (:class:`connectors.ldap.batch.BatchWriter`) and the benchmark's
instrumented one provide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, TypeAlias

from aiokafka.structs import RecordMetadata
from faust.types import TP

from connectors.ldap.connection import LdapParams
from connectors.ldap.healing import OpResult
from sync.ops import DirectoryOp

FaustApp: TypeAlias = Any
"""A ``faust.App``: its producer, consumer, tables and monitor are service attributes faust types
``Any`` (created at start-up); only ``faust_compat`` reads their internals."""

FaustStream: TypeAlias = Any
"""A ``faust.Stream`` handed to an agent: generic over faust's untyped codecs; the shell only
iterates its batches and replaces its ``ack`` (``write_window.hold_acks``)."""

FaustWorker: TypeAlias = Any
"""A ``faust.Worker`` (a mode service): its signal handlers are untyped mode internals."""

Sent: TypeAlias = asyncio.Future[RecordMetadata]
"""What the producer gives for one record sent: its partition and offset once acknowledged."""


class KafkaMessage(Protocol):
    """Where a consumed record was: what a cause names."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def tp(self) -> TP: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> float: ...


class StreamEvent(Protocol):
    """One record handed to an agent (a faust ``Event``)."""

    @property
    def key(self) -> bytes: ...  # the topics' key and value types are raw bytes

    @property
    def value(self) -> bytes: ...

    @property
    def message(self) -> KafkaMessage: ...


class Topic(Protocol):
    """A faust topic the agents send to."""

    @property
    def partitions(self) -> int | None: ...

    @property
    def app(self) -> FaustApp:  # its producer sends the record batches (records.py)
        ...

    def get_topic_name(self) -> str: ...

    async def send(
        self,
        *,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        timestamp: float | None = None,
    ) -> Awaitable[RecordMetadata]: ...


class Table(Protocol):
    """A faust table of raw JSON states under byte keys (RocksDB-backed: statestore.py)."""

    @property
    def app(self) -> FaustApp: ...

    @property
    def data(self) -> Any:  # faust's store: reached through statestore.py only
        ...

    @property
    def changelog_topic(self) -> Topic: ...

    def get(self, key: bytes, /) -> bytes | None: ...


class DirectoryPort(Protocol):
    """The directory writer the reconciler hands its batches' operations to."""

    @property
    def params(self) -> LdapParams:  # where it writes: the shell reads there after a refusal
        ...

    def start(self) -> None: ...

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...

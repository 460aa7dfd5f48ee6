"""The stream shell's collaborators, as the shell uses them (typed ports).

faust's topics, tables, events and app are typed ``Any`` by faust itself; the shell names what
it uses of each here, so its modules say what they need and mypy checks that they use nothing
else. The LDAP side is :class:`DirectoryPort`, which both directory writers
(:class:`connectors.ldap.batch.BatchWriter`) and the benchmark's instrumented one provide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from connectors.ldap.connection import LdapParams
from connectors.ldap.healing import OpResult
from sync.ops import DirectoryOp


class KafkaMessage(Protocol):
    """Where a consumed record was: what a cause names."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> float: ...


class StreamEvent(Protocol):
    """One record handed to an agent (a faust ``Event``)."""

    @property
    def key(self) -> Any: ...  # bytes: the topics' key type

    @property
    def value(self) -> Any: ...  # bytes

    @property
    def message(self) -> KafkaMessage: ...


class Topic(Protocol):
    """A faust topic the agents send to."""

    @property
    def partitions(self) -> int | None: ...

    @property
    def app(self) -> Any:  # the faust app: its producer sends the record batches (records.py)
        ...

    def get_topic_name(self) -> str: ...

    async def send(
        self,
        *,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        timestamp: float | None = None,
    ) -> Awaitable[Any]: ...


class Table(Protocol):
    """A faust table of raw JSON states under byte keys (RocksDB-backed: statestore.py)."""

    @property
    def app(self) -> Any: ...

    @property
    def data(self) -> Any:  # the store
        ...

    @property
    def changelog_topic(self) -> Any: ...

    def get(self, key: Any, /) -> Any: ...


class DirectoryPort(Protocol):
    """The directory writer the reconciler hands its batches' operations to."""

    @property
    def params(self) -> LdapParams:  # where it writes: the shell reads there after a refusal
        ...

    def start(self) -> None: ...

    async def apply(self, ops: Sequence[DirectoryOp]) -> list[OpResult]: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...

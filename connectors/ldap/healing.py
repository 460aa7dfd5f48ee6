"""How one directory op is carried out, whatever the LDAP client: its requests, and its healing.

:func:`steps` is a generator without I/O: it yields LDAP requests (add, modify, delete, read)
and is sent each one's :class:`Reply`; it returns the op's :class:`OpResult`, or raises
:class:`DirectoryWriteError` (refused for good) or :class:`TransientLdapError` (start the op
over). A client's driver sends the requests: the ldap3 writer one at a time per thread
(:mod:`connectors.ldap.writer`), the python-ldap writer many at once on one connection
(:mod:`connectors.ldap.pipelined`); so both heal alike. Busy and unavailable result codes
never reach the generator: the driver retries those.

Healing makes every op safe to replay (after a crash, a retry, a redelivered message):
Add on an existing entry replaces the attributes that differ; Modify on a missing entry adds
the op's ``desired`` entry; a value to add that is there already (20) or to remove that is gone
(16) gives the attribute its whole values; Delete on a missing entry succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from connectors.ldap.connection import TransientLdapError
from connectors.ldap.directory import (
    ALREADY_EXISTS,
    ATTRIBUTE_OR_VALUE_EXISTS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
)
from connectors.ldap.errors import DirectoryWriteError
from sync.ops import AddEntry, Attributes, DeleteEntry, DirectoryOp, ModifyEntry

# ldap3's names for the modification kinds (plain strings): the form both drivers take.
MODIFY_ADD: Final = "MODIFY_ADD"
MODIFY_DELETE: Final = "MODIFY_DELETE"
MODIFY_REPLACE: Final = "MODIFY_REPLACE"

SUCCESS: Final = 0


class Action(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    HEALED = "healed"  # the entry was not as the op expected; it was brought to the op's state
    NOOP = "noop"  # nothing to write: the directory already matched


@dataclass(frozen=True)
class OpResult:
    """What was actually done for one op. ``attributes``: names written (never values)."""

    op: DirectoryOp
    action: Action
    attributes: tuple[str, ...] = ()
    detail: str = ""
    retries: int = 0
    seconds: float = 0.0  # the op's time, retries included (its latency for the metrics)

    @property
    def dn(self) -> str:
        return self.op.dn


Changes = dict[str, list[tuple[str, list[str]]]]  # name -> [(MODIFY_*, values)]


@dataclass(frozen=True)
class AddRequest:
    dn: str
    attributes: dict[str, list[str]]  # no empty value list


@dataclass(frozen=True)
class ModifyRequest:
    dn: str
    changes: Changes


@dataclass(frozen=True)
class DeleteRequest:
    dn: str


@dataclass(frozen=True)
class ReadRequest:
    """A base-scope search of ``dn`` for ``attributes`` (``["1.1"]``: none)."""

    dn: str
    attributes: list[str]


Request = AddRequest | ModifyRequest | DeleteRequest | ReadRequest
OPERATION = {AddRequest: "add", ModifyRequest: "modify", DeleteRequest: "delete"}


def operation(request: Request) -> str:
    """The request's name in error messages."""
    return OPERATION.get(type(request), "search")


@dataclass(frozen=True)
class Reply:
    """A request's result: code (0: success), its name, the server's diagnostic message, and
    for a read, the entry's values by lower-cased attribute name."""

    code: int
    name: str = ""
    message: str = ""
    entry: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS


Steps = Generator[Request, Reply, OpResult]


def run_steps(op_steps: Steps, send: Callable[[Request], Reply]) -> OpResult:
    """Carry out the steps one request at a time (``send``: one request, its reply)."""
    try:
        request = next(op_steps)
        while True:
            request = op_steps.send(send(request))
    except StopIteration as done:
        result: OpResult = done.value
        return result


def kind(op: DirectoryOp) -> str:
    return {AddEntry: "add", ModifyEntry: "modify", DeleteEntry: "delete"}[type(op)]


def steps(op: DirectoryOp, uncertain: bool) -> Steps:
    """Carry out ``op``. ``uncertain``: an earlier attempt may have been applied before the
    link broke (only the words of the result change)."""
    if isinstance(op, AddEntry):
        outcome, names = yield from _put_entry(op.dn, op.attributes)
        if outcome == "added":
            return OpResult(op, Action.ADDED, names)
        if outcome == "replaced":
            return OpResult(
                op, Action.HEALED, names, "entry existed; differing attributes replaced"
            )
        if uncertain:
            return OpResult(op, Action.ADDED, names, "entry found complete after a retry")
        return OpResult(op, Action.NOOP, (), "entry already as requested")
    if isinstance(op, ModifyEntry):
        return (yield from _modify(op))
    return (yield from _delete(op, uncertain))


def _refused(request: Request, reply: Reply) -> DirectoryWriteError:
    return DirectoryWriteError(
        operation(request), request.dn, reply.code, reply.name, reply.message
    )


def _modify(op: ModifyEntry) -> Steps:
    if not op.changes:
        return OpResult(op, Action.NOOP, (), "no changes")
    names = tuple(sorted(op.changes))
    request: Request = ModifyRequest(op.dn, value_changes(op))
    reply = yield request
    if reply.ok:
        return OpResult(op, Action.MODIFIED, names)
    if reply.code in (ATTRIBUTE_OR_VALUE_EXISTS, NO_SUCH_ATTRIBUTE):
        # A value added is there already, or one removed is gone (a retry after a lost
        # answer, another writer): the attributes are given their whole values instead.
        request = ModifyRequest(op.dn, _replacing(op.changes))
        reply = yield request
        if reply.ok:
            return OpResult(op, Action.HEALED, names, "values replaced whole")
    if reply.code != NO_SUCH_OBJECT or not op.desired:
        raise _refused(request, reply)
    outcome, written = yield from _put_entry(op.dn, op.desired)
    if outcome == "same":
        return OpResult(op, Action.NOOP, (), "entry reappeared as desired")
    return OpResult(op, Action.HEALED, written, "entry was missing; added from desired")


def _delete(op: DeleteEntry, uncertain: bool) -> Steps:
    request = DeleteRequest(op.dn)
    reply = yield request
    if reply.ok:
        return OpResult(op, Action.DELETED)
    if reply.code == NO_SUCH_OBJECT:
        if uncertain:
            return OpResult(op, Action.DELETED, (), "entry gone after a retry")
        return OpResult(op, Action.NOOP, (), "entry already absent")
    raise _refused(request, reply)


def _put_entry(
    dn: str, attributes: Attributes
) -> Generator[Request, Reply, tuple[str, tuple[str, ...]]]:
    """Make ``dn`` hold ``attributes``: ("added" | "replaced" | "same", names written)."""
    present = {name: list(values) for name, values in attributes.items() if values}
    add = AddRequest(dn, present)
    reply = yield add
    if reply.ok:
        return "added", tuple(sorted(present))
    if reply.code != ALREADY_EXISTS:
        raise _refused(add, reply)
    read = ReadRequest(dn, list(attributes) or ["1.1"])
    reply = yield read
    if reply.code == NO_SUCH_OBJECT:  # deleted meanwhile: start the op over
        raise TransientLdapError("entry vanished while healing", maybe_applied=False)
    if not reply.ok:
        raise _refused(read, reply)
    changes = {
        name: [(MODIFY_REPLACE, list(values))]
        for name, values in attributes.items()
        if not _same_values(name, reply.entry.get(name.lower(), ()), values)
    }
    if not changes:
        return "same", ()
    modify = ModifyRequest(dn, changes)
    reply = yield modify
    if reply.code == NO_SUCH_OBJECT:
        raise TransientLdapError("entry vanished while healing", maybe_applied=False)
    if not reply.ok:
        raise _refused(modify, reply)
    return "replaced", tuple(sorted(changes))


def _same_values(name: str, have: Sequence[str], want: Sequence[str]) -> bool:
    if name.lower() == "objectclass":  # object class names are case-insensitive
        return {v.lower() for v in have} == {v.lower() for v in want}
    return set(have) == set(want)


def _replacing(changes: Attributes) -> Changes:
    return {name: [(MODIFY_REPLACE, list(values))] for name, values in changes.items()}


def value_changes(op: ModifyEntry) -> Changes:
    """The LDAP modification of ``op``: a multi-valued attribute the entry has changes by the
    values added and removed (a group gaining a member is not rewritten whole), anything else
    is replaced."""
    previous = {name.lower(): values for name, values in op.previous.items()}
    changes: Changes = {}
    for name, values in op.changes.items():
        old = previous.get(name.lower(), ())
        if not old or not values or (len(old) == 1 and len(values) == 1):
            changes[name] = [(MODIFY_REPLACE, list(values))]
            continue
        added = sorted(set(values) - set(old))
        removed = sorted(set(old) - set(values))
        parts = [(MODIFY_ADD, added)] if added else []
        parts += [(MODIFY_DELETE, removed)] if removed else []
        changes[name] = parts or [(MODIFY_REPLACE, list(values))]
    return changes

"""An in-memory stand-in for python-ldap's connection, for the pipelined writer's unit tests.

It answers the asynchronous calls the writer makes (``add_ext``, ``modify_ext``, ``delete_ext``,
``search_ext``, then ``result4`` with ``RES_ANY``) as slapd would for the cases the writer
heals (68, 32, 20, 16), replies last request first (out of order), and can be told to refuse an
entry (65), to answer busy (51) a number of times, to lose the connection (the requests it
applied are applied, their replies lost), or to fall silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap

REFUSED_MARK = "refuse-me"  # an entry whose sn is this is refused (objectClassViolation)
_ERRORS = {
    16: ldap.NO_SUCH_ATTRIBUTE,
    20: ldap.TYPE_OR_VALUE_EXISTS,
    32: ldap.NO_SUCH_OBJECT,
    51: ldap.BUSY,
    65: ldap.OBJECT_CLASS_VIOLATION,
    68: ldap.ALREADY_EXISTS,
}


@dataclass
class FakeDirectory:
    """The entries (lower-cased DN -> lower-cased name -> values), and the faults to play."""

    entries: dict[str, dict[str, list[bytes]]] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)  # DN -> how many times to answer 51
    drop_after: int | None = None  # lose the connection once this many requests are applied
    silent: bool = False  # the next connection never answers
    opened: int = 0
    requests: int = 0
    peak_in_flight: int = 0

    def connect(self, *_args: Any, **_kwargs: Any) -> FakeConnection:
        self.opened += 1
        silent, self.silent = self.silent, False
        return FakeConnection(self, silent)

    def put(self, dn: str, **attributes: Sequence[str]) -> None:
        self.entries[dn.lower()] = {
            k.lower(): [v.encode() for v in vs] for k, vs in attributes.items()
        }

    def values(self, dn: str, name: str) -> list[str] | None:
        entry = self.entries.get(dn.lower())
        return None if entry is None else [v.decode() for v in entry.get(name.lower(), [])]


def _fail(code: int, msgid: int) -> ldap.LDAPError:
    return _ERRORS[code]({"result": code, "desc": "refused", "msgid": msgid, "info": "fake"})


class FakeConnection:
    def __init__(self, directory: FakeDirectory, silent: bool) -> None:
        self.directory = directory
        self.silent = silent
        self.replies: list[tuple[int, Any]] = []  # (msgid, reply tuple or exception)
        self.next_id = 0
        self.lost = False

    # -- requests -------------------------------------------------------------------------

    def _request(self, dn: str, outcome: Any) -> int:
        if self.lost:
            raise ldap.SERVER_DOWN({"result": -1, "desc": "Can't contact LDAP server"})
        self.next_id += 1
        msgid = self.next_id
        d = self.directory
        busy = d.busy.get(dn.lower(), 0)
        if busy:
            d.busy[dn.lower()] = busy - 1
            self.replies.append((msgid, _fail(51, msgid)))
        else:
            result = outcome()  # applied now, whether its reply arrives or not
            self.replies.append((msgid, result(msgid) if callable(result) else result))
        d.requests += 1
        d.peak_in_flight = max(d.peak_in_flight, len(self.replies))
        if d.drop_after is not None and d.requests >= d.drop_after:
            d.drop_after = None
            self.lost = True
        return msgid

    def add_ext(self, dn: str, modlist: list[tuple[str, list[bytes]]]) -> int:
        def outcome() -> Any:
            entries = self.directory.entries
            if dn.lower() in entries:
                return lambda msgid: _fail(68, msgid)
            attributes = {name.lower(): list(values) for name, values in modlist}
            if attributes.get("sn") == [REFUSED_MARK.encode()]:
                return lambda msgid: _fail(65, msgid)
            entries[dn.lower()] = attributes
            return lambda msgid: (ldap.RES_ADD, [], msgid, [], None, None)

        return self._request(dn, outcome)

    def modify_ext(self, dn: str, modlist: list[tuple[int, str, list[bytes] | None]]) -> int:
        def outcome() -> Any:
            entry = self.directory.entries.get(dn.lower())
            if entry is None:
                return lambda msgid: _fail(32, msgid)
            changed = {name: list(values) for name, values in entry.items()}
            for change, name, values in modlist:
                have = changed.setdefault(name.lower(), [])
                if change == ldap.MOD_REPLACE:
                    changed[name.lower()] = list(values or [])
                elif change == ldap.MOD_ADD:
                    if any(v in have for v in values or []):
                        return lambda msgid: _fail(20, msgid)
                    have.extend(values or [])
                else:
                    if any(v not in have for v in values or []):
                        return lambda msgid: _fail(16, msgid)
                    changed[name.lower()] = [v for v in have if v not in (values or [])]
            entry.clear()
            entry.update({k: v for k, v in changed.items() if v})
            return lambda msgid: (ldap.RES_MODIFY, [], msgid, [], None, None)

        return self._request(dn, outcome)

    def delete_ext(self, dn: str) -> int:
        def outcome() -> Any:
            if self.directory.entries.pop(dn.lower(), None) is None:
                return lambda msgid: _fail(32, msgid)
            return lambda msgid: (ldap.RES_DELETE, [], msgid, [], None, None)

        return self._request(dn, outcome)

    def search_ext(self, dn: str, _scope: int, _filter: str, attributes: list[str]) -> int:
        def outcome() -> Any:
            entry = self.directory.entries.get(dn.lower())
            if entry is None:
                return lambda msgid: _fail(32, msgid)
            wanted = {a.lower() for a in attributes}
            found = {k: list(v) for k, v in entry.items() if k in wanted}
            return lambda msgid: (ldap.RES_SEARCH_RESULT, [(dn, found)], msgid, [], None, None)

        return self._request(dn, outcome)

    # -- replies --------------------------------------------------------------------------

    def result4(self, _msgid: int, _all: int, timeout: float) -> Any:
        if self.lost:
            raise ldap.SERVER_DOWN({"result": -1, "desc": "Can't contact LDAP server"})
        if self.silent or not self.replies:
            if timeout == 0:
                return None, None, None, None, None, None
            raise ldap.TIMEOUT({"result": -5, "desc": "Timed out"})
        _msgid, reply = self.replies.pop()  # the last request's first: out of order
        if isinstance(reply, Exception):
            raise reply
        return reply

    def unbind_ext(self) -> None:
        self.lost = True

"""LDIF content records (RFC 2849), read and written: what ``slapcat`` / ``ldapsearch -LLL``
give and ``slapadd`` / ``ldapadd`` take. Content records only (no ``changetype``); folded lines,
base64 values (``::``) and comments are understood; ``:<`` URL values are refused.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

Attributes = dict[str, tuple[str, ...]]
_LINE_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9;.-]*)(::?|:<)\s?(.*)\Z", re.DOTALL)
# RFC 2849 SAFE-STRING: no leading space, colon or '<', ASCII without NUL, CR, LF, no trailing space
_SAFE_RE = re.compile(
    r"[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*"
)


class LdifError(ValueError):
    """A malformed LDIF input; the message names the line, never a value."""


@dataclass(frozen=True, slots=True)
class LdifEntry:
    dn: str
    attributes: Attributes


def _logical_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Unfolded lines with their first line number; an empty string ends a record."""
    current: str | None = None
    start = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if line.startswith(" ") and current is not None:
            current += line[1:]
            continue
        if current is not None:
            yield start, current
        current, start = (None, number) if line.startswith("#") else (line, number)
    if current is not None:
        yield start, current


def read_ldif(lines: Iterable[str]) -> Iterator[LdifEntry]:
    dn: str | None = None
    attributes: dict[str, list[str]] = {}
    for number, line in _logical_lines(lines):
        if not line:
            if dn is not None:
                yield LdifEntry(dn, {k: tuple(v) for k, v in attributes.items()})
            dn, attributes = None, {}
            continue
        match = _LINE_RE.match(line)
        if match is None:
            raise LdifError(f"line {number}: not an 'attribute: value' line")
        name, kind, raw = match.groups()
        if kind == ":<":
            raise LdifError(f"line {number}: URL values are not supported")
        try:
            value = base64.b64decode(raw, validate=True).decode("utf-8") if kind == "::" else raw
        except (ValueError, UnicodeDecodeError):
            raise LdifError(f"line {number}: invalid base64 or not UTF-8") from None
        if name.lower() == "version" and dn is None:
            continue
        if name.lower() == "dn":
            if dn is not None:
                raise LdifError(f"line {number}: a second dn in one record")
            dn = value
            continue
        if dn is None:
            raise LdifError(f"line {number}: an attribute before the record's dn")
        if name.lower() == "changetype":
            raise LdifError(f"line {number}: change records are not supported")
        attributes.setdefault(name, []).append(value)
    if dn is not None:
        yield LdifEntry(dn, {k: tuple(v) for k, v in attributes.items()})


def _line(name: str, value: str) -> str:
    if _SAFE_RE.fullmatch(value) and not value.endswith(" "):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def format_ldif(entries: Iterable[LdifEntry]) -> Iterator[str]:
    """Lines (with their newline) of the entries, ``dn`` first, one blank line after each."""
    for entry in entries:
        yield _line("dn", entry.dn) + "\n"
        for name, values in entry.attributes.items():
            for value in values:
                yield _line(name, value) + "\n"
        yield "\n"

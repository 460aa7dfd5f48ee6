"""What the audit store indexes of one message of the audit topic (pure).

A message becomes an :class:`IndexedEvent`: its raw JSON plus the columns the store searches on.
``directory.changed`` events are validated against their contract; other types (the topic may
carry more kinds of audit events later) are kept raw with whatever common fields they have, so a
new type is stored, not refused. A message that is not a JSON object, or a ``directory.changed``
that breaks its contract, is ``invalid``: only its digest is kept, never its bytes, since nothing
vouches that it is free of personal data.

Schools: an audit event names entries by opaque id and DN. The school of a school entry
(``ou=<school jointure>,ou=structures,...``) and of a feed-managed group
(``cn=<school jointure>$...,ou=groups,...``) is read from the DN; a person's DN
(``uid=<opaque id>``) carries none, so person events have a school only if the event itself names
it (fields ``schools``, ``school_uais`` or ``school``, none of which ``directory.changed`` has
today). In AAF1D extracts a school's jointure is its UAI.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from string import hexdigits
from typing import Any, Final, Literal

from pydantic import ValidationError

from schemas.audit import DirectoryChanged
from sync.dit import GROUPS_OU, NAME_SEPARATOR, STRUCTURES_OU

DIRECTORY_CHANGED: Final = "directory.changed"
SCHOOL_FIELDS: Final = ("schools", "school_uais", "school")
SCHOOLS_SEPARATOR: Final = "|"

Status = Literal["event", "invalid"]


@dataclass(frozen=True)
class IndexedEvent:
    """One audit message as stored: status, indexed columns, raw JSON (None when invalid)."""

    status: Status
    event_id: str
    raw_digest: str
    type: str | None = None
    action: str | None = None
    entity_id: str | None = None
    entity_kind: str | None = None
    dn: str | None = None
    schools: str | None = None
    rule: str | None = None
    cause_at: str | None = None
    raw: str | None = None


def digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


def utc_text(moment: datetime) -> str:
    """The one text form of times in the store: UTC, microseconds, sortable as text.

    A naive time is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time (``Z`` accepted); raises ValueError."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def index_message(value: bytes | None) -> IndexedEvent:
    """The stored form of one audit-topic message value (None: a tombstone)."""
    raw_digest = digest(value)
    data = _json_object(value)
    if data is None:
        return _invalid(raw_digest, None)
    kind = data.get("type")
    if kind == DIRECTORY_CHANGED:
        return _directory_changed(value or b"", data, raw_digest)
    return _other(data, raw_digest, kind if isinstance(kind, str) else None)


def _json_object(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _invalid(raw_digest: str, kind: str | None) -> IndexedEvent:
    return IndexedEvent(
        status="invalid", event_id=f"invalid:{raw_digest}", raw_digest=raw_digest, type=kind
    )


def _directory_changed(value: bytes, data: dict[str, Any], raw_digest: str) -> IndexedEvent:
    try:
        event = DirectoryChanged.model_validate_json(value)
    except ValidationError:
        return _invalid(raw_digest, DIRECTORY_CHANGED)
    return IndexedEvent(
        status="event",
        event_id=event.event_id,
        type=event.type,
        action=event.action,
        entity_id=event.entity_id,
        entity_kind=event.entity_kind,
        dn=event.dn,
        schools=_schools(data, event.dn),
        rule=event.cause.rule,
        cause_at=utc_text(event.cause.at),
        raw=value.decode("utf-8"),
        raw_digest=raw_digest,
    )


def _other(data: dict[str, Any], raw_digest: str, kind: str | None) -> IndexedEvent:
    """A type this version does not know: kept raw, common fields indexed when present."""
    cause = data.get("cause")
    cause = cause if isinstance(cause, dict) else {}
    dn = _text(data, "dn")
    return IndexedEvent(
        status="event",
        event_id=_text(data, "event_id") or f"raw:{raw_digest}",
        type=kind,
        action=_text(data, "action"),
        entity_id=_text(data, "entity_id"),
        entity_kind=_text(data, "entity_kind"),
        dn=dn,
        schools=_schools(data, dn),
        rule=_text(cause, "rule") or _text(data, "rule"),
        cause_at=_time(_text(cause, "at") or _text(data, "at")),
        raw=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        raw_digest=raw_digest,
    )


def _text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def _time(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return utc_text(parse_time(text))
    except ValueError:
        return None


def _schools(data: Mapping[str, Any], dn: str | None) -> str | None:
    named: list[str] = []
    for field in SCHOOL_FIELDS:
        value = data.get(field)
        if isinstance(value, str):
            named.append(value)
        elif isinstance(value, list):
            named.extend(v for v in value if isinstance(v, str))
    from_dn = school_of_dn(dn) if dn else None
    return join_schools([*named, *([from_dn] if from_dn else [])])


def join_schools(schools: Iterable[str]) -> str | None:
    """``|A|B|``: delimited at both ends, so a search matches whole values only."""
    distinct = sorted({s for s in schools if s and SCHOOLS_SEPARATOR not in s})
    if not distinct:
        return None
    return SCHOOLS_SEPARATOR + SCHOOLS_SEPARATOR.join(distinct) + SCHOOLS_SEPARATOR


def school_of_dn(dn: str) -> str | None:
    """The school jointure of a school or feed-managed group DN (see :mod:`sync.dit`)."""
    if dn.partition("=")[0].strip().lower() not in ("ou", "cn"):
        return None  # a person's (uid=): not worth parsing, nor a place in the cache
    return _school_of_dn(dn)


@functools.lru_cache(maxsize=1 << 14)  # pure; the same school and group DNs come back
def _school_of_dn(dn: str) -> str | None:
    rdns = _leading_rdns(dn, 2)
    if rdns is None:
        return None
    (attr, value), (parent_attr, parent) = rdns
    branch = (parent_attr.strip().lower(), _unescape(parent).strip().lower())
    if attr.strip().lower() == "ou" and branch == ("ou", STRUCTURES_OU):
        return _unescape(value)
    if attr.strip().lower() == "cn" and branch == ("ou", GROUPS_OU):
        first = _unescape(value).split(NAME_SEPARATOR, 1)[0]
        return first.replace("%24", NAME_SEPARATOR).replace("%25", "%")
    return None


def _leading_rdns(dn: str, count: int) -> list[tuple[str, str]] | None:
    """The first ``count`` RDNs as (attribute, escaped value), split on unescaped commas."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(dn) and len(parts) < count:
        if dn[i] == "\\":
            current.append(dn[i : i + 2])
            i += 2
            continue
        if dn[i] == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(dn[i])
        i += 1
    if len(parts) < count:
        parts.append("".join(current))
    rdns = [part.partition("=") for part in parts[:count]]
    if len(rdns) < count or any(not sep or not attr for attr, sep, _ in rdns):
        return None
    return [(attr, value) for attr, _, value in rdns]


def _unescape(value: str) -> str:
    """An RDN value as written by ``escape_rdn`` back to its text (``\\,`` and ``\\XX`` forms)."""
    out = bytearray()
    i = 0
    while i < len(value):
        pair = value[i + 1 : i + 3]
        if value[i] == "\\" and len(pair) == 2 and all(c in hexdigits for c in pair):
            out += bytes.fromhex(pair)
            i += 3
        elif value[i] == "\\" and i + 1 < len(value):
            out += value[i + 1].encode()
            i += 2
        else:
            out += value[i].encode()
            i += 1
    return out.decode("utf-8", errors="replace")

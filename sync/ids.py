"""Opaque, pseudonymous, deterministic entity ids.

An entity id is ``<prefix>-<lowercase base32 of blake2b(namespace|kind|natural key), 10 bytes>``:
16 characters after the prefix, no padding, no personal data. The same natural key always gives
the same id within a namespace, so every worker computes ids without asking anyone.

Natural keys:

- pupil (élève): ``ine:<INE>`` when the record carries an INE, else ``jointure:<jointure>``. Keying
  on the INE gives identity continuity across schools, sources and 1D → 2D;
- guardian (responsable légal), staff (personnel), school (école): the source jointure;
- school: the jointure's :func:`sync.equality.key` (its DN's RDN: ``0310100R`` and ``0310100r``
  are one school to the directory, so they are one entity);
- group: ``<school jointure>|<profile>|<class code or empty>``, school and code by
  :func:`sync.equality.key` (``C02`` and ``c02`` are one ``cn``, so one group);
- login allocator: the login base (``firstname.lastname``); a staff member's academic login is
  reserved at the allocator of its base (:func:`sync.logins.academic_base`);
- manual account: a random token drawn once by ``entsync admin create-manual``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Final

from schemas.entities import EntityKind, GroupSpec
from schemas.feed import Pupil
from sync import equality

PREFIXES: Final[dict[EntityKind, str]] = {
    "pupil": "el",
    "guardian": "re",
    "staff": "pe",
    "school": "st",
    "group": "gr",
    "login": "lg",
    "manual": "ma",
}
_KINDS_BY_PREFIX: Final[dict[str, EntityKind]] = {p: k for k, p in PREFIXES.items()}

PERSON_KINDS: Final[frozenset[EntityKind]] = frozenset({"pupil", "guardian", "staff", "manual"})


@functools.lru_cache(maxsize=1 << 16)  # pure; the same ids come back at every input
def entity_id(namespace: str, kind: EntityKind, natural_key: str) -> str:
    """The id of the ``kind`` entity known by ``natural_key``."""
    digest = hashlib.blake2b(f"{namespace}|{kind}|{natural_key}".encode(), digest_size=10).digest()
    return f"{PREFIXES[kind]}-{base64.b32encode(digest).decode('ascii').lower().rstrip('=')}"


def kind_of(entity_id_: str) -> EntityKind:
    """The kind of an entity, read from its id's prefix."""
    prefix, sep, _ = entity_id_.partition("-")
    kind = _KINDS_BY_PREFIX.get(prefix) if sep else None
    if kind is None:
        raise ValueError("not an entity id: unknown prefix")
    return kind


def pupil_natural_key(pupil: Pupil) -> str:
    """``ine:<INE>`` when known (continuity across schools), else ``jointure:<jointure>``."""
    if pupil.ine:
        return f"ine:{pupil.ine.upper()}"
    return f"jointure:{pupil.jointure}"


def pupil_id(namespace: str, pupil: Pupil) -> str:
    return entity_id(namespace, "pupil", pupil_natural_key(pupil))


def guardian_id(namespace: str, jointure: str) -> str:
    return entity_id(namespace, "guardian", jointure)


def staff_id(namespace: str, jointure: str) -> str:
    return entity_id(namespace, "staff", jointure)


def school_id(namespace: str, jointure: str) -> str:
    """Keyed on the jointure as the directory compares it: it is the school entry's RDN."""
    return entity_id(namespace, "school", equality.key(jointure))


@functools.lru_cache(maxsize=1 << 14)  # pure; specs are frozen (hashable)
def group_id(namespace: str, spec: GroupSpec) -> str:
    """Groups are keyed by school, profile and class code (the class label is not identity),
    the school and the code as the directory compares them (they make the group's ``cn``)."""
    school, code = equality.key(spec.school_jointure), equality.key(spec.class_code or "")
    return entity_id(namespace, "group", f"{school}|{spec.profile}|{code}")


def login_allocator_id(namespace: str, base: str) -> str:
    """The entity that hands out the logins sharing ``base``."""
    return entity_id(namespace, "login", base)

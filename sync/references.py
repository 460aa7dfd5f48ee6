"""The references between entries: every DN entsync writes in a value, and those naming no entry.

Entries name other entries by DN: a group its ``member`` people, a pupil its guardians
(``ENTEleveParents``) and school (``ENTPersonStructRattach``), a guardian its children
(``ENTAuxPersRelEleveEleve``), a teacher its schools (``entsyncSchool``), the parent bridge the
children it attached or blocked (``entsyncAttachedChild``, ``entsyncAttachmentBlocked``). Class
values (``ENTEleveClasses``, ``ENTAuxEnsClasses``) are ``<school DN>$<class code>``: their DN is
the part before the last ``$`` (class codes never carry one, see :mod:`sync.dit`); an empty part
names nothing (a pupil without a school or a class).

:func:`dangling` finds, in a directory given as ``{dn: attributes}`` (the in-memory one of
:mod:`sync.simulator`, or entries read from LDAP), every value that names no entry, so that tests
can check the rule "no DN is written for an entry that does not exist". DNs compare as LDAP
compares them here: case-insensitively, spaces around ``,`` and ``=`` ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

DN_ATTRIBUTES: Final = frozenset(
    {
        "member",
        "ENTEleveParents",
        "ENTAuxPersRelEleveEleve",
        "ENTPersonStructRattach",
        "entsyncSchool",
        "entsyncAttachedChild",
        "entsyncAttachmentBlocked",
    }
)
"""Attributes entsync writes whose values are DNs (DN syntax; the unit tests derive the set
from the shipped schema and the written shapes, so that it cannot drift)."""

CLASS_ATTRIBUTES: Final = frozenset({"ENTEleveClasses", "ENTAuxEnsClasses"})
"""Attributes whose values are ``<school DN>$<class code>``."""

PERSON_ATTRIBUTES: Final = frozenset({"member", "ENTEleveParents", "ENTAuxPersRelEleveEleve"})
"""The references to people that the core's links keep (:mod:`sync.links`)."""


@dataclass(frozen=True, order=True)
class Reference:
    """``source``'s ``attribute`` names ``target`` (a DN)."""

    source: str
    attribute: str
    target: str


def normalized(dn: str) -> str:
    """A DN in a form two spellings of one DN share (case, spaces around separators)."""
    parts = []
    for rdn in dn.split(","):
        name, _, value = rdn.partition("=")
        parts.append(f"{name.strip()}={value.strip()}")
    return ",".join(parts).lower()


def references(dn: str, entry: Mapping[str, tuple[str, ...]]) -> Iterator[Reference]:
    """Every DN ``entry`` names (attribute names matched case-insensitively)."""
    dn_names = {a.lower(): a for a in DN_ATTRIBUTES}
    class_names = {a.lower(): a for a in CLASS_ATTRIBUTES}
    for name, values in entry.items():
        key = name.lower()
        for value in values:
            if key in dn_names:
                yield Reference(dn, dn_names[key], value)
            elif key in class_names:
                target = value.rpartition("$")[0]
                if target:
                    yield Reference(dn, class_names[key], target)


def dangling(
    directory: Mapping[str, Mapping[str, tuple[str, ...]]],
    attributes: frozenset[str] | None = None,
) -> list[Reference]:
    """The references of ``directory`` that name no entry in it, sorted; ``attributes``: only
    those (by default every DN-valued attribute entsync writes)."""
    present = {normalized(dn) for dn in directory}
    wanted = {a.lower() for a in attributes} if attributes is not None else None
    found = [
        ref
        for dn, entry in directory.items()
        for ref in references(dn, entry)
        if (wanted is None or ref.attribute.lower() in wanted)
        and normalized(ref.target) not in present
    ]
    return sorted(found)

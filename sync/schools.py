"""The schools an entry belongs to, for the audit trail (``audit search --school``).

Schools are named by jointure (the UAI in AAF1D extracts), never by anything personal. An entry
belongs to the schools its DN names (a school, a school's group), the school DNs its values name
(attachment school, schools of exercise, a group's school) on either side of a change, and the
schools of the groups and children it links to (a guardian's entry names no school itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sync.auditindex import school_of_dn
from sync.links import Link

SCHOOL_VALUED = ("ENTPersonStructRattach", "entsyncSchool")
"""Attributes whose values are school DNs."""


def entry_schools(
    dn: str,
    entries: Iterable[Mapping[str, Sequence[str]] | None],
    links: Iterable[Link] = (),
) -> tuple[str, ...]:
    found: set[str] = set()
    if school := school_of_dn(dn):
        found.add(school)
    for entry in entries:
        for name in SCHOOL_VALUED:
            for value in (entry or {}).get(name, ()):
                if school := school_of_dn(value):
                    found.add(school)
    for link in links:
        if link.group is not None:
            found.add(link.group.school_jointure)
        if link.child is not None and link.child.school_jointure:
            found.add(link.child.school_jointure)
    return tuple(sorted(found))

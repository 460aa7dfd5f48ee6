"""Directory operations decided by the core and carried out by ``connectors.ldap``.

Plain immutable values. Attribute maps use LDAP attribute names as keys and tuples of string
values; an empty tuple in a modification means "remove the attribute".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Attributes = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class AddEntry:
    dn: str
    attributes: Attributes


@dataclass(frozen=True)
class ModifyEntry:
    """Give the listed attributes these values (empty tuple: delete the attribute).

    ``previous`` has, for the changed attributes the entry had, the values the core last wrote:
    a connector may send only the values added and removed (a group of 400 members gaining one
    is not rewritten whole). ``desired`` is the full entry the core believes in; the connector
    uses it to heal an entry that is missing (add it) or differs from what the core last wrote.
    """

    dn: str
    changes: Attributes
    desired: Attributes = field(default_factory=dict)
    previous: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteEntry:
    dn: str


DirectoryOp = AddEntry | ModifyEntry | DeleteEntry

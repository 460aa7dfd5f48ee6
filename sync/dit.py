"""The directory information tree: where each entity's entry lives.

- people (pupils, guardians, staff): ``uid=<entity id>,ou=people,<base>``: the DN never carries a
  name, so it survives name changes, school changes and source changes;
- schools (écoles): ``ou=<school jointure>,ou=structures,<base>``;
- feed-managed groups: ``cn=<readable name>,ou=groups,<base>`` with readable names
  ``<school jointure>$<profile>`` (school-wide) and ``<school jointure>$<class code>$<profile>``
  (class groups), profiles ``pupils``, ``guardians``, ``teachers``, ``staff``. The separator is
  ``$``, as in the SDET class values (``<school DN>$<class>``): the AAF format splits
  ``ENTPersonClasses`` on ``$``, so neither a school jointure nor a class code carries one, and
  jointures and class codes may contain ``-`` (``CE1-CE2``) without two groups sharing a name.
  Should a component ever contain ``$`` (or ``%``), it is written ``%24`` (``%25``), and so are
  the characters the directory reads as them (``＄``, ``％``): names stay distinct whatever the
  input. Names are compared as the directory compares ``cn``
  (:mod:`sync.equality`): groups whose codes it holds equal are one entity (one id), so one
  name; codes it holds different give names it holds different;
- the school's GAR assignment managers group (``Resp-Affect-GAR``):
  ``cn=<school jointure>$Resp-Affect-GAR,ou=groups,<base>``. Decision: it is **not** created with
  the school (groupOfNames MUST have a member and nobody is in it yet); it is created when the
  first teacher is put in it (admin command) and is never deleted by the synchronizer (removing
  its last member is refused, see :mod:`sync.commands`);
- ``ou=manual-groups,<base>`` belongs to people, never to the synchronizer.

RDN values are escaped with ``ldap3.utils.dn.escape_rdn``.
"""

from __future__ import annotations

import re
from typing import Final

from ldap3.utils.dn import escape_rdn as _escape_rdn

from schemas.entities import GroupSpec

DEFAULT_BASE_DN: Final = "dc=ent,dc=example"
PEOPLE_OU: Final = "people"
STRUCTURES_OU: Final = "structures"
GROUPS_OU: Final = "groups"
MANUAL_GROUPS_OU: Final = "manual-groups"
GAR_GROUP_SUFFIX: Final = "Resp-Affect-GAR"


_PLAIN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # nothing RFC 4514 escapes


def escape_rdn(value: str) -> str:
    """``ldap3.utils.dn.escape_rdn``, without its eight replaces for a plain value (our ids)."""
    return value if _PLAIN.fullmatch(value) else _escape_rdn(value)


def people_dn(entity_id: str, base_dn: str = DEFAULT_BASE_DN) -> str:
    return f"uid={escape_rdn(entity_id)},ou={PEOPLE_OU},{base_dn}"


def school_dn(school_jointure: str, base_dn: str = DEFAULT_BASE_DN) -> str:
    return f"ou={escape_rdn(school_jointure)},ou={STRUCTURES_OU},{base_dn}"


NAME_SEPARATOR: Final = "$"


# What the directory reads as ``%`` and ``$`` (NFKC): escaped like them, or ``A＄B`` would be a
# separator to the directory and not to us.
_ESCAPES: Final = str.maketrans(
    {"%": "%25", "\ufe6a": "%25", "\uff05": "%25", "$": "%24", "\ufe69": "%24", "\uff04": "%24"}
)


def _name_part(text: str) -> str:
    """A name component that cannot contain the separator (``%`` escaped too, so it stays
    injective up to the directory's equality)."""
    return text.translate(_ESCAPES)


def group_name(spec: GroupSpec) -> str:
    """Readable name, distinct for distinct groups: ``<school>$<profile>``,
    ``<school>$<class>$<profile>``, or ``<school>$Resp-Affect-GAR`` for the GAR group."""
    if spec.profile == "gar":
        parts = [spec.school_jointure, GAR_GROUP_SUFFIX]
    elif spec.class_code:
        parts = [spec.school_jointure, spec.class_code, spec.profile]
    else:
        parts = [spec.school_jointure, spec.profile]
    return NAME_SEPARATOR.join(_name_part(p) for p in parts)


def group_dn(spec: GroupSpec, base_dn: str = DEFAULT_BASE_DN) -> str:
    return f"cn={escape_rdn(group_name(spec))},ou={GROUPS_OU},{base_dn}"


def gar_group_spec(school_jointure: str) -> GroupSpec:
    return GroupSpec(school_jointure=school_jointure, profile="gar")


def gar_group_name(school_jointure: str) -> str:
    return group_name(gar_group_spec(school_jointure))


def gar_group_dn(school_jointure: str, base_dn: str = DEFAULT_BASE_DN) -> str:
    return group_dn(gar_group_spec(school_jointure), base_dn)


def manual_groups_dn(base_dn: str = DEFAULT_BASE_DN) -> str:
    return f"ou={MANUAL_GROUPS_OU},{base_dn}"


def is_managed(dn: str, base_dn: str = DEFAULT_BASE_DN) -> bool:
    """Whether the synchronizer may write ``dn``: under ``base_dn`` and not a manual group."""
    lowered = dn.lower()
    if not lowered.endswith("," + base_dn.lower()):
        return False
    return not (
        lowered == manual_groups_dn(base_dn).lower()
        or lowered.endswith("," + manual_groups_dn(base_dn).lower())
    )

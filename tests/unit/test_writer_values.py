"""The LDAP modification the writer sends for a ModifyEntry: values added and removed."""

from __future__ import annotations

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from connectors.ldap.writer import value_changes
from sync.ops import ModifyEntry


def test_value_changes_send_only_what_moves() -> None:
    op = ModifyEntry(
        "cn=g",
        {"member": ("a", "c"), "cn": ("y",), "description": ()},
        previous={"member": ("a", "b"), "cn": ("x",), "description": ("d",)},
    )
    assert value_changes(op) == {
        "member": [(MODIFY_ADD, ["c"]), (MODIFY_DELETE, ["b"])],
        "cn": [(MODIFY_REPLACE, ["y"])],  # single-valued either side: replaced
        "description": [(MODIFY_REPLACE, [])],
    }
    fresh = ModifyEntry("cn=g", {"member": ("a", "b")})  # nothing known before: replaced
    assert value_changes(fresh) == {"member": [(MODIFY_REPLACE, ["a", "b"])]}

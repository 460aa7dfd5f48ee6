"""The names entsync writes, derived from the entry builders, cannot drift from them."""

from __future__ import annotations

import ast
import inspect

from schemas.feed import Guardian
from schemas.ldap_schema import shipped_schema
from sync import bridge, entries
from sync.written import filled, written_names, written_shapes


def _string_constants(module: object) -> set[str]:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_schema_name_the_builders_mention_is_written_by_a_sample() -> None:
    """A class or attribute of our schema files that appears in the builders' code must show
    in a sample entry; else a new builder branch or record field is not exercised by
    :mod:`sync.written`, and the preflight would not check it."""
    ours = shipped_schema()
    mentioned = {
        name.lower()
        for name in _string_constants(entries) | set(bridge.BRIDGE_ATTRIBUTES)
        if ours.attribute(name) is not None or ours.object_class(name) is not None
    }
    classes, attributes = written_names(written_shapes())
    written = {name.lower() for name in classes | attributes}
    assert mentioned, "no schema name found in sync/entries.py: the scan is broken"
    assert mentioned - written == set()


def test_every_written_name_is_a_string_the_code_spells() -> None:
    # The samples invent no names: each comes from the builders (or the bridge).
    spelled = _string_constants(entries) | _string_constants(bridge)
    classes, attributes = written_names(written_shapes())
    assert (classes | attributes) - spelled == set()


def test_filled_sets_every_optional_field() -> None:
    guardian = filled(Guardian(jointure="G", last_name="x", first_name="x"))
    empty = [name for name in Guardian.model_fields if getattr(guardian, name) in (None, ())]
    assert empty == []


def test_shapes_carry_names_only() -> None:
    for shape in written_shapes():
        assert "objectClass" not in shape.attributes
        assert shape.multi_valued <= shape.attributes
        assert shape.classes and shape.attributes

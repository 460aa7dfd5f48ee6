"""Does a directory's schema accept what entsync writes? A pure comparison, names only.

Inputs: our schema definitions (the shipped ``schemas/ldap/*.schema`` files), the shapes of the
entries entsync writes (:mod:`sync.written`: classes and attribute names, from the builders),
and the server's published schema. Definitions are compared only for the names entsync both
defines and writes (a class or attribute of our files that no builder emits is not required);
names entsync writes without defining them (``cn``, ``mail``, ``inetOrgPerson``...) must exist.

A problem names attribute types, object classes and entry kinds, never values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from schemas.ldap_schema import SchemaDefs
from sync.written import EntryShape, written_names

_SYNTAX: Final = "1.3.6.1.4.1.1466.115.121.1."
DIRECTORY_STRING: Final = _SYNTAX + "15"
OCTET_STRING: Final = _SYNTAX + "40"
# Syntaxes whose values are non-empty UTF-8 text: a Directory String (or Octet String)
# attribute can hold them too. Boolean, Country String, DN, Generalized Time, IA5 String,
# Numeric String, Postal Address, Printable String, Telephone Number.
TEXTUAL: Final = frozenset(
    _SYNTAX + n for n in ("7", "11", "12", "15", "24", "26", "36", "41", "44", "50")
)
EXTENSIBLE: Final = "extensibleobject"


@dataclass(frozen=True, order=True)
class Problem:
    """One misfit. ``subject``: the attribute type or object class at fault."""

    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


def can_hold(server_syntax: str, our_syntax: str) -> bool:
    """Whether values of ``our_syntax`` are valid in an attribute of ``server_syntax``."""
    if server_syntax == our_syntax:
        return True
    return server_syntax in (DIRECTORY_STRING, OCTET_STRING) and our_syntax in TEXTUAL


def _kinds(shapes: Iterable[EntryShape]) -> str:
    return ", ".join(sorted({s.label.split(",")[0] for s in shapes}))


def _attribute_problems(
    name: str, ours: SchemaDefs, server: SchemaDefs, shapes: Sequence[EntryShape]
) -> list[Problem]:
    theirs = server.attribute(name)
    if theirs is None:
        return [Problem(name, "attribute type unknown to the server")]
    mine = ours.attribute(name)
    several = (mine is not None and not mine.single_value) or any(
        name in s.multi_valued for s in shapes
    )
    found: list[Problem] = []
    if several and theirs.single_value:
        found.append(Problem(name, "SINGLE-VALUE on the server; entsync writes several values"))
    if mine is None:
        return found
    my_syntax = ours.syntax(name) or server.syntax(name)
    their_syntax = server.syntax(name)
    if my_syntax and their_syntax and not can_hold(their_syntax, my_syntax):
        found.append(
            Problem(name, f"syntax {their_syntax} on the server cannot hold ours ({my_syntax})")
        )
    my_equality, their_equality = ours.equality(name), server.equality(name)
    if (
        several
        and my_equality
        and their_equality
        and "exact" in my_equality.lower()
        and "ignore" in their_equality.lower()
    ):
        found.append(
            Problem(
                name,
                f"EQUALITY {their_equality} on the server: values entsync keeps apart "
                f"({my_equality}) would collide",
            )
        )
    return found


def _class_problems(name: str, ours: SchemaDefs, server: SchemaDefs) -> list[Problem]:
    theirs = server.object_class(name)
    if theirs is None:
        return [Problem(name, "object class unknown to the server")]
    mine = ours.object_class(name)
    if mine is not None and mine.kind != theirs.kind:
        return [Problem(name, f"{theirs.kind} on the server; entsync uses it as {mine.kind}")]
    return []


def _structural_chain(shape: EntryShape, server: SchemaDefs) -> list[Problem]:
    """An entry needs one chain of structural classes (the most specific and its superiors)."""
    structural = {
        c.lower()
        for c in shape.classes
        if (oc := server.object_class(c)) is not None and oc.kind == "STRUCTURAL"
    }
    for candidate in structural:
        chain = {n.lower() for oc in server.superclasses(candidate) for n in oc.names}
        if structural <= chain:
            return []
    names = ", ".join(sorted(c for c in shape.classes if c.lower() in structural))
    return [Problem(names, f"not one chain of structural classes on the server ({shape.label})")]


def _shape_problems(
    shapes: Sequence[EntryShape], server: SchemaDefs, missing: set[str]
) -> list[Problem]:
    """MUST attributes entsync does not write; attributes no class of the entry allows."""
    unwritten: dict[tuple[str, str], list[EntryShape]] = {}
    disallowed: dict[str, list[EntryShape]] = {}
    chains: list[Problem] = []
    for shape in shapes:
        if any(c.lower() in missing for c in shape.classes):
            continue  # reported already; its MUST and MAY are unknown
        chains.extend(_structural_chain(shape, server))
        written = {server.canonical(a) for a in shape.attributes} | {"objectclass"}
        for klass in shape.classes:
            for oc in server.superclasses(klass):
                for attribute in oc.must:
                    if server.canonical(attribute) not in written:
                        unwritten.setdefault((oc.name, attribute), []).append(shape)
        if any(c.lower() == EXTENSIBLE for c in shape.classes):
            continue
        allowed = server.allowed(shape.classes)
        for attribute in shape.attributes:
            if attribute.lower() not in missing and server.canonical(attribute) not in allowed:
                disallowed.setdefault(attribute, []).append(shape)
    found = list(dict.fromkeys(chains))
    found += [
        Problem(
            klass, f"MUST {attribute} on the server, which entsync does not write ({_kinds(where)})"
        )
        for (klass, attribute), where in unwritten.items()
    ]
    found += [
        Problem(
            attribute,
            f"not allowed by the classes of the entries entsync writes it on ({_kinds(where)})",
        )
        for attribute, where in disallowed.items()
    ]
    return found


def compare(ours: SchemaDefs, shapes: Sequence[EntryShape], server: SchemaDefs) -> list[Problem]:
    """Everything in ``server`` that would make a write of entsync's fail, sorted."""
    classes, attributes = written_names(shapes)
    found: list[Problem] = []
    for name in sorted(classes, key=str.lower):
        found.extend(_class_problems(name, ours, server))
    for name in sorted(attributes, key=str.lower):
        carriers = [s for s in shapes if name in s.attributes]
        found.extend(_attribute_problems(name, ours, server, carriers))
    missing = {p.subject.lower() for p in found if "unknown to the server" in p.detail}
    found.extend(_shape_problems(shapes, server, missing))
    return sorted(dict.fromkeys(found), key=lambda p: (p.subject.lower(), p.detail))


def report(problems: Sequence[Problem]) -> str:
    """One message listing every problem (empty when there is none)."""
    if not problems:
        return ""
    lines = [
        f"the directory's schema does not accept what entsync writes ({len(problems)} "
        f"problem{'s' if len(problems) > 1 else ''}):",
        *(f"  - {problem}" for problem in problems),
        "load schemas/ldap/entsync.schema (and schemas/ldap/sdet.schema where the SDET classes "
        "are not already defined) into the directory, or adapt them",
    ]
    return "\n".join(lines)

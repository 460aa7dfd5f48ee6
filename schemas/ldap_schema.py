"""LDAP schema definitions: parse RFC 4512 descriptions and OpenLDAP schema files.

One parser reads both what we ship (``schemas/ldap/*.schema``: ``attributetype``,
``objectclass`` and ``objectidentifier`` directives) and what a server publishes in its
subschema entry (``attributeTypes`` / ``objectClasses`` values), so that the preflight compares
like with like. Only what matters for writing entries is kept: names, superiors, syntax,
SINGLE-VALUE, EQUALITY, the kind of a class, MUST and MAY. Names are looked up
case-insensitively, by name or by OID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar

Kind = Literal["STRUCTURAL", "AUXILIARY", "ABSTRACT"]
T = TypeVar("T")

SHIPPED_DIR: Final = Path(__file__).resolve().parent / "ldap"
SHIPPED_FILES: Final = ("sdet.schema", "entsync.schema")

_TOKEN = re.compile(r"\s*(\(|\)|\$|'(?:[^'\\]|\\.)*'|[^\s()$']+)")
_FLAGS: Final = frozenset(
    {"OBSOLETE", "SINGLE-VALUE", "COLLECTIVE", "NO-USER-MODIFICATION", "ABSTRACT", "STRUCTURAL"}
    | {"AUXILIARY"}
)
_VALUED: Final = frozenset(
    {"NAME", "DESC", "SUP", "EQUALITY", "ORDERING", "SUBSTR", "SYNTAX", "USAGE", "MUST", "MAY"}
)
_KINDS: Final[tuple[Kind, ...]] = ("STRUCTURAL", "AUXILIARY", "ABSTRACT")


class SchemaParseError(ValueError):
    """A definition that does not follow RFC 4512 (the message quotes its beginning)."""


@dataclass(frozen=True)
class AttributeType:
    oid: str
    names: tuple[str, ...]
    sup: str | None = None
    syntax: str | None = None  # OID, without its length bound
    single_value: bool = False
    equality: str | None = None

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


@dataclass(frozen=True)
class ObjectClass:
    oid: str
    names: tuple[str, ...]
    kind: Kind = "STRUCTURAL"  # RFC 4512's default
    sup: tuple[str, ...] = ()
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SchemaParseError(f"cannot read schema text at {text[position : position + 40]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith("'") and token.endswith("'") else token


def _fields(text: str) -> tuple[str, dict[str, list[str]]]:
    """(numeric OID, {keyword: values}) of one ``( oid KEYWORD value ... )`` description."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise SchemaParseError(f"not a schema description: {text[:60]!r}")
    oid, rest = tokens[1], tokens[2:-1]
    fields: dict[str, list[str]] = {}
    index = 0
    while index < len(rest):
        keyword = rest[index].upper()
        index += 1
        if keyword in _FLAGS:
            fields[keyword] = []
            continue
        if keyword not in _VALUED and not keyword.startswith("X-"):
            raise SchemaParseError(f"unknown keyword {keyword!r} in {text[:60]!r}")
        if index >= len(rest):
            raise SchemaParseError(f"{keyword} without a value in {text[:60]!r}")
        if rest[index] == "(":
            end = rest.index(")", index)
            values = [_unquote(t) for t in rest[index + 1 : end] if t != "$"]
            index = end + 1
        else:
            values = [_unquote(rest[index])]
            index += 1
        fields[keyword] = values
    return oid, fields


def _one(fields: Mapping[str, list[str]], keyword: str) -> str | None:
    values = fields.get(keyword)
    return values[0] if values else None


def parse_attribute_type(text: str, oid_of: Mapping[str, str] | None = None) -> AttributeType:
    """An attribute type description; ``oid_of`` expands OpenLDAP OID macros."""
    oid, fields = _fields(text)
    syntax = _one(fields, "SYNTAX")
    if syntax is not None:
        syntax = _expand(syntax.split("{", 1)[0], oid_of or {})
    return AttributeType(
        oid=_expand(oid, oid_of or {}),
        names=tuple(fields.get("NAME", ())),
        sup=_one(fields, "SUP"),
        syntax=syntax,
        single_value="SINGLE-VALUE" in fields,
        equality=_one(fields, "EQUALITY"),
    )


def parse_object_class(text: str, oid_of: Mapping[str, str] | None = None) -> ObjectClass:
    """An object class description; ``oid_of`` expands OpenLDAP OID macros."""
    oid, fields = _fields(text)
    kinds = [kind for kind in _KINDS if kind in fields]
    if len(kinds) > 1:
        raise SchemaParseError(f"object class {oid} has several kinds")
    return ObjectClass(
        oid=_expand(oid, oid_of or {}),
        names=tuple(fields.get("NAME", ())),
        kind=kinds[0] if kinds else "STRUCTURAL",
        sup=tuple(fields.get("SUP", ())),
        must=tuple(fields.get("MUST", ())),
        may=tuple(fields.get("MAY", ())),
    )


def _expand(oid: str, oid_of: Mapping[str, str]) -> str:
    """``macro`` or ``macro:suffix`` (OpenLDAP ``objectidentifier``) as a numeric OID."""
    prefix, colon, suffix = oid.partition(":")
    if prefix.lower() in oid_of:
        base = oid_of[prefix.lower()]
        return f"{base}.{suffix}" if colon else base
    return oid


def _directives(text: str) -> Iterator[tuple[str, str]]:
    """(keyword, rest) of each directive of a slapd.conf-style file; a line starting with
    white space continues the previous one, a line starting with ``#`` is a comment."""
    current: list[str] = []

    def directive() -> tuple[str, str]:
        keyword, _space, rest = " ".join(current).partition(" ")
        return keyword.lower(), rest.strip()

    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[:1].isspace() and current:
            current.append(line.strip())
            continue
        if current:
            yield directive()
        current = [line.strip()]
    if current:
        yield directive()


@dataclass
class SchemaDefs:
    """Attribute types and object classes, indexed by lower-cased names and OIDs."""

    attributes: dict[str, AttributeType] = field(default_factory=dict)
    classes: dict[str, ObjectClass] = field(default_factory=dict)

    def add_attribute(self, definition: AttributeType) -> None:
        for key in (definition.oid, *definition.names):
            self.attributes[key.lower()] = definition

    def add_class(self, definition: ObjectClass) -> None:
        for key in (definition.oid, *definition.names):
            self.classes[key.lower()] = definition

    def attribute(self, name: str) -> AttributeType | None:
        return self.attributes.get(name.lower())

    def object_class(self, name: str) -> ObjectClass | None:
        return self.classes.get(name.lower())

    def attribute_chain(self, name: str) -> list[AttributeType]:
        """The attribute type and its superiors, nearest first (a cycle stops the walk)."""
        chain: list[AttributeType] = []
        current = self.attribute(name)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.attribute(current.sup) if current.sup else None
        return chain

    def syntax(self, name: str) -> str | None:
        """The syntax OID, inherited from a superior when not given."""
        return next((a.syntax for a in self.attribute_chain(name) if a.syntax), None)

    def equality(self, name: str) -> str | None:
        return next((a.equality for a in self.attribute_chain(name) if a.equality), None)

    def superclasses(self, name: str) -> list[ObjectClass]:
        """The class and all its superiors (breadth first, each once)."""
        found: list[ObjectClass] = []
        pending = [name]
        while pending:
            current = self.object_class(pending.pop(0))
            if current is not None and current not in found:
                found.append(current)
                pending.extend(current.sup)
        return found

    def canonical(self, name: str) -> str:
        """The attribute type's first name (so that OIDs, aliases and case compare equal)."""
        definition = self.attribute(name)
        return definition.name.lower() if definition else name.lower()

    def required(self, classes: Iterable[str]) -> set[str]:
        """MUST attributes of these classes and their superiors, canonical lower-case names."""
        return {self.canonical(n) for c in classes for oc in self.superclasses(c) for n in oc.must}

    def allowed(self, classes: Iterable[str]) -> set[str]:
        """MUST and MAY attributes of these classes and their superiors, canonical names."""
        return {
            self.canonical(n)
            for c in classes
            for oc in self.superclasses(c)
            for n in (*oc.must, *oc.may)
        }

    def attribute_definitions(self) -> list[AttributeType]:
        return _unique(self.attributes.values())

    def class_definitions(self) -> list[ObjectClass]:
        return _unique(self.classes.values())


def _unique(values: Iterable[T]) -> list[T]:
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def parse_schema_file(text: str, into: SchemaDefs | None = None) -> SchemaDefs:
    """The definitions of an OpenLDAP schema file (``include`` format)."""
    defs = into if into is not None else SchemaDefs()
    oid_of: dict[str, str] = {}
    for keyword, rest in _directives(text):
        if keyword == "objectidentifier":
            name, _space, value = rest.partition(" ")
            oid_of[name.lower()] = _expand(value.strip(), oid_of)
        elif keyword == "attributetype":
            defs.add_attribute(parse_attribute_type(rest, oid_of))
        elif keyword == "objectclass":
            defs.add_class(parse_object_class(rest, oid_of))
    return defs


def parse_subschema(attribute_types: Iterable[str], object_classes: Iterable[str]) -> SchemaDefs:
    """The definitions a server publishes in its subschema entry."""
    defs = SchemaDefs()
    for text in attribute_types:
        defs.add_attribute(parse_attribute_type(text))
    for text in object_classes:
        defs.add_class(parse_object_class(text))
    return defs


def shipped_schema(
    directory: Path = SHIPPED_DIR, files: Iterable[str] = SHIPPED_FILES
) -> SchemaDefs:
    """What our shipped schema files define (the source of truth for the preflight)."""
    defs = SchemaDefs()
    for name in files:
        parse_schema_file((directory / name).read_text(encoding="utf-8"), defs)
    return defs

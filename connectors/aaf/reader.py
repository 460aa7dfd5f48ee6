"""Hardened streaming reader of ``ficAlimMENESR`` files: bytes in, raw requests out.

Security model:

- The prolog (everything before the root element) is checked on raw bytes before lxml sees the
  file (:mod:`connectors.aaf.prolog`): the standard ``<!DOCTYPE ficAlimMENESR SYSTEM
  "ficAlimMENESR.dtd">`` (an external identifier only) is tolerated unless
  ``ScanConfig.refuse_doctype``; any other DOCTYPE (internal subset, PUBLIC or other DTD) or markup
  declaration (``<!ENTITY``, ``<!ELEMENT``...) is refused outright, so entity expansion (billion
  laughs), external entities and external or network DTDs never reach the parser. Only UTF-8,
  ISO-8859-1, ISO-8859-15, windows-1252 (and ASCII) may be declared.
- lxml itself runs with ``resolve_entities=False``, ``no_network=True``, ``load_dtd=False`` and
  ``huge_tree=False`` as a second line of defence; after the first request, the document's DTD
  node must be that external identifier and nothing else (no element or entity declaration).
- Encoding lies: a file declaring a single-byte encoding whose non-ASCII bytes are all UTF-8
  sequences is refused at its end (:mod:`connectors.aaf.encoding`), streaming, before pass 1
  returns: its names would otherwise be stored as mojibake.
- ``iterparse`` only reports request elements; each one is walked, checked against the AAF
  structure and then cleared and detached, so memory does not grow with the file.
- Size, record count, depth, values per attribute and value length are bounded
  (:class:`ScanConfig`).

Every structural problem raises :class:`FileRejected`: the file is refused whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from lxml import etree

from connectors.aaf.config import FileRejected, ScanConfig
from connectors.aaf.encoding import Utf8LieDetector
from connectors.aaf.prolog import ROOT_TAG, check_docinfo, check_prolog

REQUEST_TAGS = ("addRequest", "modifyRequest", "deleteRequest")
Operation = Literal["add", "modify", "delete"]
_OPS: dict[str, Operation] = {
    "addRequest": "add",
    "modifyRequest": "modify",
    "deleteRequest": "delete",
}
_SECTIONS: dict[Operation, tuple[str, ...]] = {
    "add": ("operationalAttributes", "identifier", "attributes"),
    "modify": ("operationalAttributes", "identifier", "modifications"),
    "delete": ("operationalAttributes", "identifier"),
}
CATEGORY_ATTRS = ("categoriePersonne", "categorieStructure")


@dataclass(slots=True)
class RawRequest:
    """One request as written in the file, before any field validation."""

    op: Operation
    index: int
    line: int | None
    category_attr: str
    category: str
    identifier: str
    attrs: dict[str, list[str]] = field(default_factory=dict)


class _HashingReader:
    """File-like wrapper handing bytes to lxml while hashing and counting them."""

    def __init__(self, fh: BinaryIO, max_bytes: int, path: Path) -> None:
        self._fh = fh
        self._max = max_bytes
        self._path = path
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.lies = Utf8LieDetector("utf-8")  # replaced once the prolog names the encoding

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n if n and n > 0 else 1 << 16)
        self.size += len(data)
        if self.size > self._max:
            raise FileRejected(self._path, f"file larger than {self._max} bytes")
        self.sha256.update(data)
        self.lies.feed(data)
        return data


def _sanitize(message: str) -> str:
    # libxml2 may quote raw bytes of the offending text ("Bytes: 0xE9 ..."): never repeat them.
    message = message.split("Bytes:", 1)[0].strip().rstrip(",")
    return " ".join(message.split())[:160]


class RequestReader:
    """Iterate the requests of one open file; ``digest``/``size`` are valid once exhausted."""

    def __init__(self, fh: BinaryIO, path: Path, config: ScanConfig) -> None:
        self._fh = fh
        self._path = path
        self._config = config
        self._reader = _HashingReader(fh, config.max_file_bytes, path)
        self.count = 0

    @property
    def digest(self) -> str:
        return self._reader.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._reader.size

    def __iter__(self) -> Iterator[RawRequest]:
        config, path = self._config, self._path
        head = self._fh.read(config.max_prolog_bytes)
        encoding = check_prolog(head, len(head) < config.max_prolog_bytes, config, path)
        self._reader.lies = Utf8LieDetector(encoding)
        self._fh.seek(0)
        context = etree.iterparse(
            self._reader,
            events=("end",),
            tag=REQUEST_TAGS,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,  # indentation between elements: fewer nodes to build
        )
        checked_doc = False
        root: etree._Element | None = None
        try:
            for _event, elem in context:
                if not checked_doc:
                    check_docinfo(elem.getroottree().docinfo, config, path)
                    checked_doc = True
                    root = elem.getroottree().getroot()
                parent = elem.getparent()
                if parent is not root:  # requests sit right under the root, nowhere else
                    raise FileRejected(path, f"line {_line(elem)}: misplaced <{elem.tag}>")
                assert parent is not None
                self.count += 1
                if self.count > config.max_records:
                    raise FileRejected(path, f"more than {config.max_records} records")
                request = self._walk(elem, self.count - 1)
                elem.clear(keep_tail=False)
                while (prev := elem.getprevious()) is not None:
                    if prev.tag not in REQUEST_TAGS:
                        raise FileRejected(path, f"line {_line(prev)}: unexpected <{prev.tag}>")
                    del parent[0]
                yield request
        except etree.XMLSyntaxError as exc:
            raise FileRejected(path, f"not well-formed XML: {_sanitize(str(exc))}") from None
        root = context.root
        if root is None or root.tag != ROOT_TAG:
            raise FileRejected(path, f"wrong root element, expected <{ROOT_TAG}>")
        if not checked_doc:
            check_docinfo(root.getroottree().docinfo, config, path)
        for child in root:
            if child.tag not in REQUEST_TAGS:
                raise FileRejected(path, f"line {_line(child)}: unexpected <{child.tag}>")
        # Pass 1 reaches this point before its FileScan exists: nothing of the file is published.
        if self._reader.lies.lie():
            raise FileRejected(path, self._reader.lies.reason())

    def _reject(self, elem: etree._Element, what: str) -> FileRejected:
        return FileRejected(self._path, f"line {_line(elem)}: {what}")

    def _walk(self, elem: etree._Element, index: int) -> RawRequest:
        op = _OPS[elem.tag]
        expected = _SECTIONS[op]
        sections: dict[str, etree._Element] = {}
        for child in elem:
            tag = child.tag
            if tag not in expected or tag in sections:
                raise self._unexpected(child, elem, 3)
            sections[tag] = child
        if len(sections) != len(expected):
            missing = next(name for name in expected if name not in sections)
            raise self._reject(elem, f"<{elem.tag}> without <{missing}>")
        category_attr, category = self._category(sections["operationalAttributes"])
        ident = sections["identifier"]
        if len(ident) != 1:
            raise self._reject(ident, "identifier must hold one <id>")
        id_elem = ident[0]
        if id_elem.tag != "id" or len(id_elem):
            raise self._reject(ident, "identifier must hold one <id>")
        request = RawRequest(
            op=op,
            index=index,
            line=_line(elem),
            category_attr=category_attr,
            category=category,
            identifier=(id_elem.text or "").strip(),
        )
        if op == "add":
            self._attr_list(sections["attributes"], "attr", request.attrs)
        elif op == "modify":
            self._attr_list(sections["modifications"], "modification", request.attrs)
        return request

    def _category(self, section: etree._Element) -> tuple[str, str]:
        """``operationalAttributes``: exactly one ``attr`` naming the category."""
        if len(section) != 1:
            raise self._reject(section, "operationalAttributes must hold one category attribute")
        attr = section[0]
        name = attr.get("name")
        if attr.tag == "attr" and name in CATEGORY_ATTRS and len(attr) == 1:
            value = attr[0]
            if value.tag == "value" and not len(value):
                return name, (value.text or "").strip()
        attrs: dict[str, list[str]] = {}
        self._attr_list(section, "attr", attrs)  # raises on a structural fault
        if name not in CATEGORY_ATTRS:
            raise self._reject(section, "operationalAttributes must hold one category attribute")
        values = attrs[name]
        return name, values[0].strip() if values else ""

    def _attr_list(
        self, section: etree._Element, child_tag: str, out: dict[str, list[str]]
    ) -> None:
        """Collect ``section/<child_tag name=...>/value+`` into ``out`` (non-empty values)."""
        max_chars = self._config.max_value_chars
        max_values = self._config.max_values_per_attr
        modification = child_tag == "modification"
        if len(section) > self._config.max_attrs_per_record:
            raise self._reject(section, f"more than {self._config.max_attrs_per_record} attributes")
        for attr in section:
            if attr.tag != child_tag:
                raise self._unexpected(attr, section, 4)
            name = attr.get("name")
            if not name:
                raise self._reject(attr, f"<{child_tag}> without a name")
            if modification and attr.get("operation") != "replace":
                raise self._reject(attr, 'only operation="replace" modifications are supported')
            if len(attr) > max_values:
                raise self._reject(attr, f"more than {max_values} values")
            vals = out.setdefault(name, [])
            for value in attr:
                if value.tag != "value":
                    raise self._unexpected(value, attr, 5)
                if len(value):
                    raise self._unexpected(value[0], value, 6)
                text = value.text
                if text and not text.isspace():  # blank values carry nothing
                    if len(text) > max_chars:
                        raise self._reject(value, f"value longer than {max_chars} chars")
                    vals.append(text)

    def _unexpected(self, elem: etree._Element, parent: etree._Element, depth: int) -> FileRejected:
        if depth > self._config.max_depth:
            return self._reject(elem, f"element nesting deeper than {self._config.max_depth}")
        tag = elem.tag if isinstance(elem.tag, str) else "?"
        return self._reject(elem, f"unexpected <{tag[:40]}> in <{parent.tag}>")


def _line(elem: etree._Element) -> int | None:
    line = elem.sourceline
    return line if isinstance(line, int) else None

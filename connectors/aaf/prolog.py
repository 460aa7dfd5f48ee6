"""The first layer of the reader's security model: the prolog, checked on raw bytes.

Everything before the root element is read here before lxml sees the file. It may hold an XML
declaration, comments, processing instructions and, unless ``ScanConfig.refuse_doctype``, the
standard AAF document type declaration ``<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">``:
an external identifier only, which names a DTD that is never loaded. Any other DOCTYPE (an
internal subset ``[...]``, a PUBLIC identifier, another DTD or root name) and any other markup
declaration (``<!ENTITY``, ``<!ELEMENT``...) is refused, so entity expansion, external entities
and external or network DTDs never reach the parser.

The declared encoding must be one of :data:`ENCODINGS` (the spellings lxml decodes, checked by
the tests); :func:`check_prolog` returns its canonical name, which the reader needs to look for
encoding lies (:mod:`connectors.aaf.encoding`).
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from connectors.aaf.config import FileRejected, ScanConfig

ROOT_TAG = "ficAlimMENESR"
AAF_DOCTYPE = '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">'
AAF_DTD = "ficAlimMENESR.dtd"
# declared spelling (lower case) -> canonical name
ENCODINGS: dict[str, str] = {
    **dict.fromkeys(("utf-8", "utf8"), "utf-8"),
    **dict.fromkeys(("us-ascii", "ascii"), "us-ascii"),
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1"), "iso-8859-1"),
    **dict.fromkeys(("iso-8859-15", "iso8859-15", "iso_8859-15"), "iso-8859-15"),
    **dict.fromkeys(("windows-1252", "cp1252"), "windows-1252"),
}
ACCEPTED = "UTF-8, ISO-8859-1, ISO-8859-15, windows-1252 or ASCII"
_XML_DECL_RE = re.compile(
    rb"<\?xml\s+version\s*=\s*[\"']1\.[0-9]+[\"']"
    rb"(?:\s+encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'])?"
    rb"(?:\s+standalone\s*=\s*[\"'](?:yes|no)[\"'])?\s*\?>"
)
# Quote style and whitespace may vary; the names may not. The quotes must match.
_AAF_DOCTYPE_RE = re.compile(
    rb"<!DOCTYPE\s+ficAlimMENESR\s+SYSTEM\s+(?P<q>[\"'])ficAlimMENESR\.dtd(?P=q)\s*>"
)
_NAME_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_.:-]*")
_BAD_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_REFUSED_BY_SETTING = "refused by --refuse-doctype (ENTSYNC_AAF_REFUSE_DOCTYPE)"
_ONLY_STANDARD = f"only {AAF_DOCTYPE} is accepted, without internal subset"


def check_prolog(head: bytes, at_eof: bool, config: ScanConfig, path: Path) -> str:
    """Refuse anything but an XML declaration, comments, PIs and the AAF DOCTYPE before the root
    element; return the canonical name of the declared encoding."""
    if head.startswith(_BAD_BOMS) or b"\x00" in head[:4]:
        raise FileRejected(path, f"unsupported encoding (only {ACCEPTED} are accepted)")
    bom = head.startswith(_UTF8_BOM)
    pos = 3 if bom else 0
    encoding = "utf-8"
    if head.startswith(b"<?xml", pos) and head[pos + 5 : pos + 6].isspace():
        decl = _XML_DECL_RE.match(head, pos)
        if decl is None:
            raise FileRejected(path, "malformed XML declaration")
        declared = (decl.group(1) or b"utf-8").decode("ascii").lower()
        if declared not in ENCODINGS:
            raise FileRejected(path, f"unsupported encoding {declared!r} (accepted: {ACCEPTED})")
        encoding = ENCODINGS[declared]
        if bom and encoding != "utf-8":
            raise FileRejected(path, f"declared {encoding} but starts with a UTF-8 byte order mark")
        pos = decl.end()
    seen_doctype = False
    while True:
        while pos < len(head) and head[pos : pos + 1].isspace():
            pos += 1
        if pos >= len(head):
            reason = "no root element (empty or not XML)" if at_eof else "prolog too long"
            raise FileRejected(path, reason)
        if head.startswith(b"<!--", pos):
            end = head.find(b"-->", pos + 4)
            if end < 0:
                raise FileRejected(path, "unterminated comment or prolog too long")
            pos = end + 3
        elif head.startswith(b"<?", pos):
            end = head.find(b"?>", pos + 2)
            if end < 0:
                raise FileRejected(path, "unterminated processing instruction or prolog too long")
            pos = end + 2
        elif head.startswith(b"<!", pos):
            if seen_doctype:
                raise _doctype_refused(path, "a second DOCTYPE")
            pos = _doctype_end(head, pos, config, path)
            seen_doctype = True
        elif head.startswith(b"<", pos):
            name = _NAME_RE.match(head, pos + 1)
            root = name.group(0).decode("ascii", "replace") if name else ""
            if root != ROOT_TAG:
                raise FileRejected(path, f"wrong root element <{root[:40]}>, expected <{ROOT_TAG}>")
            return encoding
        else:
            raise FileRejected(path, "not an XML document")


def _doctype_end(head: bytes, pos: int, config: ScanConfig, path: Path) -> int:
    """Where the accepted AAF DOCTYPE at ``pos`` ends; any other declaration is refused."""
    if not head.startswith(b"<!DOCTYPE", pos):
        raise FileRejected(path, "markup declarations are not accepted (DTD/entities)")
    doctype = _AAF_DOCTYPE_RE.match(head, pos)
    if doctype is not None and not config.refuse_doctype:
        return doctype.end()
    if doctype is not None:
        raise _doctype_refused(path, _REFUSED_BY_SETTING)
    if b"[" in head[pos : _declaration_end(head, pos)]:
        raise _doctype_refused(path, "an internal subset [...] may declare entities")
    raise _doctype_refused(path, _ONLY_STANDARD)


def _doctype_refused(path: Path, why: str) -> FileRejected:
    return FileRejected(path, f"DOCTYPE declarations are not accepted (DTD/entities): {why}")


def _declaration_end(head: bytes, pos: int) -> int:
    end = head.find(b">", pos)
    return len(head) if end < 0 else end


def check_docinfo(docinfo: etree.DocInfo, config: ScanConfig, path: Path) -> None:
    """Second line of defence: whatever the prolog check let through, at most the AAF DOCTYPE
    without declarations reached lxml, and no DTD was loaded."""
    dtd = docinfo.internalDTD
    # The stubs lag behind lxml (system_url, public_id): read them defensively.
    system_url = getattr(docinfo, "system_url", None)
    public_id = getattr(docinfo, "public_id", None)
    if dtd is None and not system_url and not public_id:
        return
    standard = (
        dtd is not None
        and system_url == AAF_DTD
        and not public_id
        and getattr(dtd, "name", None) == ROOT_TAG  # the DOCTYPE's name, not the root's
        and not _declares_anything(dtd)
    )
    if not standard:
        raise _doctype_refused(path, _ONLY_STANDARD)
    if config.refuse_doctype:
        raise _doctype_refused(path, _REFUSED_BY_SETTING)


def _declares_anything(dtd: etree.DTD) -> bool:
    # The stubs do not know DTD.iterelements / iterentities.
    elements = getattr(dtd, "iterelements", None)
    entities = getattr(dtd, "iterentities", None)
    if elements is None or entities is None:
        return True  # cannot tell: fail closed
    return any(True for _ in elements()) or any(True for _ in entities())

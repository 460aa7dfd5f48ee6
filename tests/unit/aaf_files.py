"""Real-shaped AAF files for the tests: the standard DOCTYPE, a declared encoding, real names."""

from __future__ import annotations

from pathlib import Path

from connectors.aaf.xmlwrite import request_xml
from schemas.feed import Category

DOCTYPE = '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n'
Attrs = dict[str, list[str]]


def real_file(
    folder: Path,
    name: str,
    requests: list[tuple[Category | str, str, Attrs]],
    encoding: str = "ISO-8859-15",
    *,
    raw: bytes | None = None,
) -> Path:
    """Add requests in ``encoding`` (as academy exports write them: DOCTYPE, then the root).

    A request's category may be a string (a category entsync does not sync). ``raw`` replaces
    the body bytes (to write bytes that lie about their encoding)."""
    body = "".join(
        request_xml("add", cat, ident, attrs)
        if isinstance(cat, Category)
        else request_xml("add", Category.PUPILS, ident, attrs).replace(">Eleve<", f">{cat}<")
        for cat, ident, attrs in requests
    )
    head = f'<?xml version="1.0" encoding="{encoding}"?>\n{DOCTYPE}<ficAlimMENESR>\n'
    data = head.encode("ascii") + (raw if raw is not None else body.encode(encoding))
    path = folder / name
    path.write_bytes(data + b"</ficAlimMENESR>\n")
    return path


def pupil(jointure: str, school: str = "0310100R", **extra: list[str]) -> Attrs:
    attrs: Attrs = {
        "ENTPersonJointure": [jointure],
        "ENTEleveINE": ["1234567890A"],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Léa"],
        "ENTPersonDateNaissance": ["12/03/2018"],
        "ENTPersonStructRattach": [school],
        "ENTPersonClasses": [f"{school}$2025$CP$C01$CP A"],
        "ENTEleveNiveau": ["CP"],
        "ENTEleveAutoriteParentale": ["20000001$10"],
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v}


def guardian(jointure: str, **extra: list[str]) -> Attrs:
    attrs: Attrs = {
        "ENTPersonJointure": [jointure],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Noël"],
        "ENTPersRelEleveEleve": ["10000001"],
    }
    attrs.update(extra)
    return attrs


def staff(jointure: str, *schools: str) -> Attrs:
    return {
        "ENTPersonJointure": [jointure],
        "ENTPersonNom": ["FABRE"],
        "ENTPersonPrenom": ["Hélène"],
        "ENTPersonStructRattach": [schools[0]],
        "ENTPersonFonctions": [
            f"{s}$ENS$ENSEIGNEMENT$E0010$PROFESSEUR DES ECOLES" for s in schools
        ],
    }

"""AAF file names: ``ENT_<UAI or scope>_<Complet|Delta>_<yyyymmdd>_<Category>_<nnnn>.xml``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from schemas.feed import Category

_NAME_RE = re.compile(
    r"ENT_(?P<scope>[A-Za-z0-9-]+)_(?P<kind>Complet|Delta)_(?P<date>[0-9]{8})_"
    r"(?P<category>EtabEducNat|Eleve|PersRelEleve|PersEducNat)_(?P<part>[0-9]{4})\.(?:xml|XML)"
)


@dataclass(frozen=True, slots=True)
class FileName:
    """What a file name says. ``conforming`` is False for a name that does not fit the pattern.

    A non-conforming name is still accepted when the content determines the category; such a file
    is always treated as a delta (``complete=False``): without a trusted name we cannot know that
    it is a full extract, and a full extract is what allows downstream to infer departures.
    """

    name: str
    conforming: bool
    scope: str | None = None
    complete: bool = False
    extract_date: date | None = None
    category: Category | None = None
    part: int = 0


def parse_file_name(name: str) -> FileName:
    match = _NAME_RE.fullmatch(name)
    if match is None:
        return FileName(name=name, conforming=False)
    raw_date = match.group("date")
    try:
        extract_date = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
    except ValueError:
        return FileName(name=name, conforming=False)
    return FileName(
        name=name,
        conforming=True,
        scope=match.group("scope"),
        complete=match.group("kind") == "Complet",
        extract_date=extract_date,
        category=Category(match.group("category")),
        part=int(match.group("part")),
    )


def format_file_name(
    scope: str, complete: bool, extract_date: date, category: Category, part: int = 0
) -> str:
    kind = "Complet" if complete else "Delta"
    return f"ENT_{scope}_{kind}_{extract_date:%Y%m%d}_{category.value}_{part:04d}.xml"

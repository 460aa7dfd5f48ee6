"""AAF file names: ``<prefix>_<Complet|Delta>_<yyyymmdd>_<Category>_<nnnn>.xml``.

Real drops use several prefixes: ours ``ENT_<UAI or scope>`` (``ENT_0310100R``,
``ENT_AC-TOULOUSE``), the bare ``ENT``, and export channels such as ``ENT2DVA-ENT16`` or
``FULL_ENTTSSERVICES``. Completeness, extract date, category and part always come from the name.
Only our shape gives a scope (the part after ``ENT_``): any other prefix names the export that
wrote the file, not the schools it covers, and the scope decides which accounts a complete
extract may mark as departed, so a channel name is never taken for one (see
:mod:`connectors.aaf.scope` for where the scope comes from then).

A name that does not fit the pattern (``eleves.xml``) is accepted when the content gives the
category, and is always a delta (``complete=False``): without a trusted name we cannot know that
it is a full extract. A name that says ``Complet`` but does not fit is refused by the scan rather
than read as a delta.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from schemas.feed import Category

_NAME_RE = re.compile(
    r"(?P<prefix>[A-Za-z0-9][A-Za-z0-9_-]*?)_(?P<kind>Complet|Delta)_(?P<date>[0-9]{8})_"
    r"(?P<category>[A-Za-z][A-Za-z0-9]*)_(?P<part>[0-9]{4})\.(?:xml|XML)"
)
_OUR_PREFIX_RE = re.compile(r"ENT_(?P<scope>[A-Za-z0-9-]+)")
_CATEGORIES = {c.value: c for c in Category}


@dataclass(frozen=True, slots=True)
class FileName:
    """What a file name says. ``conforming`` is False for a name that does not fit the pattern.

    ``category_name`` is the category as written; ``category`` is None when entsync does not
    sync it (``MefEducNat``...: :attr:`unsynced`).
    """

    name: str
    conforming: bool
    scope: str | None = None
    complete: bool = False
    extract_date: date | None = None
    category: Category | None = None
    part: int = 0
    prefix: str | None = None
    category_name: str | None = None

    @property
    def unsynced(self) -> str | None:
        """The named category when it is one entsync does not sync, else None."""
        return self.category_name if self.category is None else None

    @property
    def claims_complete(self) -> bool:
        """A name that says ``Complet`` without fitting the pattern."""
        return not self.conforming and "_complet_" in self.name.lower()


def parse_file_name(name: str) -> FileName:
    match = _NAME_RE.fullmatch(name)
    if match is None:
        return FileName(name=name, conforming=False)
    raw_date = match.group("date")
    try:
        extract_date = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
    except ValueError:
        return FileName(name=name, conforming=False)
    prefix = match.group("prefix")
    ours = _OUR_PREFIX_RE.fullmatch(prefix)
    return FileName(
        name=name,
        conforming=True,
        scope=ours.group("scope") if ours else None,
        complete=match.group("kind") == "Complet",
        extract_date=extract_date,
        category=_CATEGORIES.get(match.group("category")),
        part=int(match.group("part")),
        prefix=prefix,
        category_name=match.group("category"),
    )


def format_file_name(
    scope: str, complete: bool, extract_date: date, category: Category, part: int = 0
) -> str:
    kind = "Complet" if complete else "Delta"
    return f"ENT_{scope}_{kind}_{extract_date:%Y%m%d}_{category.value}_{part:04d}.xml"

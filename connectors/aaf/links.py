"""Guardian links checked from both sides, across a pupils file and a guardians file.

A pupil names its guardians with parental authority (``ENTEleveAutoriteParentale``, first ``$``
field); a guardian names its pupils (``ENTPersRelEleveEleve``). Pupils and guardians come in
separate files, so one file shows one side only: the two sides are compared once both files are
scanned together (``scan_many``). Findings are warnings: each file's records are published as they
are; the report tells the operator which links are one-sided or dangling.

:func:`check_links` is the pure rule on two in-memory mappings. ``scan_many`` applies the same rule
through :class:`LinkSide` / :func:`check_link_sides`, which keep the links on disk so that memory
stays flat for academy-sized files; there the links of a side are the union over its files.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping

from connectors.aaf.extsort import LineSorter
from connectors.aaf.report import ReportItem, Severity

PUPIL_LINK_ATTR = "ENTEleveAutoriteParentale"
GUARDIAN_LINK_ATTR = "ENTPersRelEleveEleve"
OneSided = tuple[str, str, str]  # pupil, guardian, side that names the link ("p" or "g")


def _items(
    one_sided: Iterable[OneSided],
    guardians: Collection[str],
    pupils: Collection[str],
    pupils_file: str,
    guardians_file: str,
) -> list[ReportItem]:
    """Warnings for one-sided links; ``guardians``/``pupils``: ids present on the other side."""
    pupil_items: list[tuple[str, str, ReportItem]] = []
    guardian_items: list[tuple[str, str, ReportItem]] = []
    for pupil, guardian, side in one_sided:
        if side == "p":
            if guardian in guardians:
                rule = "link_not_reciprocated"
                message = f"guardian {guardian} does not list this pupil in {GUARDIAN_LINK_ATTR}"
            else:
                rule, message = "link_guardian_missing", f"guardian {guardian} is not in the files"
            item = ReportItem(
                file=pupils_file,
                record_id=pupil,
                field=PUPIL_LINK_ATTR,
                rule=rule,
                message=message,
                severity=Severity.WARNING,
            )
            pupil_items.append((pupil, guardian, item))
        else:
            if pupil in pupils:
                rule = "link_not_reciprocated"
                message = f"pupil {pupil} does not list this guardian in {PUPIL_LINK_ATTR}"
            else:
                rule, message = "link_pupil_missing", f"pupil {pupil} is not in the files"
            item = ReportItem(
                file=guardians_file,
                record_id=guardian,
                field=GUARDIAN_LINK_ATTR,
                rule=rule,
                message=message,
                severity=Severity.WARNING,
            )
            guardian_items.append((guardian, pupil, item))
    pupil_items.sort(key=lambda t: t[:2])
    guardian_items.sort(key=lambda t: t[:2])
    return [t[2] for t in pupil_items] + [t[2] for t in guardian_items]


def check_links(
    pupils_side: Mapping[str, Collection[str]],
    guardians_side: Mapping[str, Collection[str]],
    *,
    pupils_file: str = "Eleve",
    guardians_file: str = "PersRelEleve",
) -> list[ReportItem]:
    """One warning per one-sided link.

    ``pupils_side``: pupil jointure → guardian jointures; ``guardians_side``: guardian jointure →
    pupil jointures. Rules: ``link_guardian_missing`` / ``link_pupil_missing`` (the other record is
    absent from the other side), ``link_not_reciprocated`` (present but not linking back).
    """
    one_sided: list[OneSided] = []
    for pupil, guardians in pupils_side.items():
        for guardian in set(guardians):
            if pupil not in guardians_side.get(guardian, ()):
                one_sided.append((pupil, guardian, "p"))
    for guardian, pupils in guardians_side.items():
        for pupil in set(pupils):
            if guardian not in pupils_side.get(pupil, ()):
                one_sided.append((pupil, guardian, "g"))
    return _items(one_sided, guardians_side.keys(), pupils_side.keys(), pupils_file, guardians_file)


class LinkSide:
    """One accepted file's side of the links, kept on disk (temporary files)."""

    def __init__(self, file: str, pupils: bool) -> None:
        self.file = file
        self.pupils = pupils
        self.pairs = LineSorter()  # "pupil\tguardian\tside"
        # Closed in close(): lives as long as the scan that collected it.
        self._ids = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115

    def add(self, record_id: str, linked: Iterable[str]) -> None:
        self._ids.write(f"{record_id}\n")
        for other in linked:
            if self.pupils:
                self.pairs.add(f"{record_id}\t{other}\tp")
            else:
                self.pairs.add(f"{other}\t{record_id}\tg")

    def ids(self) -> Iterator[str]:
        self._ids.seek(0)
        for line in self._ids:
            yield line[:-1]

    def close(self) -> None:
        self.pairs.close()
        self._ids.close()


def check_link_sides(sides: list[LinkSide], max_items: int = 100_000) -> list[ReportItem]:
    """:func:`check_links` over files' link sides, in bounded memory (one-sided links are few).

    Nothing to compare (empty list) unless there is at least one side of each kind. At most
    ``max_items`` one-sided links are reported.
    """
    pupil_sides = [s for s in sides if s.pupils]
    guardian_sides = [s for s in sides if not s.pupils]
    if not pupil_sides or not guardian_sides:
        return []
    one_sided: list[OneSided] = []
    previous: tuple[str, str] | None = None
    seen: set[str] = set()
    for line in heapq.merge(*(s.pairs.sorted() for s in sides)):
        pupil, guardian, side = line.split("\t")
        if (pupil, guardian) != previous:
            if previous is not None and len(seen) == 1 and len(one_sided) < max_items:
                one_sided.append((previous[0], previous[1], seen.pop()))
            previous, seen = (pupil, guardian), set()
        seen.add(side)
    if previous is not None and len(seen) == 1 and len(one_sided) < max_items:
        one_sided.append((previous[0], previous[1], seen.pop()))
    wanted_guardians = {g for _, g, side in one_sided if side == "p"}
    wanted_pupils = {p for p, _, side in one_sided if side == "g"}
    guardians = {i for s in guardian_sides for i in s.ids() if i in wanted_guardians}
    pupils = {i for s in pupil_sides for i in s.ids() if i in wanted_pupils}
    return _items(
        one_sided,
        guardians,
        pupils,
        ",".join(s.file for s in pupil_sides),
        ",".join(s.file for s in guardian_sides),
    )

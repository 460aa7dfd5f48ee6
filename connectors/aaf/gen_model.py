"""Data shapes of the synthetic extract generator (configuration, results, drafts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from connectors.aaf import gen_data as d
from connectors.aaf.attrs import Record
from connectors.aaf.fields import Attrs
from schemas.feed import Category, Guardian, School


@dataclass(frozen=True)
class GeneratorConfig:
    schools: int = 3
    pupils_per_school: int = 25
    seed: int = 0
    year: int = 2025  # first year of the school year: 2025 → 2025-2026
    scope: str = "AC-TOULOUSE"
    encoding: str = "UTF-8"
    faults: bool = True
    delta: bool = True
    fault_rate: float = 0.01

    @property
    def extract_date(self) -> date:
        return date(self.year, 9, 22)  # after the ONDE switchover

    @property
    def school_year(self) -> str:
        return f"{self.year}-{self.year + 1}"


@dataclass(frozen=True)
class GeneratedRecord:
    """One written request and the record the parser must make of it (None: rejected/delete)."""

    category: Category
    op: str
    jointure: str
    record: Record | None
    delta: bool = False
    faults: tuple[str, ...] = ()


@dataclass
class GeneratedExtract:
    files: dict[str, Path] = field(default_factory=dict)  # category value, and "delta"
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def full_files(self) -> list[Path]:
        return [p for k, p in self.files.items() if k != "delta"]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class SchoolClass:
    code: str
    label: str
    levels: tuple[str, ...]


@dataclass
class SchoolInfo:
    index: int
    record: School
    town: tuple[str, str, str]
    classes: list[SchoolClass]


@dataclass
class GuardianDraft:
    record: Guardian
    raw: Attrs
    children: list[str] = field(default_factory=list)
    faults: tuple[str, ...] = ()


@dataclass
class Family:
    last_name: str
    guardians: list[GuardianDraft]
    codes: list[str]


def _chunks(groups: list[tuple[str, ...]], count: int) -> list[tuple[str, ...]]:
    """``count`` contiguous multi-level classes (TPS-PS-MS, CE2-CM1-CM2...)."""
    n = len(groups)
    return [
        tuple(level for g in groups[i * n // count : (i + 1) * n // count] for level in g)
        for i in range(count)
    ]


def classes_for(kind: str, count: int) -> list[SchoolClass]:
    mat: list[tuple[str, ...]] = [("TPS", "PS"), ("MS",), ("GS",)]
    ele: list[tuple[str, ...]] = [(level,) for level in d.ELEMENTAIRE]
    if kind == "maternelle":
        parts = [(mat, count)]
    elif kind == "elementaire":
        parts = [(ele, count)]
    elif count == 1:
        parts = [(mat + ele, 1)]  # a "classe unique"
    else:
        m = max(1, round(count * 3 / 8))
        parts = [(mat, m), (ele, count - m)]
    labels: list[tuple[str, tuple[str, ...]]] = []
    for groups, k in parts:
        if k <= len(groups):
            labels += [("-".join(g), g) for g in _chunks(groups, k)]
            continue
        labels += [("-".join(g), g) for g in groups]
        for extra in range(k - len(groups)):  # parallel classes: CP B, CE1 B...
            g = groups[extra % len(groups)]
            letter = "BCDEFGH"[min(extra // len(groups), 6)]
            labels.append((f"{'-'.join(g)} {letter}", g))
    return [SchoolClass(f"C{i + 1:02d}", label, g) for i, (label, g) in enumerate(labels)]

"""Data shapes of the synthetic extract generator (configuration, results, drafts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from connectors.aaf.attrs import Attrs, Record
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

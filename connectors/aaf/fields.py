"""Typed, issue-collecting access to one record's raw AAF attributes, and cached validators.

The validators are pure and feed values repeat a lot (first names, class values, towns, birth
dates): small bounded caches make them cheap without changing any result, and keep memory flat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TypeVar

from connectors.aaf.report import Severity
from sync import validation as v

T = TypeVar("T")
Attrs = dict[str, list[str]]  # an AAF record: attribute name -> its non-blank values


@dataclass(frozen=True, slots=True)
class Issue:
    field: str | None
    rule: str
    message: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class BuildContext:
    reference_date: date
    extract_date: date
    current_school_year: str

    @property
    def oldest_birth_date(self) -> date:
        return cached_oldest(self.reference_date)


class Fields:
    """Typed access to one record's attributes, collecting issues as it goes."""

    __slots__ = ("attrs", "issues", "rejected")

    def __init__(self, attrs: Attrs) -> None:
        self.attrs = attrs
        self.issues: list[Issue] = []
        self.rejected = False

    def first(self, name: str) -> str | None:
        """The first value of ``name`` (the reader keeps only non-blank values)."""
        values = self.attrs.get(name)
        return values[0] if values else None

    def warn(self, name: str, rule: str, what: str) -> None:
        self.issues.append(Issue(name, rule, f"{name}: {what}; value dropped", Severity.WARNING))

    def reject(self, name: str | None, rule: str, message: str) -> None:
        self.rejected = True
        self.issues.append(Issue(name, rule, message, Severity.REJECTED))

    def optional(
        self, name: str, parse: Callable[[str], T | None], rule: str, what: str
    ) -> T | None:
        values = self.attrs.get(name)
        if not values:
            return None
        value = parse(values[0])
        if value is None:
            self.warn(name, rule, what)
        return value

    def required(
        self, names: tuple[str, ...], parse: Callable[[str], T | None], rule: str, what: str
    ) -> T | None:
        raw = None
        for name in names:  # the AAF1D name first, then its 2D synonym
            raw = self.first(name)
            if raw is not None:
                break
        if raw is None:
            self.reject(names[0], "required_missing", f"{names[0]}: required value missing")
            return None
        value = parse(raw)
        if value is None:
            self.reject(names[0], rule, f"{names[0]}: {what}")
        return value

    def many(
        self, name: str, parse: Callable[[str], T | None], rule: str, what: str
    ) -> tuple[T, ...]:
        out: list[T] = []
        bad = 0
        for raw in self.attrs.get(name, ()):
            value = parse(raw)
            if value is None:
                bad += 1
            elif value not in out:
                out.append(value)
        if bad:
            self.warn(name, rule, f"{bad} {what}")
        return tuple(out)

    def jointure(self, name: str, identifier: str) -> str | None:
        ident = v.normalize_jointure(identifier) if identifier else None
        raw = self.first(name)
        if raw is not None and raw == identifier:  # the usual case: validated once
            if ident is None:
                self.reject(name, "jointure_invalid", f"{name}: invalid jointure")
            return ident
        if raw is None:
            if ident is None:
                self.reject(name, "jointure_invalid", f"{name}: missing or invalid jointure")
            return ident
        value = v.normalize_jointure(raw)
        if value is None:
            self.reject(name, "jointure_invalid", f"{name}: invalid jointure")
        elif ident is not None and value != ident:
            self.reject(name, "jointure_mismatch", f"{name}: differs from identifier/id")
        return value

    def birth_date(self, ctx: BuildContext) -> date | None:
        raw = self.first("ENTPersonDateNaissance")
        if raw is None:
            return None
        parsed = cached_date(raw)
        if parsed is None:
            self.warn("ENTPersonDateNaissance", "date_invalid", "not a valid dd/mm/yyyy date")
            return None
        if not ctx.oldest_birth_date <= parsed <= ctx.reference_date:
            self.warn("ENTPersonDateNaissance", "birth_date_implausible", "implausible birth date")
            return None
        return parsed

    def names(self) -> tuple[str | None, str | None]:
        last = self.required(("ENTPersonNom", "sn"), cached_name, "name_invalid", "invalid name")
        first = self.required(
            ("ENTPersonPrenom", "givenName"), cached_name, "name_invalid", "invalid name"
        )
        return last, first

    def email(self) -> str | None:
        return self.optional("ENTPersonMail", v.normalize_email, "email_invalid", "invalid email")

    def civility(self) -> str | None:
        return self.optional(
            "ENTPersonCivilite", v.normalize_civility, "civility_invalid", "unknown civility"
        )


cached_name = lru_cache(maxsize=1 << 13)(v.normalize_name)
cached_class = lru_cache(maxsize=1 << 12)(v.parse_class)
cached_text = lru_cache(maxsize=1 << 13)(v.normalize_text)
cached_date = lru_cache(maxsize=1 << 12)(v.parse_date)
cached_postal = lru_cache(maxsize=1 << 12)(v.normalize_postal_code)
cached_oldest = lru_cache(maxsize=16)(v.oldest_plausible_birth_date)

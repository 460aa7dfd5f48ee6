"""Fictitious people for the generator: names, phones, emails, addresses, logins.

Every factory returns the value as the feed would carry it (``raw``, in one of the many shapes
seen in real extracts) together with what the parser must turn it into (``expected``), so the
generator can check its own output against the parser.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from connectors.aaf import gen_data as d

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


def slug(text: str) -> str:
    """ASCII, lower-case, words joined by '-' (for logins and email local parts)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    words = "".join(
        ch if ch.isascii() and ch.isalnum() else (" " if ch in " -" else "") for ch in plain
    )
    return "-".join(words.split())


@dataclass(frozen=True, slots=True)
class Address:
    street: str
    postal_code: str
    town: str


class People:
    """Deterministic factories driven by one ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._logins: dict[str, int] = {}
        self._ids: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def first_name(self, girl: bool) -> str:
        return self.rng.choice(d.GIRLS if girl else d.BOYS)

    def last_name(self) -> str:
        return self.rng.choice(d.LAST_NAMES)

    def raw_name(self, name: str) -> str:
        """A cosmetic variant that normalizes back to ``name`` (NFD, ’, doubled spaces)."""
        r = self.rng.random()
        if r < 0.04:
            return unicodedata.normalize("NFD", name)
        if r < 0.07 and "'" in name:
            return name.replace("'", "\u2019")
        if r < 0.09 and " " in name:
            return name.replace(" ", "  ")
        if r < 0.10:
            return f" {name} "
        return name

    def phone(self, kind: str) -> tuple[str, str]:
        """(raw, E.164) for a ``mobile``, ``home`` or ``work`` line."""
        rng = self.rng
        cc = "33"
        if kind == "mobile" and rng.random() < 0.06:
            prefix, cc = rng.choice(d.OVERSEAS_MOBILES)
        elif kind == "mobile":
            prefix = rng.choice(("06", "07"))
        elif kind == "home":
            prefix = "05"
        else:
            prefix = rng.choice(("05", "01", "09"))
        while True:
            national = prefix + "".join(str(rng.randrange(10)) for _ in range(10 - len(prefix)))
            if cc != "33" or national[1:4] not in d.OVERSEAS_RANGES:
                break
        expected = f"+{cc}{national[1:]}"
        pairs = [national[i : i + 2] for i in range(0, 10, 2)]
        rest = " ".join(pairs[1:])
        shapes: tuple[str, ...] = (
            " ".join(pairs),
            national,
            ".".join(pairs),
            "-".join(pairs),
            f"+33 {national[1]} {rest}",
            f"+33{national[1:]}",
            f"0033 {national[1]} {rest}",
            f"+33 (0){national[1]} {rest}",
        )
        if cc != "33":
            shapes = (
                *shapes,
                f"+{cc} {national[1:4]} {national[4:6]} {national[6:8]} {national[8:]}",
            )
        return rng.choice(shapes), expected

    def email(self, first: str, last: str, domain: str | None = None) -> tuple[str, str]:
        local = f"{slug(first)}.{slug(last)}".strip(".-") or "contact"
        if domain is None:
            domain = self.rng.choice(d.MAIL_DOMAINS)
            local = f"{local}{self.rng.randrange(100)}"
        raw_domain = domain.upper() if self.rng.random() < 0.1 else domain
        return f"{local}@{raw_domain}", f"{local}@{domain}"

    def address(self, town: tuple[str, str, str] | None = None) -> Address:
        rng = self.rng
        name, postal, _circ = town or rng.choice(d.TOWNS)
        number = f"{rng.randrange(1, 120)}{' bis' if rng.random() < 0.05 else ''}"
        return Address(f"{number} {rng.choice(d.STREETS)}", postal, name)

    def login(self, first: str, last: str) -> str:
        base = (slug(first)[:1] + slug(last).replace("-", ""))[:20] or "agent"
        n = self._logins.get(base, 0) + 1
        self._logins[base] = n
        return base if n == 1 else f"{base}{n}"


def uai(department: str, serial: int) -> str:
    """A UAI ``DDDNNNNX`` whose key letter follows the national check (digits mod 23)."""
    digits = f"{department}{serial:04d}"[-7:].rjust(7, "0")
    return digits + "ABCDEFGHJKLMNPRSTUVWXYZ"[int(digits) % 23]


def siren(n: int) -> str:
    """A 9-digit SIREN with a valid Luhn key, distinct for each ``n`` (fictitious: 2xx xxx xxx)."""
    body = f"2{n:07d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        digit = int(ch) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


def ine(n: int, rng: random.Random) -> str:
    """A unique, well-shaped INE: 10 digits + 1 letter, or 9 digits + 2 letters."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    body = (n * 7919 + 104729) % 10**10
    if rng.random() < 0.3:
        return f"{body % 10**9:09d}{rng.choice(letters)}{rng.choice(letters)}"
    return f"{body:010d}{rng.choice(letters)}"

"""Login bases and login allocation (identifiant ENT).

Rule for the base, ``firstname.lastname``:

- Unicode NFKD then ASCII folding (accents dropped; ``æ œ ß ø ł đ þ`` spelled out), lowercase;
- apostrophes are removed (``D'Artagnan`` → ``dartagnan``);
- spaces, underscores and other separators inside a name become one hyphen (``Jean Pierre`` →
  ``jean-pierre``), keeping compound names readable and distinct from ``jeanpierre``;
- only ``[a-z.-]`` remains: digits are dropped too, so that an allocated suffix can never make
  one base's login equal to another base's (``jean.dupont2`` is only ever ``jean.dupont`` + 2);
- at most :data:`MAX_BASE_LENGTH` characters, without a trailing separator;
- a name that folds to nothing falls back to ``u-`` + letters derived from the person's entity id
  (stable and pseudonymous).

Allocation: the first person to ask for a base gets the base itself; the next ones get the base
followed by the smallest free number starting at **2** ("the second jean.dupont" is
``jean.dupont2``). A person who already holds a login gets the same one again, forever: logins are
never freed or reused. A login is free when neither an allocation nor a staff member's academic
login reserved at the allocator (:mod:`sync.claims`) equals it as the directory compares logins
(:mod:`sync.equality`: ``Jean.Dupont`` takes ``jean.dupont``). An academic login is reserved at
the allocator of :func:`academic_base`: the login, prepared, without its trailing digits, the
only base whose logins can equal it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from sync import equality

MAX_BASE_LENGTH: Final = 30
FIRST_SUFFIX: Final = 2

# Letters NFKD does not decompose into ASCII.
_SPELLED: Final = str.maketrans(
    {"æ": "ae", "œ": "oe", "ß": "ss", "ø": "o", "ł": "l", "đ": "d", "þ": "th", "ð": "d", "ı": "i"}
)
_APOSTROPHES: Final = re.compile(r"['’‘`´ʼ]")
_NOT_LETTER: Final = re.compile(r"[^a-z]+")


def _fold_name(name: str) -> str:
    """One name part folded to ``[a-z]`` words joined by single hyphens."""
    text = _APOSTROPHES.sub("", name.lower().translate(_SPELLED))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_LETTER.sub("-", text).strip("-")


def _fallback_base(seed: str) -> str:
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return "u-" + "".join(chr(ord("a") + b % 26) for b in digest)


def login_base(first_name: str, last_name: str, fallback_seed: str) -> str:
    """The login base of a person; ``fallback_seed`` (their entity id) is used for empty names."""
    parts = [p for p in (_fold_name(first_name), _fold_name(last_name)) if p]
    base = ".".join(parts)[:MAX_BASE_LENGTH].rstrip(".-")
    return base or _fallback_base(fallback_seed)


def academic_base(academic_login: str) -> str:
    """The base of the allocator where an academic login is reserved (see the module docstring)."""
    return equality.prepare(academic_login).rstrip("0123456789")


def allocate(
    allocations: Mapping[str, str], person_id: str, base: str, reserved: Iterable[str] = ()
) -> str:
    """The login of ``person_id`` among ``allocations`` (person id → login) for ``base``, never
    one of the ``reserved`` academic logins.

    Pure: the caller records the result. Returns the person's existing login when they have one.
    """
    existing = allocations.get(person_id)
    if existing is not None:
        return existing
    # Generated logins are already in prepared form; the others are compared prepared.
    taken = {equality.prepare(v) for v in (*allocations.values(), *reserved)}
    if base not in taken:
        return base
    suffix = FIRST_SUFFIX
    while f"{base}{suffix}" in taken:
        suffix += 1
    return f"{base}{suffix}"

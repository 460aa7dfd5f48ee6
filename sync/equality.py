"""The directory's notion of equality, for every value that lands in an RDN or a unique attribute.

The SDET schema compares school and person jointures, logins, class values and ``cn`` with
``caseIgnoreMatch`` (schemas/ldap/sdet.schema), whose string preparation is RFC 4518. Python's
``==`` does not: ``C02`` and ``c02`` are two class codes to Python and one ``cn`` to LDAP. Every
comparison or key that decides which entry a value lands in goes through this module:

- :func:`prepare`: RFC 4518 preparation for ``caseIgnoreMatch``, as modelled here:

  1. *map*: the characters RFC 4518 §2.2 maps to nothing are removed (controls, soft hyphen,
     zero-width space and joiners, variation selectors, byte order mark, bidi and language
     tags...); tab, line feed, carriage return, form feed, NEL and every Unicode separator
     (categories Zs, Zl, Zp) become a space;
  2. *case fold* then *normalize*: NFKC, then full Unicode case folding (``str.casefold``) and
     NFKC until neither changes anything (RFC 3454 table B.2 is case folding closed under
     NFKC: ``U+3380`` folds to ``pa``, not ``pA``);
  3. *insignificant spaces*: leading and trailing spaces dropped, inner runs of spaces counted
     as one.

  Not modelled: the *prohibit* step (unassigned code points, private use, non-characters,
  U+FFFD make the directory's match Undefined, i.e. never equal; here they compare as they are)
  and the bidi check (no effect on equality). The Unicode version is Python's, not the
  directory's: a character assigned between the two may fold differently. Source values pass
  through :mod:`sync.validation` first (NFC, whitespace collapsed), so in practice only case,
  compatibility forms and spaces matter.
- :func:`equal`: two values the directory holds equal under ``caseIgnoreMatch``;
- :func:`key`: one representative per equality class, for entity ids. It is the prepared value in
  upper case when that is ASCII (so ``CM1``, ``0310100R`` keep their spelling, and the ids a
  directory was written with do not change), else the prepared value itself: distinct classes
  never share a key (property-tested).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

# RFC 4518 §2.2: code points mapped to nothing.
_TO_NOTHING: Final = re.compile(
    "["
    "\u0000-\u0008\u000e-\u001f\u007f-\u0084\u0086-\u009f"
    "\u00ad\u034f\u06dd\u070f\u1806\u180b-\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2063\u206a-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffc"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "]"
)
# RFC 4518 §2.2: mapped to SPACE (the Zs, Zl, Zp separators are added below by category).
_TO_SPACE: Final = frozenset("\u0009\u000a\u000b\u000c\u000d\u0085")
_SPACES: Final = re.compile(" +")


def _is_space(ch: str) -> bool:
    return ch in _TO_SPACE or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


@functools.lru_cache(maxsize=1 << 16)  # pure; the same codes and logins come back at every input
def prepare(value: str) -> str:
    """``value`` as ``caseIgnoreMatch`` compares it (see the module docstring)."""
    if value.isascii() and value.isprintable():
        # Fast path (nearly every source value): no mapping, NFKC is the identity.
        text = value.lower()
    else:
        text = _TO_NOTHING.sub("", value)
        text = "".join(" " if _is_space(ch) else ch for ch in text)
        text = unicodedata.normalize("NFKC", text)
        for _ in range(4):  # to a fixed point: NFKC can bring back capitals (U+3380 is "pA")
            folded = unicodedata.normalize("NFKC", text.casefold())
            if folded == text:
                break
            text = folded
        # NFKC can turn compatibility characters into separators (e.g. U+3000): map them too.
        text = "".join(" " if _is_space(ch) else ch for ch in text)
    return _SPACES.sub(" ", text).strip(" ")


def equal(a: str, b: str) -> bool:
    """Whether the directory holds ``a`` and ``b`` equal (``caseIgnoreMatch``)."""
    return a == b or prepare(a) == prepare(b)


def key(value: str) -> str:
    """The representative of ``value``'s equality class: upper-case ASCII when it can be."""
    prepared = prepare(value)
    return prepared.upper() if prepared.isascii() else prepared

"""Pure validation and normalization of AAF field values.

Every function takes the raw text of one value and returns its normalized form, or ``None`` when
the value is invalid. Callers decide what an invalid value means (dropped optional field with a
warning, or rejected record for a required field) and name the rule in their report.

Normalization choices:

- UAI and INE are stripped and upper-cased before their shape is checked (a lower-case letter is
  a typing accident, not a different identifier).
- Names and free texts are Unicode NFC with whitespace runs collapsed to one space. Accents,
  hyphens and apostrophes are kept; the typographic apostrophes (’ ‘ ʼ) become ``'`` and the
  Unicode hyphens (‐ ‑) become ``-`` so that the same name typed on two systems compares equal.
  Case is kept as sent (ONDE sends upper-case family names).
- Phones become E.164. French national numbers ``0X XX XX XX XX`` (spaces, dots, dashes allowed),
  ``+33`` and ``0033`` forms map to ``+33XXXXXXXXX``, except the overseas ranges that have their
  own country code (Guadeloupe, Saint-Martin and Saint-Barthélemy +590, Guyane +594,
  Martinique +596, La Réunion and Mayotte +262), so one line has one canonical form whichever
  way it was typed. Other international numbers (``+`` or ``00``) are kept when they have 9 to
  15 digits. Anything else is invalid.
- Emails get a deliberately simple check (one ``@``, dot-atom local part, LDH domain labels, an
  alphabetic TLD); the domain is lower-cased, the local part kept.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from schemas.feed import ClassAssignment

UAI_RE = re.compile(r"[0-9]{7}[A-Z]")
SIREN_RE = re.compile(r"[0-9]{9}(?:[0-9]{5})?")
INE_RE = re.compile(r"[0-9]{10}[A-Z]|[0-9]{9}[A-Z]{2}")
# Jointures end up inside '$'-separated link values and Kafka keys: no '$', no spaces.
JOINTURE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_DATE_RE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_SCHOOL_YEAR_RE = re.compile(r"([0-9]{4})(?:\s*[-/]\s*([0-9]{4}))?")
_POSTAL_RE = re.compile(r"[A-Z0-9][A-Z0-9 -]{1,9}")
_LOGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

MAX_NAME_CHARS = 100
MAX_TEXT_CHARS = 256
MAX_AGE_YEARS = 120

_APOSTROPHES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"}
)
_NAME_PUNCT = frozenset(" -'.")


def collapse(raw: str) -> str:
    """NFC, typographic apostrophes and hyphens unified, whitespace runs collapsed."""
    if raw.isascii():  # the common case needs neither NFC nor the apostrophe table
        return " ".join(raw.split())
    text = raw.translate(_APOSTROPHES)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


# Control, format (zero-width, bidi overrides), private-use characters: never in a label.
_FORBIDDEN_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u206f\ud800-\uf8ff\ufeff\ufff0-\uffff\U000f0000-\U0010ffff]"
)
# Fast path of normalize_name: Latin-1 letters and the allowed punctuation.
_LATIN_NAME_RE = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff' .-]+")
_LATIN_LETTER_RE = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]")


def normalize_text(raw: str, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Free text (labels, addresses, towns): collapsed, no control characters, bounded."""
    text = collapse(raw)
    if not text or len(text) > max_chars or _FORBIDDEN_RE.search(text):
        return None
    return text


def normalize_name(raw: str) -> str | None:
    """A person's name: letters (any script, with accents), spaces, ``-``, ``'`` and ``.``."""
    text = collapse(raw)
    if not text or len(text) > MAX_NAME_CHARS:
        return None
    if _LATIN_NAME_RE.fullmatch(text):
        return text if _LATIN_LETTER_RE.search(text) else None
    has_letter = False
    for ch in text:
        if ch in _NAME_PUNCT:
            continue
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            has_letter = True
        elif cat[0] != "M":
            return None
    return text if has_letter else None


def normalize_uai(raw: str) -> str | None:
    value = raw.strip().upper()
    return value if UAI_RE.fullmatch(value) else None


def normalize_siren(raw: str) -> str | None:
    """SIREN (9 digits) or SIRET (14 digits); spaces and dots as written on paper are dropped."""
    value = raw.strip().replace(" ", "").replace(".", "")
    return value if SIREN_RE.fullmatch(value) else None


def normalize_ine(raw: str) -> str | None:
    """INE: 10 digits + 1 letter, or 9 digits + 2 letters (after strip and upper-case)."""
    value = raw.strip().upper()
    return value if INE_RE.fullmatch(value) else None


def normalize_jointure(raw: str) -> str | None:
    value = raw.strip()
    return value if JOINTURE_RE.fullmatch(value) else None


def normalize_login(raw: str) -> str | None:
    value = raw.strip()
    return value if _LOGIN_RE.fullmatch(value) else None


def parse_date(raw: str) -> date | None:
    """``dd/mm/yyyy``; impossible dates (31/02/2020) are invalid."""
    match = _DATE_RE.fullmatch(raw.strip())
    if match is None:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def format_date(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def oldest_plausible_birth_date(today: date, max_age_years: int = MAX_AGE_YEARS) -> date:
    try:
        return today.replace(year=today.year - max_age_years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - max_age_years, day=28)


def is_plausible_birth_date(value: date, today: date, max_age_years: int = MAX_AGE_YEARS) -> bool:
    """Not in the future and not more than ``max_age_years`` ago."""
    return oldest_plausible_birth_date(today, max_age_years) <= value <= today


def parse_birth_date(raw: str, today: date) -> date | None:
    value = parse_date(raw)
    if value is None or not is_plausible_birth_date(value, today):
        return None
    return value


# Overseas ranges of the French numbering plan that have their own E.164 country code, keyed by
# the first three digits of the national significant number (after the leading 0).
_OVERSEAS_CC: dict[str, str] = {
    "590": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy (fixed)
    "690": "590",
    "691": "590",  # (mobile)
    "594": "594",
    "694": "594",  # Guyane
    "596": "596",
    "696": "596",
    "697": "596",  # Martinique
    "262": "262",
    "263": "262",
    "692": "262",
    "693": "262",  # La Réunion
    "269": "262",
    "639": "262",  # Mayotte
}
# Separators people type inside numbers: spaces (also non-breaking), dots, dashes.
_PHONE_SEPARATORS = str.maketrans(dict.fromkeys(" \t\u00a0\u202f.-"))


def _french_e164(national: str) -> str | None:
    """``national`` is the 9-digit significant number (without the leading 0)."""
    if len(national) != 9 or not national.isascii() or not national.isdigit():
        return None
    if national[0] == "0":
        return None
    cc = _OVERSEAS_CC.get(national[:3], "33")
    return f"+{cc}{national}"


def normalize_phone(raw: str) -> str | None:
    """A phone number in E.164, or None (see the module docstring for accepted forms)."""
    text = raw.translate(_PHONE_SEPARATORS).replace("(0)", "")
    if not text:
        return None
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0"):
        return _french_e164(text[1:])
    else:
        return None
    if not digits.isascii() or not digits.isdigit():
        return None
    if digits.startswith("33"):
        return _french_e164(digits[2:])
    if not 9 <= len(digits) <= 15 or digits[0] == "0":
        return None
    return f"+{digits}"


_EMAIL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL_RE = re.compile(rf"{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*")
# LDH labels (no leading or trailing '-'), then an alphabetic TLD.
_EMAIL_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def normalize_email(raw: str) -> str | None:
    text = raw.strip()
    if len(text) > 254 or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = domain.lower()
    if len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local):
        return None
    if not _EMAIL_DOMAIN_RE.fullmatch(domain):
        return None
    return f"{local}@{domain}"


_CIVILITIES = {
    "m": "M.",
    "mr": "M.",
    "monsieur": "M.",
    "mme": "Mme",
    "madame": "Mme",
    # "Mademoiselle" left administrative use in 2012: folded into Mme.
    "mlle": "Mme",
    "mademoiselle": "Mme",
}


def normalize_civility(raw: str) -> str | None:
    return _CIVILITIES.get(raw.strip().rstrip(".").lower())


def normalize_postal_code(raw: str) -> str | None:
    value = collapse(raw).upper()
    return value if _POSTAL_RE.fullmatch(value) else None


_FLAGS = {
    "o": True,
    "oui": True,
    "y": True,
    "yes": True,
    "true": True,
    "1": True,
    "n": False,
    "non": False,
    "no": False,
    "false": False,
    "0": False,
}


def parse_flag(raw: str) -> bool | None:
    """AAF booleans: ``O``/``N`` (also oui/non, true/false, 1/0); None when unrecognized."""
    return _FLAGS.get(raw.strip().lower())


def parse_school_year(raw: str) -> str | None:
    """``2025-2026``, ``2025/2026`` or ``2025`` (the starting year) → ``2025-2026``."""
    match = _SCHOOL_YEAR_RE.fullmatch(raw.strip())
    if match is None:
        return None
    start = int(match.group(1))
    if match.group(2) is not None and int(match.group(2)) != start + 1:
        return None
    if not 1900 <= start <= 2999:
        return None
    return f"{start}-{start + 1}"


def first_field(raw: str) -> str:
    """The first ``$``-separated field of a link value (a jointure)."""
    return raw.split("$", 1)[0]


def parse_class(raw: str) -> ClassAssignment | None:
    """``ENTPersonClasses``: 5 ``$`` fields, [0] school jointure, [3] class code, [4] label."""
    parts = raw.split("$")
    if len(parts) != 5:
        return None
    school = normalize_jointure(parts[0])
    code = normalize_text(parts[3], 64)
    label = normalize_text(parts[4], 128)
    if school is None or code is None or label is None:
        return None
    return ClassAssignment(school_jointure=school, code=code, label=label)

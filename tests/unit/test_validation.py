"""Pure validators of AAF values (sync.validation)."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.feed import ClassAssignment
from sync import validation as v

TODAY = date(2025, 9, 22)


@pytest.mark.parametrize("raw", ["0310100R", " 0310100R ", "0310100r"])
def test_uai_valid(raw: str) -> None:
    assert v.normalize_uai(raw) == "0310100R"


@pytest.mark.parametrize("raw", ["", "031010R", "03101000R", "0310100", "A310100R", "0310100RR"])
def test_uai_invalid(raw: str) -> None:
    assert v.normalize_uai(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234567890A", "1234567890A"),
        ("123456789AB", "123456789AB"),
        (" 123456789ab ", "123456789AB"),
    ],
)
def test_ine_valid(raw: str, expected: str) -> None:
    assert v.normalize_ine(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "12345ABC", "1234567890", "12345678901", "12345678ABC", "A234567890B", "1234567890É"],
)
def test_ine_invalid(raw: str) -> None:
    assert v.normalize_ine(raw) is None


@given(st.from_regex(r"[0-9]{10}[A-Z]|[0-9]{9}[A-Z]{2}", fullmatch=True))
def test_ine_shape_property(ine: str) -> None:
    assert v.normalize_ine(ine) == ine
    assert v.normalize_ine(ine.lower()) == ine


def test_dates() -> None:
    assert v.parse_date("29/02/2020") == date(2020, 2, 29)
    assert v.parse_date(" 01/09/2025 ") == date(2025, 9, 1)
    for bad in (
        "31/02/2020",
        "29/02/2021",
        "00/01/2020",
        "1/1/2020",
        "2020-01-01",
        "32/01/2020",
        "01/13/2020",
        "",
        "aa/bb/cccc",
    ):
        assert v.parse_date(bad) is None, bad


@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)))
def test_date_roundtrip(day: date) -> None:
    assert v.parse_date(v.format_date(day)) == day


def test_birth_date_plausibility() -> None:
    assert v.parse_birth_date("12/03/2018", TODAY) == date(2018, 3, 12)
    assert v.parse_birth_date("23/09/2025", TODAY) is None  # future
    assert v.parse_birth_date("22/09/1905", TODAY) == date(1905, 9, 22)  # exactly 120 years
    assert v.parse_birth_date("21/09/1905", TODAY) is None  # older than 120 years
    assert v.is_plausible_birth_date(date(1904, 3, 1), date(2024, 2, 29))  # 29 Feb reference


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("05\u00a061\u00a012\u00a034\u00a056", "+33561123456"),
        ("0590 12 34 56", "+590590123456"),  # Guadeloupe
        ("0690 12 34 56", "+590690123456"),
        ("0594 12 34 56", "+594594123456"),  # Guyane
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("0262 12 34 56", "+262262123456"),  # La Réunion
        ("0692 12 34 56", "+262692123456"),
        ("0269 61 23 45", "+262269612345"),  # Mayotte
        ("0639 12 34 56", "+262639123456"),
        ("+33 6 92 12 34 56", "+262692123456"),  # same line, typed with +33
        ("+262 692 12 34 56", "+262692123456"),
        ("+1 415 555 0100", "+14155550100"),
        ("0044 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_valid(raw: str, expected: str) -> None:
    assert v.normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "06 12 34",
        "6 12 34 56 78",
        "00 12 34 56 78",
        "+33 06 12 34 56 78",
        "061234567a",
        "+0 123 456 789",
        "+1234567",
        "+1234567890123456",
        "06 12 34 56 78 9",
        "tel: 0612345678",
        "٠٦١٢٣٤٥٦٧٨",
    ],
)
def test_phone_invalid(raw: str) -> None:
    assert v.normalize_phone(raw) is None


_SEPARATORS = st.sampled_from([" ", ".", "-", ""])


@given(
    st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True),
    _SEPARATORS,
    st.sampled_from(["0", "+33", "0033"]),
)
def test_phone_forms_agree(national: str, sep: str, prefix: str) -> None:
    """Every way of typing one French number gives one E.164 form, which is a fixed point."""
    pairs = [national[i : i + 2] for i in range(0, 10, 2)]
    expected = v.normalize_phone(national)
    assert expected is not None and expected.startswith("+")
    body = sep.join(pairs) if prefix == "0" else national[1] + sep + sep.join(pairs[1:])
    typed = body if prefix == "0" else f"{prefix} {body}"
    assert v.normalize_phone(typed) == expected
    assert v.normalize_phone(expected) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jean.dupont@orange.fr", "jean.dupont@orange.fr"),
        ("Jean.Dupont@Orange.FR", "Jean.Dupont@orange.fr"),
        (" a+b@sub.do-main.fr ", "a+b@sub.do-main.fr"),
        ("o'neill@exemple.fr", "o'neill@exemple.fr"),
    ],
)
def test_email_valid(raw: str, expected: str) -> None:
    assert v.normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a",
        "a@b",
        "a@@b.fr",
        "a@b.c",
        "a@b.123",
        "a..b@c.fr",
        ".a@c.fr",
        "a.@c.fr",
        "a@-b.fr",
        "a@b-.fr",
        "a b@c.fr",
        "é@c.fr",
        "a@c..fr",
        f"{'a' * 65}@c.fr",
    ],
)
def test_email_invalid(raw: str) -> None:
    assert v.normalize_email(raw) is None


@given(st.emails())
def test_email_idempotent(email: str) -> None:
    normalized = v.normalize_email(email)
    if normalized is not None:
        assert v.normalize_email(normalized) == normalized
        assert normalized.split("@")[1] == normalized.split("@")[1].lower()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zoé", "Zoé"),
        ("  Jean   Baptiste ", "Jean Baptiste"),
        ("D\u2019ANGELO", "D'ANGELO"),  # typographic apostrophe folded to '
        ("N\u2018DIAYE", "N'DIAYE"),
        ("Marie\u2010Ève", "Marie-Ève"),  # Unicode hyphen folded to -
        ("Zoe\u0301", "Zoé"),  # NFD to NFC
        ("LEBŒUF", "LEBŒUF"),
        ("TRẦN", "TRẦN"),
        ("Ελένη", "Ελένη"),
        ("Saint-Exupéry", "Saint-Exupéry"),
        ("J.-P.", "J.-P."),
    ],
)
def test_name_valid(raw: str, expected: str) -> None:
    assert v.normalize_name(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "12", "Jean2", "A\u200bB", "Anne\xadMarie", "-'.", "a" * 101, "X<Y"]
)
def test_name_invalid(raw: str) -> None:
    assert v.normalize_name(raw) is None


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_name_normalization_properties(raw: str) -> None:
    name = v.normalize_name(raw)
    if name is None:
        return
    assert unicodedata.is_normalized("NFC", name)
    assert name == name.strip() and "  " not in name
    assert "\u2019" not in name
    assert v.normalize_name(name) == name  # idempotent


def test_text() -> None:
    assert v.normalize_text("  CP   A ") == "CP A"
    assert v.normalize_text("École  élémentaire") == "École élémentaire"
    assert v.normalize_text("x\u202ey") is None  # bidi override
    assert v.normalize_text("x" * 300) is None
    assert v.normalize_text("") is None


def test_classes() -> None:
    assert v.parse_class("0310100R$2025$CP$C01$CP A") == ClassAssignment(
        school_jointure="0310100R", code="C01", label="CP A"
    )
    assert v.parse_class("0310100R$$$C01$ CP  A ") == ClassAssignment(
        school_jointure="0310100R", code="C01", label="CP A"
    )
    for bad in ("0310100R$C01$CP A", "0310100R$$$C01$", "$$$C01$CP", "a b$$$C01$CP", "1$2$3$4$5$6"):
        assert v.parse_class(bad) is None, bad


def test_small_fields() -> None:
    assert v.normalize_civility("M") == "M."
    assert v.normalize_civility("MME") == "Mme"
    assert v.normalize_civility("Mlle") == "Mme"
    assert v.normalize_civility("Dr") is None
    assert v.parse_flag("O") is True and v.parse_flag("n") is False and v.parse_flag("x") is None
    assert v.parse_school_year("2025-2026") == "2025-2026"
    assert v.parse_school_year("2025/2026") == "2025-2026"
    assert v.parse_school_year("2025") == "2025-2026"
    assert v.parse_school_year("2025-2027") is None
    assert v.normalize_postal_code(" 31000 ") == "31000"
    assert v.normalize_postal_code("sw1a 1aa") == "SW1A 1AA"
    assert v.normalize_postal_code("x") is None
    assert v.normalize_jointure("ONDE$12") is None  # '$' would break link values
    assert v.normalize_jointure(" 10000001 ") == "10000001"
    assert v.first_field("20000001$10$x") == "20000001"
    assert v.normalize_login("jdupont2") == "jdupont2"
    assert v.normalize_login("j dupont") is None

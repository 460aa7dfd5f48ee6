"""The AAF mapping table: one column per attribute, every contract field mapped once."""

from __future__ import annotations

from connectors.aaf.mapping import COLUMNS, OWN_RULES
from schemas.feed import Category, Guardian, Pupil, School, Staff

MODELS = {
    Category.SCHOOLS: School,
    Category.PUPILS: Pupil,
    Category.GUARDIANS: Guardian,
    Category.STAFF: Staff,
}
# Fields built by the code of build.py/attrs.py (OWN_RULES' attributes, or derived values).
BY_CODE = {
    Category.SCHOOLS: {"jointure", "siren", "held_reasons"},
    Category.PUPILS: {"jointure", "ine", "birth_date", "school_year", "held_reasons"},
    Category.GUARDIANS: {"jointure", "address"},
    Category.STAFF: {
        "jointure",
        "birth_date",
        "school_jointures",
        "is_director",
        "is_replacement",
    },
}


def test_every_field_of_the_contract_is_mapped_once() -> None:
    for category, model in MODELS.items():
        fields = [c.field for c in COLUMNS[category]]
        assert len(fields) == len(set(fields)), category
        assert set(fields).isdisjoint(BY_CODE[category]), category
        assert set(fields) | BY_CODE[category] == set(model.model_fields), category


def test_an_attribute_is_a_column_or_a_rule_of_code_never_both() -> None:
    for category, columns in COLUMNS.items():
        attributes = [c.attribute for c in columns]
        assert len(attributes) == len(set(attributes)), category
        assert set(attributes).isdisjoint(OWN_RULES[category]), category

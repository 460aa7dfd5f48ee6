"""Synthetic extract generator: determinism, naming, realism features."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from connectors.aaf import parse_file_name
from connectors.aaf.gen_people import uai
from connectors.aaf.generator import GeneratedRecord, GeneratorConfig, generate
from schemas.feed import Category, Guardian, HoldReason, Pupil, School, Staff
from sync.admission import SCHOOL_HOLD_REASONS, STAFF_HOLD_REASONS
from sync.validation import normalize_ine, normalize_uai

CONFIG = GeneratorConfig(schools=6, pupils_per_school=60, seed=3)


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedRecord]]:
    out = tmp_path_factory.mktemp("gen")
    records: list[GeneratedRecord] = []
    generate(out, CONFIG, records.append)
    return out, records


def _of(records: list[GeneratedRecord], kind: type) -> list:  # type: ignore[type-arg]
    return [r.record for r in records if isinstance(r.record, kind) and not r.delta]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    config = GeneratorConfig(schools=3, pupils_per_school=20, seed=9)
    a = generate(tmp_path / "a", config)
    b = generate(tmp_path / "b", config)
    c = generate(tmp_path / "c", GeneratorConfig(schools=3, pupils_per_school=20, seed=10))
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        assert a.files[key].read_bytes() == b.files[key].read_bytes()
    assert a.files["Eleve"].read_bytes() != c.files["Eleve"].read_bytes()


def test_names_and_counts(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    out, records = extract
    names = sorted(p.name for p in out.iterdir())
    parsed = [parse_file_name(n) for n in names]
    assert all(p.conforming and p.scope == "AC-TOULOUSE" for p in parsed)
    assert {(p.category, p.complete) for p in parsed} == {
        (Category.SCHOOLS, True),
        (Category.PUPILS, True),
        (Category.GUARDIANS, True),
        (Category.STAFF, True),
        (Category.PUPILS, False),
    }
    pupils = [r for r in records if r.category is Category.PUPILS and not r.delta]
    assert len(pupils) == CONFIG.schools * CONFIG.pupils_per_school
    assert len(_of(records, School)) == CONFIG.schools


def test_identifiers_are_valid(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    _, records = extract
    schools = _of(records, School)
    assert all(normalize_uai(s.uai) == s.uai for s in schools)
    assert len({s.uai for s in schools}) == len(schools)
    assert uai("031", 100) == "0310100R"  # key letter: digits mod 23
    ines = [p.ine for p in _of(records, Pupil) if p.ine]
    assert ines and all(normalize_ine(i) == i for i in ines)
    assert len(set(ines)) == len(ines)


def test_families(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    _, records = extract
    guardians: list[Guardian] = _of(records, Guardian)
    pupils = {p.jointure: p for p in _of(records, Pupil)}
    # siblings share guardians
    assert any(len(g.pupil_jointures) >= 2 for g in guardians)
    # a guardian with children in two schools
    assert any(
        len({pupils[p].school_jointure for p in g.pupil_jointures if p in pupils}) == 2
        for g in guardians
    )
    # separated parents: the two guardians of a pupil at different addresses
    by_id = {g.jointure: g for g in guardians}
    assert any(
        len(p.guardian_jointures) == 2
        and by_id[p.guardian_jointures[0]].address != by_id[p.guardian_jointures[1]].address
        for p in pupils.values()
    )
    # foster carers and the child-welfare service
    text = {r.jointure: r for r in records}
    assert any(g.last_name.startswith("AIDE SOCIALE") and g.civility is None for g in guardians)
    assert text  # records are reported for every request
    # names with accents, hyphens and apostrophes
    all_names = " ".join(f"{p.last_name} {p.first_name}" for p in pupils.values())
    assert re.search(r"[éèëïç]", all_names) and "-" in all_names and "'" in all_names


def test_classes_and_admission_rules(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    _, records = extract
    pupils: list[Pupil] = _of(records, Pupil)
    labels = {c.label for p in pupils for c in p.classes}
    assert any("TPS-PS" in label for label in labels) and any("CP" in label for label in labels)
    reasons = Counter(r for p in pupils for r in p.held_reasons)
    # ine_conflict is decided between records (sync.ineconflict), never set on one
    expected = (
        set(HoldReason) - SCHOOL_HOLD_REASONS - STAFF_HOLD_REASONS - {HoldReason.INE_CONFLICT}
    )
    assert set(reasons) == expected  # some pupils fail each rule
    assert sum(reasons.values()) < len(pupils) / 5  # but most are admitted
    rejected = [
        r for r in records if r.category is Category.PUPILS and r.record is None and r.op == "add"
    ]
    assert rejected and all("name_missing" in r.faults for r in rejected)


def test_staff(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    _, records = extract
    staff: list[Staff] = _of(records, Staff)
    schools = {s.jointure for s in _of(records, School)}
    directors = Counter(s.attachment_school_jointure for s in staff if s.is_director)
    assert set(directors) == schools and set(directors.values()) == {1}
    replacements = [s for s in staff if s.is_replacement]
    assert replacements and any(len(s.school_jointures) == 2 for s in replacements)
    assert any(not s.is_teacher for s in staff)
    assert any(s.academic_login for s in staff)


def test_phone_formats_vary(extract: tuple[Path, list[GeneratedRecord]]) -> None:
    out, _ = extract
    text = next(out.glob("*_PersRelEleve_*")).read_text(encoding="utf-8")
    phones = re.findall(r'name="ENTPersRelEleveTelMobile"><value>([^<]*)<', text)
    shapes = {re.sub(r"[0-9]", "9", p) for p in phones}
    assert len(shapes) >= 6
    assert any(p.startswith("+33") for p in phones) and any(p.startswith("0033") for p in phones)


def test_latin1_output(tmp_path: Path) -> None:
    result = generate(
        tmp_path, GeneratorConfig(schools=2, pupils_per_school=20, seed=1, encoding="ISO-8859-1")
    )
    data = result.files["Eleve"].read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    data.decode("latin-1")  # every byte is Latin-1
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_streaming_scale_smoke(tmp_path: Path) -> None:
    result = generate(
        tmp_path, GeneratorConfig(schools=40, pupils_per_school=100, seed=2, delta=False)
    )
    assert result.total > 8_000

"""Generated extracts through the parser: every generated record comes back as an event with the
same data (all four categories, full files and the delta's add/modify/delete)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.aaf import ScanConfig, collect_records, events, record_to_attrs, scan, scan_many
from connectors.aaf.generator import GeneratedRecord, GeneratorConfig, generate
from connectors.aaf.xmlwrite import AafWriter
from schemas.feed import (
    Category,
    ClassAssignment,
    FeedEvent,
    GuardianUpserted,
    Pupil,
    PupilUpserted,
    RecordDeleted,
    RecordRejected,
    SchoolUpserted,
    SnapshotCompleted,
    SnapshotStarted,
    StaffUpserted,
)
from sync.admission import AdmissionFacts, admission_holds


def _record_of(event: FeedEvent) -> object:
    if isinstance(event, PupilUpserted):
        return event.pupil
    if isinstance(event, GuardianUpserted):
        return event.guardian
    if isinstance(event, StaffUpserted):
        return event.staff
    if isinstance(event, SchoolUpserted):
        return event.school
    raise AssertionError(type(event))


def roundtrip(out: Path, config: GeneratorConfig) -> list[GeneratedRecord]:
    generated: list[GeneratedRecord] = []
    result = generate(out, config, generated.append)
    scan_config = ScanConfig(reference_date=config.extract_date)
    full = [scan(p, config=scan_config) for p in result.full_files]
    delta = scan(result.files["delta"], config=scan_config, base=collect_records(full))
    produced = {s.path.name: list(events(s)) for s in [*full, delta]}
    expected: dict[str, list[GeneratedRecord]] = defaultdict(list)
    for g in generated:
        expected[result.files["delta" if g.delta else g.category.value].name].append(g)
    for name, wanted in expected.items():
        evs = produced[name]
        if evs and isinstance(evs[0], SnapshotStarted):
            completed = evs[-1]
            assert isinstance(completed, SnapshotCompleted)
            # Records refused in a full extract are only said to be present (RecordRejected).
            present_only = [e for e in evs[1:-1] if isinstance(e, RecordRejected)]
            evs = [e for e in evs[1:-1] if not isinstance(e, RecordRejected)]
            assert completed.record_count == len(evs)
            refused = {g.jointure for g in wanted if g.record is None and g.op != "delete"}
            assert {e.jointure for e in present_only} <= refused, name
        assert not any(isinstance(e, RecordRejected) for e in evs), name
        published = [g for g in wanted if g.record is not None or g.op == "delete"]
        assert len(evs) == len(published), name
        for g, event in zip(published, evs, strict=True):
            if g.op == "delete":
                assert isinstance(event, RecordDeleted) and event.jointure == g.jointure
            else:
                assert _record_of(event) == g.record, (name, g.jointure, g.faults)
    # the report lists every record the generator broke on purpose
    report = {f.name: f for f in [*(s.report for s in full), delta.report]}
    for g in generated:
        if not g.faults:
            continue
        name = result.files["delta" if g.delta else g.category.value].name
        ids = {i.record_id for i in report[name].items}
        assert g.jointure in ids, (g.jointure, g.faults)
    return generated


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    schools=st.integers(1, 4),
    pupils=st.integers(8, 40),
    encoding=st.sampled_from(["UTF-8", "ISO-8859-1"]),
)
def test_generated_records_come_back(
    tmp_path_factory: pytest.TempPathFactory, seed: int, schools: int, pupils: int, encoding: str
) -> None:
    out = tmp_path_factory.mktemp("rt")
    config = GeneratorConfig(
        schools=schools, pupils_per_school=pupils, seed=seed, encoding=encoding, fault_rate=0.05
    )
    generated = roundtrip(out, config)
    categories = {g.category.value for g in generated}
    assert categories == {"EtabEducNat", "Eleve", "PersRelEleve", "PersEducNat"}


def test_larger_extract_with_delta(tmp_path: Path) -> None:
    generated = roundtrip(tmp_path, GeneratorConfig(schools=6, pupils_per_school=60, seed=11))
    ops = {(g.op, g.delta) for g in generated}
    assert {("add", False), ("add", True), ("modify", True), ("delete", True)} <= ops


def test_report_has_no_personal_data(tmp_path: Path) -> None:
    """Names, INE, birth dates, phones and emails of the extract never appear in the report."""
    generated: list[GeneratedRecord] = []
    result = generate(
        tmp_path, GeneratorConfig(schools=2, pupils_per_school=30, seed=5), generated.append
    )
    report = scan_many(list(result.files.values())).report
    text = json.dumps([i.model_dump(mode="json") for i in report.items()])
    assert report.items()
    secrets: set[str] = set()
    for g in generated:
        record = g.record
        if record is None:
            continue
        data = record.model_dump(mode="json")
        for key in (
            "last_name",
            "first_name",
            "ine",
            "email",
            "phone_mobile",
            "phone_home",
            "birth_date",
            "address",
        ):
            value = data.get(key)
            if isinstance(value, str) and len(value) > 3:
                secrets.add(value)
    leaked = [s for s in secrets if s in text]
    assert leaked == []


_NAMES = st.sampled_from(
    ["MARTIN", "D'ANGELO", "LE GOFF", "LEBŒUF", "Zoé", "Jean-Baptiste", "Ἀλέξανδρος"]
)
_JOINTURES = st.from_regex(r"[0-9]{3,9}", fullmatch=True)
_SCHOOL = "0310100R"
_CLASSES = st.builds(
    ClassAssignment,
    school_jointure=st.just(_SCHOOL),
    code=st.from_regex(r"C[0-9]{2}", fullmatch=True),
    label=st.sampled_from(["CP A", "TPS-PS", "CE2-CM1 B", "ULIS ÉCOLE"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pupil=st.builds(
        Pupil,
        jointure=_JOINTURES,
        ine=st.none() | st.from_regex(r"[0-9]{10}[A-Z]|[0-9]{9}[A-Z]{2}", fullmatch=True),
        last_name=_NAMES,
        first_name=_NAMES,
        other_first_names=st.lists(_NAMES, max_size=2, unique=True).map(tuple),
        birth_name=st.none() | _NAMES,
        civility=st.sampled_from([None, "M.", "Mme"]),
        birth_date=st.none() | st.dates(min_value=date(2012, 1, 1), max_value=date(2023, 12, 31)),
        email=st.sampled_from([None, "a.b@exemple.fr", "x+y@sub.exemple.fr"]),
        school_jointure=st.just(_SCHOOL),
        classes=st.lists(_CLASSES, max_size=2, unique=True).map(tuple),
        level=st.sampled_from([None, "CP", "TPS"]),
        cycle=st.sampled_from([None, "CYCLE 2"]),
        guardian_jointures=st.lists(_JOINTURES, max_size=3, unique=True).map(tuple),
        admitted_definitively=st.sampled_from([None, True, False]),
        school_year=st.sampled_from(["2025-2026", "2024-2025"]),
        held_reasons=st.just(()),
    )
)
def test_any_pupil_record_survives_the_file(
    tmp_path_factory: pytest.TempPathFactory, pupil: Pupil
) -> None:
    """record → AAF attributes → XML file → parser → the same record (holds recomputed)."""
    folder = tmp_path_factory.mktemp("one")
    path = folder / "ENT_AC-TEST_Complet_20251001_Eleve_0000.xml"
    with AafWriter(path, Category.PUPILS) as writer:
        writer.write("add", pupil.jointure, record_to_attrs(pupil))
    file_scan = scan(path, config=ScanConfig(reference_date=date(2025, 10, 1)))
    (event,) = [e for e in events(file_scan) if isinstance(e, PupilUpserted)]
    holds = admission_holds(
        AdmissionFacts(
            ine="valid" if pupil.ine else "missing",
            admitted_definitively=pupil.admitted_definitively,
            class_count=len(pupil.classes),
            school_year=pupil.school_year,
            current_school_year="2025-2026",
            parental_authority_count=len(pupil.guardian_jointures),
        )
    )
    assert event.pupil == pupil.model_copy(update={"held_reasons": holds})

"""AAF parser: the four categories, modify/delete, markers, report, change detection, limits."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connectors.aaf import (
    FileRejected,
    ScanConfig,
    Severity,
    collect_records,
    events,
    events_many,
    keys_digest,
    scan,
    scan_many,
)
from connectors.aaf.xmlwrite import request_xml
from schemas.feed import (
    Category,
    FeedEvent,
    HoldReason,
    Pupil,
    PupilUpserted,
    RecordDeleted,
    RecordRejected,
    SnapshotCompleted,
    SnapshotStarted,
    payload_version,
    record_key,
)

CONFIG = ScanConfig(reference_date=date(2025, 10, 1))
Req = tuple[str, str, dict[str, list[str]] | None]


def write(
    folder: Path,
    name: str,
    category: Category,
    requests: list[Req],
    encoding: str = "UTF-8",
) -> Path:
    body = "".join(request_xml(op, category, ident, attrs) for op, ident, attrs in requests)
    text = f'<?xml version="1.0" encoding="{encoding}"?>\n<ficAlimMENESR>\n{body}</ficAlimMENESR>\n'
    path = folder / name
    path.write_bytes(text.encode(encoding, errors="xmlcharrefreplace"))
    return path


def pupil(jointure: str, **extra: list[str]) -> dict[str, list[str]]:
    attrs = {
        "ENTPersonJointure": [jointure],
        "ENTEleveINE": ["1234567890A"],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Léa"],
        "ENTPersonDateNaissance": ["12/03/2018"],
        "ENTPersonStructRattach": ["0310100R"],
        "ENTPersonClasses": ["0310100R$2025$CP$C01$CP A"],
        "ENTEleveNiveau": ["CP"],
        "ENTEleveAutoriteParentale": ["20000001$10", "20000002$20"],
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v}


PUPILS = "ENT_AC-TEST_Complet_20251001_Eleve_0000.xml"
PUPILS_DELTA = "ENT_AC-TEST_Delta_20251002_Eleve_0000.xml"


def records(evs: list[FeedEvent]) -> list[FeedEvent]:
    return [e for e in evs if not isinstance(e, SnapshotStarted | SnapshotCompleted)]


def test_pupils_full_file_events(tmp_path: Path) -> None:
    path = write(
        tmp_path, PUPILS, Category.PUPILS, [("add", "1", pupil("1")), ("add", "2", pupil("2"))]
    )
    file_scan = scan(path, config=CONFIG)
    evs = list(events(file_scan))
    assert isinstance(evs[0], SnapshotStarted) and isinstance(evs[-1], SnapshotCompleted)
    assert evs[0].key == evs[-1].key == "snapshot:Eleve:AC-TEST"
    assert evs[0].snapshot_id == file_scan.digest == evs[-1].snapshot_id
    body = records(evs)
    assert [e.key for e in body] == ["pupil:1", "pupil:2"]
    assert evs[-1].record_count == 2
    assert evs[-1].record_keys_digest == keys_digest(["pupil:2", "pupil:1"])
    first = body[0]
    assert isinstance(first, PupilUpserted)
    assert first.version == payload_version(first.pupil)
    assert first.source.line == 3 and first.source.record_index == 0
    assert first.source.complete and first.source.extract_date == date(2025, 10, 1)
    p = first.pupil
    assert (p.ine, p.last_name, p.first_name, p.birth_date) == (
        "1234567890A",
        "MARTIN",
        "Léa",
        date(2018, 3, 12),
    )
    assert p.guardian_jointures == ("20000001", "20000002")
    assert p.classes[0].code == "C01" and p.classes[0].label == "CP A"
    assert p.school_year == "2025-2026" and p.held_reasons == ()
    # versions are stable: a second pass gives the same events
    assert list(events(file_scan)) == evs


def test_held_and_rejected_pupils_are_reported(tmp_path: Path) -> None:
    reqs: list[Req] = [
        ("add", "1", pupil("1", ENTEleveINE=[])),
        ("add", "2", pupil("2", ENTEleveINE=["12AB"])),
        ("add", "3", pupil("3", ENTEleveAdmissionDefinitive=["N"])),
        ("add", "4", pupil("4", ENTPersonClasses=[])),
        ("add", "5", pupil("5", ENTEleveDateSortieStructRattach=["01/09/2025"])),
        ("add", "6", pupil("6", ENTEleveAutoriteParentale=[])),
        ("add", "7", pupil("7", ENTPersonNom=[])),
        ("add", "8", pupil("8", ENTPersonPrenom=["R2D2"])),
        ("add", "9", pupil("9", ENTEleveAnneeScolaire=["2024-2025"])),
    ]
    file_scan = scan(write(tmp_path, PUPILS, Category.PUPILS, reqs), config=CONFIG)
    report = file_scan.report
    assert (report.records, report.published, report.held, report.rejected) == (9, 7, 7, 2)
    held = {(i.record_id, i.rule) for i in report.items if i.severity is Severity.HELD}
    assert held == {
        ("1", "ine_missing"),
        ("2", "ine_invalid"),
        ("3", "not_admitted_definitively"),
        ("4", "no_class"),
        ("5", "not_current_school_year"),
        ("6", "no_parental_authority"),
        ("9", "not_current_school_year"),
    }
    rejected = {
        (i.record_id, i.rule, i.field) for i in report.items if i.severity is Severity.REJECTED
    }
    assert rejected == {
        ("7", "required_missing", "ENTPersonNom"),
        ("8", "name_invalid", "ENTPersonPrenom"),
    }
    assert all(i.line for i in report.items)
    pupils = {
        e.pupil.jointure: e.pupil
        for e in records(list(events(file_scan)))
        if isinstance(e, PupilUpserted)
    }
    assert set(pupils) == {"1", "2", "3", "4", "5", "6", "9"}
    assert pupils["2"].ine is None and pupils["2"].held_reasons == (HoldReason.INE_INVALID,)
    assert pupils["3"].admitted_definitively is False
    assert pupils["5"].school_year is None
    assert pupils["9"].school_year == "2024-2025"


def test_a_rejected_record_of_a_complete_file_is_published_as_present_only(
    tmp_path: Path,
) -> None:
    reqs: list[Req] = [
        ("add", "1", pupil("1")),
        ("add", "7", pupil("7", ENTPersonNom=[])),
        ("add", "8", pupil("8", ENTPersonPrenom=["R2D2"])),
        ("add", "", pupil("", ENTPersonNom=[])),  # no jointure: nobody to keep present
    ]
    file_scan = scan(write(tmp_path, PUPILS, Category.PUPILS, reqs), config=CONFIG)
    assert file_scan.report.rejected == 3 and file_scan.rejected_count == 2
    evs = list(events(file_scan))
    assert len(evs) == file_scan.event_count
    body = records(evs)
    assert [(type(e).__name__, e.key) for e in body] == [
        ("PupilUpserted", "pupil:1"),
        ("RecordRejected", "pupil:7"),
        ("RecordRejected", "pupil:8"),
    ]
    rejected = body[1]
    assert isinstance(rejected, RecordRejected)
    assert rejected.rules == ("required_missing",) and rejected.source.complete
    assert rejected.source.snapshot_id == file_scan.digest
    assert "MARTIN" not in rejected.model_dump_json()  # codes only, no values
    # Snapshot counts stay those of the records taken; a second pass yields the same events.
    assert isinstance(evs[-1], SnapshotCompleted) and evs[-1].record_count == 1
    assert list(events(file_scan)) == evs
    # A delta's rejected record says nothing about presence: not published at all.
    delta = scan(write(tmp_path, PUPILS_DELTA, Category.PUPILS, reqs), config=CONFIG)
    assert delta.rejected_count == 0
    assert [e.key for e in events(delta)] == ["pupil:1"]


def test_optional_fields_dropped_with_warnings(tmp_path: Path) -> None:
    attrs = pupil(
        "1",
        ENTPersonDateNaissance=["31/02/2018"],
        ENTPersonMail=["not-an-email"],
        ENTPersonCivilite=["Dr"],
        ENTPersonClasses=["0310100R$2025$CP$C01$CP A", "broken"],
        ENTPersonAutresPrenoms=["Zoé", "Zoé", "B4d"],
    )
    file_scan = scan(write(tmp_path, PUPILS, Category.PUPILS, [("add", "1", attrs)]), config=CONFIG)
    rules = {(i.field, i.rule) for i in file_scan.report.items}
    assert rules == {
        ("ENTPersonDateNaissance", "date_invalid"),
        ("ENTPersonMail", "email_invalid"),
        ("ENTPersonCivilite", "civility_invalid"),
        ("ENTPersonClasses", "class_invalid"),
        ("ENTPersonAutresPrenoms", "name_invalid"),
    }
    assert file_scan.report.warnings == 5 and file_scan.report.published == 1
    (event,) = records(list(events(file_scan)))
    assert isinstance(event, PupilUpserted)
    p = event.pupil
    assert p.birth_date is None and p.email is None and p.civility is None
    assert len(p.classes) == 1 and p.other_first_names == ("Zoé",)


def test_implausible_birth_date(tmp_path: Path) -> None:
    reqs: list[Req] = [
        ("add", "1", pupil("1", ENTPersonDateNaissance=["01/01/2030"])),
        ("add", "2", pupil("2", ENTPersonDateNaissance=["01/01/1890"])),
    ]
    file_scan = scan(write(tmp_path, PUPILS, Category.PUPILS, reqs), config=CONFIG)
    assert [i.rule for i in file_scan.report.items] == ["birth_date_implausible"] * 2


def test_jointure_checks(tmp_path: Path) -> None:
    reqs: list[Req] = [
        ("add", "1", pupil("2")),  # identifier and ENTPersonJointure disagree
        ("add", "3", pupil("ONDE$3")),
        ("add", "4", {k: v for k, v in pupil("4").items() if k != "ENTPersonJointure"}),
    ]
    file_scan = scan(write(tmp_path, PUPILS, Category.PUPILS, reqs), config=CONFIG)
    assert [i.rule for i in file_scan.report.items] == ["jointure_mismatch", "jointure_invalid"]
    # The record naming "2" is refused, but a full extract names that pupil: present only.
    assert [(type(e).__name__, e.key) for e in records(list(events(file_scan)))] == [
        ("RecordRejected", "pupil:2"),
        ("PupilUpserted", "pupil:4"),
    ]


def test_schools(tmp_path: Path) -> None:
    good = {
        "ENTStructureJointure": ["0310100R"],
        "ENTStructureUAI": ["0310100R"],
        "ENTStructureNomCourant": ["École  élémentaire Jean Jaurès"],
        "ENTEcoleCommune": ["Toulouse"],
        "ENTEcoleCirconscription": ["Toulouse Nord"],
        "ENTServAcAcademie": ["TOULOUSE"],
        "ENTStructureSIREN": ["213 105 554"],
    }
    bad = dict(good, ENTStructureJointure=["0310101S"], ENTStructureUAI=["031010"])
    name = "ENT_AC-TEST_Complet_20251001_EtabEducNat_0000.xml"
    file_scan = scan(
        write(
            tmp_path, name, Category.SCHOOLS, [("add", "0310100R", good), ("add", "0310101S", bad)]
        ),
        config=CONFIG,
    )
    assert [(i.record_id, i.rule) for i in file_scan.report.items] == [("0310101S", "uai_invalid")]
    (event,) = records(list(events(file_scan)))
    assert event.key == "school:0310100R"
    assert event.school.name == "École élémentaire Jean Jaurès"  # type: ignore[union-attr]
    assert event.school.circonscription == "Toulouse Nord"  # type: ignore[union-attr]
    assert event.school.siren == "213105554"  # type: ignore[union-attr]
    assert event.school.held_reasons == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("siren", "reason"),
    [(None, HoldReason.SIREN_MISSING), ("21310555", HoldReason.SIREN_INVALID)],
)
def test_school_without_a_valid_siren_is_held(
    tmp_path: Path, siren: str | None, reason: HoldReason
) -> None:
    attrs = {
        "ENTStructureJointure": ["0310100R"],
        "ENTStructureUAI": ["0310100R"],
        "ENTStructureNomCourant": ["École Jean Jaurès"],
        **({"ENTStructureSIREN": [siren]} if siren else {}),
    }
    name = "ENT_AC-TEST_Complet_20251001_EtabEducNat_0000.xml"
    file_scan = scan(
        write(tmp_path, name, Category.SCHOOLS, [("add", "0310100R", attrs)]), config=CONFIG
    )
    (item,) = file_scan.report.items
    assert (item.record_id, item.field, item.rule, item.severity) == (
        "0310100R",
        "ENTStructureSIREN",
        reason.value,
        "held",
    )
    assert file_scan.report.held == 1 and file_scan.report.published == 1
    (event,) = records(list(events(file_scan)))
    assert event.school.held_reasons == (reason,)  # type: ignore[union-attr]


def test_guardians(tmp_path: Path) -> None:
    attrs = {
        "ENTPersonJointure": ["20000001"],
        "ENTPersonNom": ["D\u2019ANGELO"],
        "ENTPersonPrenom": ["Marie-Ève"],
        "ENTPersonCivilite": ["MME"],
        "ENTPersonTelPerso": ["05.61.12.34.56"],
        "ENTPersRelEleveTelMobile": ["+33 (0)6 12 34 56 78"],
        "ENTPersRelEleveTelPro": ["12 34"],
        "ENTPersonMail": ["Marie.Dangelo@Orange.FR"],
        "ENTPersonAdresse": ["12 rue des Lilas$Bât. B$$"],
        "ENTPersonCodePostal": ["31000"],
        "ENTPersonVille": ["Toulouse"],
        "ENTPersonPays": ["FRANCE"],
        "ENTPersRelEleveEleve": ["10000001", "10000002$x"],
    }
    name = "ENT_AC-TEST_Complet_20251001_PersRelEleve_0000.xml"
    file_scan = scan(
        write(tmp_path, name, Category.GUARDIANS, [("add", "20000001", attrs)]), config=CONFIG
    )
    assert [(i.field, i.rule) for i in file_scan.report.items] == [
        ("ENTPersRelEleveTelPro", "phone_invalid")
    ]
    (event,) = records(list(events(file_scan)))
    g = event.guardian  # type: ignore[union-attr]
    assert (g.last_name, g.first_name, g.civility) == ("D'ANGELO", "Marie-Ève", "Mme")
    assert (g.phone_home, g.phone_mobile, g.phone_work) == ("+33561123456", "+33612345678", None)
    assert g.email == "Marie.Dangelo@orange.fr"
    assert g.address == "12 rue des Lilas, Bât. B"
    assert g.pupil_jointures == ("10000001", "10000002")


STAFF = "ENT_AC-TEST_Complet_20251001_PersEducNat_0000.xml"


def staff(jointure: str, functions: list[str], **extra: list[str]) -> dict[str, list[str]]:
    attrs = {
        "ENTPersonJointure": [jointure],
        "ENTPersonNom": ["FABRE"],
        "ENTPersonPrenom": ["Hélène"],
        "ENTPersonStructRattach": ["0310100R"],
        "ENTPersonFonctions": functions,
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v}


def test_staff_classification(tmp_path: Path) -> None:
    ens = "0310100R$ENS$ENSEIGNEMENT$E0010$PROFESSEUR DES ECOLES"
    reqs: list[Req] = [
        ("add", "1", staff("1", [ens], ENTPersonLogin=["hfabre"])),
        ("add", "2", staff("2", [ens, "0310100R$DIR$DIRECTION$D0010$DIRECTEUR D'ECOLE"])),
        ("add", "3", staff("3", [ens], ENTEnsFonctionDir=["0310101S"])),
        ("add", "4", staff("4", ["0310100R$AEH$ACCOMPAGNEMENT$D0021$AESH"])),
        ("add", "5", staff("5", [ens], ENTPersonCategorieEnseignant=["N"])),
        ("add", "6", staff("6", ["0310100R$AEH$X$Y$Z"], ENTPersonCategorieEnseignant=["O"])),
        (
            "add",
            "7",
            staff(
                "7",
                [
                    "0310100R$ENS$ENSEIGNEMENT$E0020$TITULAIRE REMPLAÇANT",
                    "0310102T$ENS$ENSEIGNEMENT$E0020$TITULAIRE REMPLAÇANT",
                ],
            ),
        ),
        ("add", "8", staff("8", ["0310100R$ENS$ENSEIGNEMENT$E0030$PES"])),
        ("add", "9", staff("9", [ens], ENTEnsRemplacant=["O"])),
        ("add", "10", staff("10", [ens, "broken"], ENTEnsRemplacant=["N"])),
    ]
    file_scan = scan(write(tmp_path, STAFF, Category.STAFF, reqs), config=CONFIG)
    out = {e.staff.jointure: e.staff for e in records(list(events(file_scan)))}  # type: ignore[union-attr]
    flags = {j: (s.is_teacher, s.is_director, s.is_replacement) for j, s in out.items()}
    assert flags == {
        "1": (True, False, False),
        "2": (True, True, False),
        "3": (True, True, False),
        "4": (False, False, False),
        "5": (False, False, False),
        "6": (True, False, False),
        "7": (True, False, True),
        "8": (True, False, True),
        "9": (True, False, True),
        "10": (True, False, False),
    }
    assert out["1"].academic_login == "hfabre" and out["2"].academic_login is None
    assert out["3"].school_jointures == ("0310100R", "0310101S")
    assert out["7"].attachment_school_jointure == "0310100R"
    assert out["7"].school_jointures == ("0310100R", "0310102T")
    assert [(i.record_id, i.rule) for i in file_scan.report.items] == [("10", "function_invalid")]


def test_delete_and_modify(tmp_path: Path) -> None:
    full = scan(
        write(
            tmp_path,
            PUPILS,
            Category.PUPILS,
            [("add", "1", pupil("1", ENTEleveAdmissionDefinitive=["N"])), ("add", "2", pupil("2"))],
        ),
        config=CONFIG,
    )
    base = collect_records([full])
    assert set(base) == {"pupil:1", "pupil:2"}
    delta_reqs: list[Req] = [
        (
            "modify",
            "1",
            {"ENTEleveAdmissionDefinitive": ["O"], "ENTPersonClasses": ["0310100R$$$C02$CE1 B"]},
        ),
        ("modify", "2", {"ENTEleveAutoriteParentale": []}),  # <value/>: attribute cleared
        ("modify", "99", {"ENTPersonNom": ["X"]}),  # unknown to the base
        ("delete", "2", None),
    ]
    path = write(tmp_path, PUPILS_DELTA, Category.PUPILS, delta_reqs)
    without_base = scan(path, config=CONFIG)
    assert without_base.report.rejected == 3
    assert {i.rule for i in without_base.report.items} == {"modify_unknown_record"}
    delta = scan(path, config=CONFIG, base=base)
    assert (delta.report.published, delta.report.rejected, delta.report.deletes) == (3, 1, 1)
    evs = list(events(delta))
    assert not any(isinstance(e, SnapshotStarted | SnapshotCompleted) for e in evs)
    p1, p2, gone = evs
    assert isinstance(p1, PupilUpserted) and isinstance(p2, PupilUpserted)
    assert p1.pupil.admitted_definitively is True and p1.pupil.held_reasons == ()
    assert p1.pupil.classes[0].code == "C02"
    assert p1.pupil.last_name == "MARTIN"  # untouched attributes come from the base
    assert p2.pupil.guardian_jointures == ()
    assert p2.pupil.held_reasons == (HoldReason.NO_PARENTAL_AUTHORITY,)
    assert isinstance(gone, RecordDeleted)
    assert (gone.key, gone.kind, gone.jointure) == (record_key("pupil", "2"), "pupil", "2")
    assert gone.version == list(events(delta))[2].version  # stable digest of the content


def test_base_changing_between_passes_is_detected(tmp_path: Path) -> None:
    base: dict[str, Pupil] = {"pupil:1": Pupil(jointure="1", last_name="A", first_name="B")}
    path = write(
        tmp_path, PUPILS_DELTA, Category.PUPILS, [("modify", "1", {"ENTEleveNiveau": ["CP"]})]
    )
    delta = scan(path, config=CONFIG, base=base)
    base["pupil:1"] = Pupil(jointure="1", last_name="C", first_name="D")
    with pytest.raises(FileRejected, match="records differ"):
        list(events(delta))


def test_file_changed_after_scan_refused_before_any_event(tmp_path: Path) -> None:
    path = write(tmp_path, PUPILS, Category.PUPILS, [("add", "1", pupil("1"))])
    file_scan = scan(path, config=CONFIG)
    path.write_bytes(path.read_bytes().replace(b"MARTIN", b"MARTIM"))
    produced: list[FeedEvent] = []
    with pytest.raises(FileRejected, match="changed since it was scanned"):
        for event in events(file_scan):
            produced.append(event)
    assert produced == []


def test_category_cross_checks(tmp_path: Path) -> None:
    name = "ENT_AC-TEST_Complet_20251001_PersEducNat_0000.xml"
    path = write(tmp_path, name, Category.PUPILS, [("add", "1", pupil("1"))])
    with pytest.raises(FileRejected, match="Eleve record in a PersEducNat file"):
        scan(path, config=CONFIG)
    # a school written with categoriePersonne
    text = (
        (tmp_path / name).read_text().replace("<value>Eleve</value>", "<value>EtabEducNat</value>")
    )
    (tmp_path / "ENT_X_Delta_20251001_EtabEducNat_0000.xml").write_text(text)
    with pytest.raises(FileRejected, match="categoriePersonne for EtabEducNat"):
        scan(tmp_path / "ENT_X_Delta_20251001_EtabEducNat_0000.xml", config=CONFIG)


def test_unconventional_name_uses_content(tmp_path: Path) -> None:
    path = write(tmp_path, "export-eleves.xml", Category.PUPILS, [("add", "1", pupil("1"))])
    file_scan = scan(path, config=CONFIG)
    assert file_scan.category is Category.PUPILS and not file_scan.complete
    assert file_scan.report.category is Category.PUPILS
    assert [e.key for e in events(file_scan)] == ["pupil:1"]  # a delta: no snapshot markers
    mixed = write(
        tmp_path,
        "mixed.xml",
        Category.PUPILS,
        [("add", "1", pupil("1"))],
    )
    mixed.write_text(
        mixed.read_text().replace(
            "</ficAlimMENESR>",
            request_xml("add", Category.STAFF, "2", staff("2", [])) + "</ficAlimMENESR>",
        )
    )
    with pytest.raises(FileRejected, match="PersEducNat record in a Eleve file"):
        scan(mixed, config=CONFIG)
    with pytest.raises(FileRejected, match="no record and no category"):
        scan(write(tmp_path, "empty.xml", Category.PUPILS, []), config=CONFIG)


def test_empty_complete_file(tmp_path: Path) -> None:
    path = write(tmp_path, PUPILS, Category.PUPILS, [])
    with pytest.raises(FileRejected, match="complete extract without any record"):
        scan(path, config=CONFIG)
    file_scan = scan(path, config=ScanConfig(allow_empty_complete=True))
    evs = list(events(file_scan))
    assert [type(e) for e in evs] == [SnapshotStarted, SnapshotCompleted]
    assert isinstance(evs[1], SnapshotCompleted) and evs[1].record_count == 0


def test_duplicates_in_complete_file_are_warned(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PUPILS,
        Category.PUPILS,
        [("add", "1", pupil("1")), ("add", "1", pupil("1", ENTEleveNiveau=["CE1"]))],
    )
    file_scan = scan(path, config=CONFIG)
    assert [(i.rule, i.line) for i in file_scan.report.items] == [("duplicate_record", 3)]
    evs = list(events(file_scan))
    completed = evs[-1]
    assert isinstance(completed, SnapshotCompleted)
    assert completed.record_count == 2 and completed.record_keys_digest == keys_digest(["pupil:1"])


def test_iso_8859_1_file(tmp_path: Path) -> None:
    attrs = pupil("1", ENTPersonNom=["LEBŒUF D\u2019ARC"], ENTPersonPrenom=["Zoé"])
    utf8 = scan(write(tmp_path, PUPILS, Category.PUPILS, [("add", "1", attrs)]), config=CONFIG)
    latin_name = "ENT_AC-TEST_Complet_20251001_Eleve_0001.xml"
    latin_path = write(tmp_path, latin_name, Category.PUPILS, [("add", "1", attrs)], "ISO-8859-1")
    assert b"Zo\xe9" in latin_path.read_bytes() and b"&#338;" in latin_path.read_bytes()
    latin = scan(latin_path, config=CONFIG)
    a = [e for e in events(utf8) if isinstance(e, PupilUpserted)]
    b = [e for e in events(latin) if isinstance(e, PupilUpserted)]
    assert a[0].pupil == b[0].pupil and a[0].pupil.last_name == "LEBŒUF D'ARC"


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (ScanConfig(max_records=1), "more than 1 records"),
        (ScanConfig(max_values_per_attr=1), "more than 1 values"),
        (ScanConfig(max_value_chars=5), "value longer than 5 chars"),
        (ScanConfig(max_attrs_per_record=3), "more than 3 attributes"),
        (ScanConfig(max_file_bytes=100), "file larger than 100 bytes"),
    ],
)
def test_limits(tmp_path: Path, config: ScanConfig, reason: str) -> None:
    path = write(
        tmp_path, PUPILS, Category.PUPILS, [("add", "1", pupil("1")), ("add", "2", pupil("2"))]
    )
    with pytest.raises(FileRejected, match=reason):
        scan(path, config=config)


def test_report_items_are_capped(tmp_path: Path) -> None:
    reqs: list[Req] = [("add", str(i), pupil(str(i), ENTEleveINE=[])) for i in range(1, 6)]
    file_scan = scan(
        write(tmp_path, PUPILS, Category.PUPILS, reqs), config=ScanConfig(max_report_items=2)
    )
    assert len(file_scan.report.items) == 2 and file_scan.report.items_dropped == 3
    assert file_scan.report.held == 5


def test_multi_part_snapshot(tmp_path: Path) -> None:
    part0 = write(tmp_path, PUPILS, Category.PUPILS, [("add", "1", pupil("1"))])
    part1 = write(
        tmp_path, PUPILS.replace("_0000", "_0001"), Category.PUPILS, [("add", "2", pupil("2"))]
    )
    result = scan_many([part1, part0], config=CONFIG)
    evs = list(events_many(result.scans))
    started, completed = evs[0], evs[-1]
    assert isinstance(started, SnapshotStarted) and isinstance(completed, SnapshotCompleted)
    assert sum(isinstance(e, SnapshotStarted | SnapshotCompleted) for e in evs) == 2
    assert [e.key for e in records(evs)] == ["pupil:1", "pupil:2"]
    assert completed.record_count == 2
    assert completed.record_keys_digest == keys_digest(["pupil:1", "pupil:2"])
    assert (
        started.snapshot_id
        == completed.snapshot_id
        not in (result.scans[0].digest, result.scans[1].digest)
    )
    with pytest.raises(FileRejected, match=r"not 0\.\.n"):
        list(events_many([result.scans[0]]))  # part 1 alone

"""Desired LDAP entries per entity kind."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.entities import GroupSpec
from schemas.feed import ClassAssignment, Guardian, Pupil, School, Staff
from sync import dit, entries, ids

BASE = "dc=ent,dc=example"
NS = "ns"
S1 = f"ou=S1,ou=structures,{BASE}"


def _pupil(**kwargs: object) -> Pupil:
    data: dict[str, object] = {
        "jointure": "P1",
        "ine": "1234567890A",
        "first_name": "Léa",
        "last_name": "Martin",
        "birth_date": date(2019, 3, 4),
        "school_jointure": "S1",
        "classes": (ClassAssignment(school_jointure="S1", code="CP-A", label="CP A"),),
        "level": "CP",
        "cycle": "2",
        "guardian_jointures": ("G2", "G1"),
    }
    data.update(kwargs)
    return Pupil.model_validate(data)


def _pupil_entry(pupil: Pupil, state: str = "active") -> entries.Entry:
    return entries.pupil_entry(
        "el-x",
        pupil,
        login="lea.martin",
        account_state=state,  # type: ignore[arg-type]
        disappeared_at=datetime(2026, 9, 2, 8, 30, tzinfo=UTC),
        parents=(ids.guardian_id(NS, "G1"), ids.guardian_id(NS, "G2")),
        base_dn=BASE,
        namespace=NS,
    )


def _assert_clean(entry: entries.Entry) -> None:
    for name, values in entry.items():
        assert values, name
        assert all(values), name
        assert list(values) == sorted(set(values)), name


def test_pupil_entry() -> None:
    entry = _pupil_entry(_pupil(other_first_names=("Anne",), birth_name="Durand", email="l@x.fr"))
    _assert_clean(entry)
    assert entry["objectClass"] == tuple(
        sorted(
            (
                "top",
                "person",
                "organizationalPerson",
                "inetOrgPerson",
                "ENTPerson",
                "ENTEleve",
                "entsyncOperational",
            )
        )
    )
    assert entry["uid"] == entry["entsyncId"] == ("el-x",)
    assert entry["cn"] == ("Léa Martin",)
    assert entry["sn"] == ("Martin",) and entry["givenName"] == ("Léa",)
    assert entry["ENTPersonLogin"] == ("lea.martin",)
    assert entry["ENTPersonJointure"] == ("ONDE$P1",)
    assert entry["ENTPersonDateNaissance"] == ("04/03/2019",)
    assert entry["ENTPersonStructRattach"] == (S1,)
    assert entry["ENTPersonProfils"] == ("National_1",)
    assert entry["ENTEleveINE"] == ("1234567890A",)
    assert entry["ENTEleveClasses"] == (f"{S1}$CP-A",)
    assert entry["ENTEleveNivFormation"] == entry["ENTEleveMEF"] == ("CP",)
    assert entry["ENTEleveLibelleMEF"] == ("COURS PREPARATOIRE",)
    assert entry["ENTEleveStatutEleve"] == ("SCOLAIRE",)
    assert entry["ENTEleveFiliere"] == ("PREMIER DEGRE",)
    assert entry["ENTEleveMajeur"] == ("N",)
    assert entry["entsyncCycle"] == ("2",)
    assert entry["ENTEleveParents"] == tuple(
        sorted(dit.people_dn(ids.guardian_id(NS, g), BASE) for g in ("G1", "G2"))
    )
    assert entry["ENTPersonAutresPrenoms"] == ("Anne",)
    assert entry["ENTPersonNomPatro"] == ("Durand",)
    assert entry["mail"] == ("l@x.fr",)
    assert entry["entsyncKind"] == ("pupil",)
    assert entry["entsyncAccountState"] == ("active",)
    assert "entsyncDisappearedAt" not in entry


def test_absent_attributes_are_omitted() -> None:
    entry = _pupil_entry(
        _pupil(
            ine=None, birth_date=None, school_jointure=None, classes=(), level=None, cycle=None
        ).model_copy(update={"guardian_jointures": ()})
    )
    for name in (
        "ENTEleveINE",
        "ENTPersonDateNaissance",
        "ENTPersonStructRattach",
        "entsyncCycle",
        "ENTEleveParents",
        "mail",
        "personalTitle",
        "ENTPersonAutresPrenoms",
    ):
        assert name not in entry
    # What SDET makes mandatory is there all the same, with its documented stand-ins.
    assert entry["ENTEleveClasses"] == ("$",)
    assert entry["ENTEleveNivFormation"] == entry["ENTEleveMEF"] == entry["ENTEleveLibelleMEF"]
    assert entry["ENTEleveMEF"] == ("1D",)


def test_pupil_without_class_keeps_its_school_in_the_mandatory_classes() -> None:
    entry = _pupil_entry(_pupil(classes=()))
    assert entry["ENTEleveClasses"] == (f"{S1}$",)


def test_pupil_of_age_on_the_first_of_september_of_its_school_year() -> None:
    def majeur(birth: date, year: str | None) -> tuple[str, ...]:
        return _pupil_entry(_pupil(birth_date=birth, school_year=year))["ENTEleveMajeur"]

    assert majeur(date(2008, 9, 1), "2026-2027") == ("O",)  # 18 that very day
    assert majeur(date(2008, 9, 2), "2026-2027") == ("N",)
    assert majeur(date(2000, 1, 1), None) == ("N",)  # no school year: not judged of age


def test_unknown_level_keeps_its_code_as_label() -> None:
    entry = _pupil_entry(_pupil(level="ULIS"))
    assert entry["ENTEleveMEF"] == entry["ENTEleveLibelleMEF"] == ("ULIS",)


def test_jointures_name_their_source() -> None:
    sources = entries.JointureSources(onde="AC-TOULOUSE", staff="AAF-TLS")
    pupil = entries.pupil_entry(
        "el-x",
        _pupil(),
        login="l",
        account_state="active",
        parents=(),
        base_dn=BASE,
        namespace=NS,
        sources=sources,
    )
    assert pupil["ENTPersonJointure"] == ("AC-TOULOUSE$P1",)
    staff = entries.staff_entry(
        "pe-x", _staff(), login="p", account_state="active", base_dn=BASE, sources=sources
    )
    assert staff["ENTPersonJointure"] == ("AAF-TLS$T1",)
    assert entries.source_key("AC-TOULOUSE$P1") == "P1" and entries.source_key("P1") == "P1"


def test_predeleted_pupil_keeps_a_classes_value_naming_nothing() -> None:
    entry = entries.predeleted(_pupil_entry(_pupil()), datetime(2027, 1, 1, tzinfo=UTC))
    assert entry["ENTEleveClasses"] == ("$",)
    assert "ENTPersonStructRattach" not in entry and "ENTEleveParents" not in entry


def test_disappeared_pupil_carries_the_date() -> None:
    entry = _pupil_entry(_pupil(), state="disappeared")
    assert entry["entsyncAccountState"] == ("disappeared",)
    assert entry["entsyncDisappearedAt"] == ("20260902083000Z",)


def _guardian(**kwargs: object) -> Guardian:
    data: dict[str, object] = {
        "jointure": "G1",
        "first_name": "Anne",
        "last_name": "Martin",
        "civility": "Mme",
        "email": "a@x.fr",
        "phone_home": "+33140000000",
        "phone_mobile": "+33612345678",
        "phone_work": "+33150000000",
        "address": "3 rue des Lilas\nBât. $B",
        "postal_code": "75001",
        "town": "Paris",
    }
    data.update(kwargs)
    return Guardian.model_validate(data)


def test_guardian_entry_with_children() -> None:
    entry = entries.guardian_entry(
        "re-x",
        _guardian(),
        login="anne.martin",
        children=["el-b", "el-a"],
        account_state="active",
        base_dn=BASE,
    )
    _assert_clean(entry)
    assert "ENTAuxPersRelEleve" in entry["objectClass"]
    assert entry["ENTAuxPersRelEleveEleve"] == (
        dit.people_dn("el-a", BASE),
        dit.people_dn("el-b", BASE),
    )
    assert entry["ENTPersonProfils"] == ("National_2",)
    assert entry["mobile"] == entry["ENTPersonMobileSMS"] == ("+33612345678",)
    assert entry["homePhone"] == ("+33140000000",)
    assert entry["telephoneNumber"] == ("+33150000000",)
    assert entry["postalAddress"] == ("3 rue des Lilas$Bât. \\24B",)
    assert entry["postalCode"] == ("75001",) and entry["l"] == ("Paris",)
    assert entry["personalTitle"] == ("Mme",)


def test_guardian_without_children_has_no_aux_class() -> None:
    entry = entries.guardian_entry(
        "re-x",
        _guardian(phone_mobile=None, address=None),
        login="anne.martin",
        children=[],
        account_state="active",
        base_dn=BASE,
    )
    assert "ENTAuxPersRelEleve" not in entry["objectClass"]
    assert "ENTAuxPersRelEleveEleve" not in entry
    assert "ENTPersonMobileSMS" not in entry and "postalAddress" not in entry


def _staff(**kwargs: object) -> Staff:
    data: dict[str, object] = {
        "jointure": "T1",
        "first_name": "Paul",
        "last_name": "Petit",
        "attachment_school_jointure": "S1",
        "school_jointures": ("S2",),
        "functions": ("ENS$ENSEIGNEMENT",),
        "is_teacher": True,
    }
    data.update(kwargs)
    return Staff.model_validate(data)


def _staff_entry(staff: Staff) -> entries.Entry:
    return entries.staff_entry("pe-x", staff, login="ppetit", account_state="active", base_dn=BASE)


def test_teacher_entry() -> None:
    entry = _staff_entry(_staff())
    _assert_clean(entry)
    assert "ENTAuxEnseignant" in entry["objectClass"]
    assert "ENTAuxNonEnsEtab" not in entry["objectClass"]
    assert entry["ENTPersonProfils"] == ("National_3",)
    assert entry["ENTPersonStructRattach"] == (S1,)
    assert entry["entsyncSchool"] == (S1, f"ou=S2,ou=structures,{BASE}")
    assert entry["ENTPersonFonctions"] == ("ENS$ENSEIGNEMENT",)
    assert entry["ENTPersonLogin"] == ("ppetit",)


@pytest.mark.parametrize(
    ("teacher", "director", "profiles"),
    [
        (True, False, ("National_3",)),
        (True, True, ("National_3", "National_4")),
        (False, True, ("National_4",)),
        (False, False, ("National_6",)),
    ],
)
def test_staff_profiles(teacher: bool, director: bool, profiles: tuple[str, ...]) -> None:
    entry = _staff_entry(_staff(is_teacher=teacher, is_director=director))
    assert entry["ENTPersonProfils"] == profiles
    aux = "ENTAuxEnseignant" if teacher else "ENTAuxNonEnsEtab"
    assert aux in entry["objectClass"]
    assert ("entsyncSchool" in entry) is teacher


def test_school_entry() -> None:
    entry = entries.school_entry(
        "st-x",
        School(
            jointure="S1", uai="0750001A", name="École du Parc", commune="Paris", siren="213105554"
        ),
    )
    _assert_clean(entry)
    assert entry["objectClass"] == tuple(
        sorted(("top", "organizationalUnit", "ENTStructure", "entsyncOperational"))
    )
    assert entry["ou"] == ("S1",)
    assert entry["ENTStructureJointure"] == ("ONDE$S1",)
    assert entry["ENTStructureSIREN"] == ("213105554",)
    assert entry["ENTStructureUAI"] == ("0750001A",)
    assert entry["ENTStructureNomCourant"] == ("École du Parc",)
    assert entry["l"] == ("Paris",)


def test_class_group_entry() -> None:
    spec = GroupSpec(school_jointure="S1", profile="pupils", class_code="CP-A", class_label="CP A")
    entry = entries.group_entry("gr-x", spec, ["el-b", "el-a"], base_dn=BASE)
    _assert_clean(entry)
    assert "ENTClasse" in entry["objectClass"] and "groupOfNames" in entry["objectClass"]
    assert entry["cn"] == ("S1$CP-A$pupils",)
    assert entry["member"] == (dit.people_dn("el-a", BASE), dit.people_dn("el-b", BASE))
    assert entry["entsyncSchool"] == (S1,)
    assert entry["entsyncGroupProfile"] == ("pupils",)
    assert entry["entsyncClassCode"] == ("CP-A",)
    assert entry["description"] == ("pupils of class CP A, school S1",)
    assert entry["entsyncGroupName"] == ("CP A",)


def test_school_group_entry() -> None:
    spec = GroupSpec(school_jointure="S1", profile="teachers")
    entry = entries.group_entry("gr-x", spec, ["pe-a"], base_dn=BASE)
    assert "ENTGroupe" in entry["objectClass"] and "ENTClasse" not in entry["objectClass"]
    assert entry["cn"] == ("S1$teachers",)
    assert "entsyncClassCode" not in entry and "entsyncGroupName" not in entry


def test_group_needs_a_member() -> None:
    with pytest.raises(ValueError) as error:
        entries.group_entry(
            "gr-x", GroupSpec(school_jointure="S1", profile="staff"), [], base_dn=BASE
        )
    assert "S1" not in str(error.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("1 rue A", "1 rue A"),
        ("1 rue A\r\n75001 Paris", "1 rue A$75001 Paris"),
        ("a\\b $c", "a\\5Cb \\24c"),
        ("\n\n", None),
    ],
)
def test_postal_address(raw: str | None, expected: str | None) -> None:
    assert entries.postal_address(raw) == expected


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(first=names, last=names, other=st.lists(st.text(max_size=5), max_size=3))
def test_no_empty_values_ever(first: str, last: str, other: list[str]) -> None:
    entry = _pupil_entry(_pupil(first_name=first, last_name=last, other_first_names=tuple(other)))
    _assert_clean(entry)


def test_nameless_person_still_has_cn_and_sn() -> None:
    entry = _pupil_entry(_pupil(first_name=" ", last_name=""))
    assert entry["cn"] == entry["sn"] == ("lea.martin",)
    assert "givenName" not in entry


@given(st.text(alphabet='aZ09._- ,+"<>;=\\#\x00é', min_size=1, max_size=12))
def test_dit_escapes_rdn_values_as_ldap3_does(value: str) -> None:
    from ldap3.utils.dn import escape_rdn

    assert dit.escape_rdn(value) == escape_rdn(value)

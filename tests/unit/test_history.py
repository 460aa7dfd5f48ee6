"""Does the topics' history explain the directory (sync.history): the rules one by one, on the
pure prediction of a history whose beginning is lost, and as properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync import absence, dit, ids, lifecycle
from sync.history import HistoryGaps, is_managed, set_aside, unexplained
from sync.replay import EntryChange, ExternalInput, Prediction, diff_directories, predict
from tests.unit.core_factories import BASE, NS
from tests.unit.lifecycle_helpers import CTX
from tests.unit.test_replay import scenario, timeline

PEOPLE = f"ou=people,{BASE}"


def run(inputs: list[ExternalInput]) -> Prediction:
    return predict(inputs, ctx=CTX, guard=absence.Guard(), policy=lifecycle.Policy())


def managed(entity_id: str, kind: str | None = "pupil") -> dict[str, tuple[str, ...]]:
    attrs = {"objectClass": ("ENTEleve",), "sn": ("Secret-Name",), "entsyncId": (entity_id,)}
    return {**attrs, "entsyncKind": (kind,)} if kind else attrs


# ------------------------------------------------------------------------------------ the rules


def test_rule_1_only_entries_with_entsync_operational_attributes_are_judged() -> None:
    assert is_managed({"entsyncId": ("el-a",)}) and is_managed({"ENTSYNCKIND": ("group",)})
    assert not is_managed({"cn": ("by another tool",)}) and not is_managed({"entsyncId": ()})
    directory = {f"uid=x,{PEOPLE}": {"cn": ("x",)}, f"uid=el-a,{PEOPLE}": managed("el-a")}
    gaps = unexplained(directory, set())
    assert [e.entity_id for e in gaps.entries] == ["el-a"]


def test_rule_2_an_entry_the_history_wrote_is_explained_whatever_its_case() -> None:
    dn = f"uid=el-a,{PEOPLE}"
    assert unexplained({dn: managed("el-a")}, {dn.lower()}).complete
    assert unexplained({dn.upper(): managed("el-a")}, {dn.lower()}).complete
    assert not unexplained({dn: managed("el-a")}, {f"uid=el-b,{PEOPLE}"}).complete


def test_the_whole_history_explains_the_directory_it_predicts() -> None:
    first, second = scenario()
    full = run(timeline([*first, *second]))
    assert full.directory and unexplained(full.directory, full.written).complete
    # The pupil who left (disappeared) was written by the first extract: explained too.
    states = {a.get("entsyncAccountState") for a in full.directory.values()}
    assert ("disappeared",) in states


def test_a_lost_beginning_leaves_entries_unexplained_and_no_deletion_reported() -> None:
    """The broker lost the first extract; the second (one pupil) is all the topics hold."""
    first, second = scenario()
    live = run(timeline([*first, *second])).directory
    left = run(timeline(second))
    gaps = unexplained(live, left.written)
    changes = diff_directories(left.directory, live, base_dn=BASE)
    assert any(c.action == "delete" for c in changes)  # what a dry run said before
    kept = set_aside(changes, gaps)
    assert [c for c in kept if c.action == "delete"] == []
    assert kept == [c for c in changes if c.dn.lower() not in gaps.dns]
    by_kind = gaps.by_kind()
    assert by_kind.get("pupil") == 1 and by_kind.get("guardian") == 1  # the leaver, G1
    # Rule 2: the history knows the guardian (the remaining pupil's link) but holds no record
    # of hers: her entry was never written from it, so it is unexplained.
    g1 = ids.entity_id(NS, "guardian", "G1")
    assert g1 in left.world.entities and g1 in {e.entity_id for e in gaps.entries}
    assert dit.people_dn(g1, BASE).lower() in gaps.dns


def test_rule_4_the_description_counts_per_kind_and_names_ids_never_values() -> None:
    directory = {f"uid=el-{i},{PEOPLE}": managed(f"el-{i}") for i in range(7)}
    directory[f"uid=re-a,{PEOPLE}"] = managed("re-a", "guardian")
    gaps = unexplained(directory, set())
    assert not gaps.complete and gaps.by_kind() == {"guardian": 1, "pupil": 7}
    text = gaps.describe()
    assert "8 managed entries" in text and "guardian 1, pupil 7" in text
    # A few ids, each kind in turn: the guardian is named although pupils are more.
    assert "e.g. re-a, el-0, el-1, el-2, el-3, ...): " in text and "Secret" not in text
    assert text.endswith("nothing is predicted for them, no deletion")
    assert gaps.describe("not rebuilt").endswith("; not rebuilt")
    assert gaps.to_json() == {
        "total": 8,
        "kinds": {"guardian": 1, "pupil": 7},
        "ids": ["re-a", "el-0", "el-1", "el-2", "el-3"],
    }
    one = unexplained({f"uid=el-0,{PEOPLE}": managed("el-0")}, set()).describe()
    assert "1 managed entry " in one and "..." not in one
    assert HistoryGaps().complete and HistoryGaps().to_json()["total"] == 0


def test_kind_and_id_when_the_entry_lacks_one() -> None:
    el = ids.entity_id(NS, "pupil", "jointure:X")
    school = f"ou=0750001A,ou=structures,{BASE}"
    directory = {
        f"uid={el},{PEOPLE}": managed(el, None),
        f"uid=zz,{PEOPLE}": managed("zz", None),
        school: {"entsyncKind": ("School",)},
    }
    gaps = unexplained(directory, set())
    assert {(e.entity_id, e.kind) for e in gaps.entries} == {
        (el, "pupil"),
        ("zz", "unknown"),
        ("0750001A", "school"),
    }


# ----------------------------------------------------------------------------------- properties

DNS = [f"uid=el-{i},{PEOPLE}" for i in range(6)] + [f"cn=g{i},ou=groups,{BASE}" for i in range(3)]


@st.composite
def directories(draw: st.DrawFn) -> tuple[dict[str, dict[str, tuple[str, ...]]], set[str]]:
    chosen = draw(st.lists(st.sampled_from(DNS), unique=True))
    directory = {
        dn: managed(dn.split(",")[0][4:]) if draw(st.booleans()) else {"cn": ("other",)}
        for dn in chosen
    }
    written = {dn.lower() for dn in draw(st.lists(st.sampled_from(DNS), unique=True))}
    return directory, written


@given(directories(), st.lists(st.sampled_from(DNS), unique=True))
def test_every_managed_entry_is_either_explained_or_a_gap(
    case: tuple[dict[str, dict[str, tuple[str, ...]]], set[str]], more: list[str]
) -> None:
    directory, written = case
    gaps = unexplained(directory, written)
    for dn, attrs in directory.items():
        assert (dn.lower() in gaps.dns) == (is_managed(attrs) and dn.lower() not in written)
    assert sum(gaps.by_kind().values()) == len(gaps.entries)
    assert len(set(gaps.sample())) == min(5, len(gaps.entries))
    assert list(gaps.entries) == sorted(gaps.entries, key=lambda e: e.dn.lower())
    # More history never leaves more entries unexplained.
    wider = unexplained(directory, written | {dn.lower() for dn in more})
    assert wider.dns <= gaps.dns


@given(directories(), st.lists(st.sampled_from(["add", "modify", "delete"]), min_size=9))
def test_set_aside_drops_exactly_the_changes_about_gaps(
    case: tuple[dict[str, dict[str, tuple[str, ...]]], set[str]], actions: list[str]
) -> None:
    directory, written = case
    gaps = unexplained(directory, written)
    changes = [EntryChange(dn, a, (), ()) for dn, a in zip(DNS, actions, strict=False)]  # type: ignore[arg-type]
    kept = set_aside(changes, gaps)
    assert kept == [c for c in changes if c.dn.lower() not in gaps.dns]
    assert not {c.dn.lower() for c in kept} & gaps.dns


@given(st.integers(min_value=0, max_value=30))
def test_whatever_beginning_is_lost_no_deletion_of_an_unexplained_entry(lost: int) -> None:
    first, second = scenario()
    inputs = timeline([*first, *second])
    live = run(inputs).directory
    left = run(inputs[lost:])
    gaps = unexplained(live, left.written)
    kept = set_aside(diff_directories(left.directory, live, base_dn=BASE), gaps)
    assert all(c.dn.lower() in left.written for c in kept if c.action == "delete")
    if lost == 0:
        assert gaps.complete and kept == []

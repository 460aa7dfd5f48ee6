"""The parent bridge's pure rules: identity resolution, proposals, attempts, rate limits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.bridge import ChildFacts, GuardianFacts, Snapshot
from sync import bridge as rules

NOW = datetime(2024, 9, 10, tzinfo=UTC)


BORN = date(1980, 1, 2)


def guardian(gid: str, last: str = "Martin", first: str = "Claire", **kw: object) -> GuardianFacts:
    kw.setdefault("birth_date", BORN)
    return GuardianFacts(
        guardian_id=gid,
        dn=f"uid={gid}",
        jointure=f"J-{gid}",
        last_name=last,
        first_name=first,
        **kw,  # type: ignore[arg-type]
    )


def fc(family: str, given_name: str, born: date | None = BORN) -> rules.Identity:
    return rules.Identity(
        "franceconnect", "d", family_name=family, given_name=given_name, birth_date=born
    )


def resolve(
    identity: rules.Identity,
    *gs: GuardianFacts,
    bridged: dict[str, str] | None = None,
    existing: str | None = None,
) -> rules.Resolution:
    return rules.resolve(
        identity,
        existing_bridge=existing,
        guardians={g.guardian_id: g for g in gs},
        bridged=bridged or {},
    )


def test_existing_bridge_wins_and_joins_new_records_by_source_key() -> None:
    ident = rules.Identity("educonnect", "d", source_keys=frozenset({"J-a", "J-b"}))
    result = resolve(ident, guardian("a"), guardian("b"), bridged={"a": "br-1"}, existing="br-1")
    assert result == rules.Existing("br-1", ("b",))


def test_source_keys_link_every_record_of_the_person() -> None:
    ident = rules.Identity("educonnect", "d", source_keys=frozenset({"J-a", "J-b"}))
    assert resolve(ident, guardian("a"), guardian("b"), guardian("c")) == rules.Matched(
        ("a", "b"), "source-keys"
    )


def test_educonnect_never_falls_back_to_names() -> None:
    ident = rules.Identity("educonnect", "d", family_name="Martin", given_name="Claire")
    assert resolve(ident, guardian("a")) == rules.Unresolved("no-candidate")


@pytest.mark.parametrize(
    ("family", "given_name", "expected"),
    [
        ("MARTIN", "Claire Anne", True),
        ("martin", "CLAIRE", True),
        ("Martín", "Claire", True),
        ("Martin", "Anne Claire", False),
        ("Martins", "Claire", False),
        ("Martin", "Clair", False),
    ],
)
def test_franceconnect_name_rule(family: str, given_name: str, expected: bool) -> None:
    result = resolve(fc(family, given_name), guardian("a"))
    assert (result == rules.Matched(("a",), "identity-claims")) is expected


def test_compound_names_fold_hyphens_and_apostrophes() -> None:
    g = guardian("a", last="Lefèvre-D'Arc", first="Jean-Pierre")
    assert resolve(fc("LEFEVRE D ARC", "Jean Pierre Marie"), g) == rules.Matched(
        ("a",), "identity-claims"
    )


def test_the_birth_date_must_agree() -> None:
    g = guardian("a")
    assert isinstance(resolve(fc("Martin", "Claire", date(1981, 1, 2)), g), rules.Unresolved)
    assert isinstance(resolve(fc("Martin", "Claire", None), g), rules.Unresolved)
    assert isinstance(resolve(fc("Martin", "Claire", BORN), g), rules.Matched)


def test_a_record_without_birth_date_matches_on_names_only_if_the_academy_allows_it() -> None:
    """ONDE guardian records have no birth date: names alone would let a namesake in."""
    g = guardian("a", birth_date=None)
    ident = fc("Martin", "Claire")
    assert resolve(ident, g) == rules.Unresolved("no-candidate")
    allowed = rules.resolve(
        ident, existing_bridge=None, guardians={"a": g}, bridged={}, name_only_claims=True
    )
    assert allowed == rules.Matched(("a",), "identity-claims")


def test_several_candidates_no_link() -> None:
    result = resolve(fc("Martin", "Claire"), guardian("a"), guardian("b"))
    assert result == rules.Unresolved("several-candidates", ("a", "b"))


def test_one_free_among_two_matching_is_still_no_link() -> None:
    result = resolve(fc("Martin", "Claire"), guardian("a"), guardian("b"), bridged={"a": "br"})
    assert result == rules.Unresolved("several-candidates", ("a", "b"))


def test_manual_accounts_never_bridged() -> None:
    result = resolve(fc("Martin", "Claire"), guardian("m", manual=True))
    assert result == rules.Unresolved("manual-account", ("m",))
    ident = rules.Identity("educonnect", "d", source_keys=frozenset({"J-m"}))
    assert resolve(ident, guardian("m", manual=True)) == rules.Unresolved("manual-account", ("m",))


names = st.text(alphabet="abcdeéèAB -'", min_size=1, max_size=8)


@given(st.lists(st.tuples(names, names), min_size=0, max_size=5), names, names)
def test_identity_claims_link_only_a_unique_match(
    people: list[tuple[str, str]], family: str, given_name: str
) -> None:
    gs = [guardian(f"g{i}", last=last, first=first) for i, (last, first) in enumerate(people)]
    result = resolve(fc(family, given_name), *gs)
    if isinstance(result, rules.Matched):
        assert len(result.guardian_ids) == 1
        chosen = next(g for g in gs if g.guardian_id == result.guardian_ids[0])
        others = [g for g in gs if g is not chosen]
        assert rules.normalize_name(chosen.last_name) == rules.normalize_name(family)
        assert not any(
            rules.normalize_name(o.last_name) == rules.normalize_name(family)
            and rules.normalize_name(given_name)[: len(rules.normalize_name(o.first_name))]
            == rules.normalize_name(o.first_name)
            and rules.normalize_name(o.first_name)
            for o in others
        )


def snapshot() -> Snapshot:
    return Snapshot(
        run_at=NOW,
        guardians={
            "a": guardian("a", child_ids=("c1", "c2", "c3")),
            "b": guardian("b", child_ids=("c2",)),
        },
        children={
            "c1": ChildFacts(
                child_id="c1", first_name="Léa", school_name="A", birth_date=date(2017, 3, 14)
            ),
            "c2": ChildFacts(
                child_id="c2", first_name="Hugo", school_name="A", birth_date=date(2015, 9, 2)
            ),
            "c3": ChildFacts(child_id="c3", first_name="Sans", school_name="A", birth_date=None),
        },
    )


def test_proposals_from_snapshot_without_unknown_birth_dates_and_deduplicated() -> None:
    found = rules.proposals(["a", "b"], snapshot(), {})
    assert [(p.first_name, p.status) for p in found] == [("Hugo", "pending"), ("Léa", "pending")]
    assert rules.proposals(["a"], None, {}) == ()


def test_recorded_decisions_show_in_proposals() -> None:
    att = {"c1": rules.Attachment("c1", "a", "blocked", NOW)}
    statuses = {p.child_id: p.status for p in rules.proposals(["a"], snapshot(), att)}
    assert statuses == {"c1": "blocked", "c2": "pending"}


@given(st.sampled_from(["pending", "attached", "blocked"]), st.dates(), st.dates() | st.none())
def test_only_pending_children_change_and_only_an_exact_date_attaches(
    status: rules.Status, given_date: date, expected: date | None
) -> None:
    outcome = rules.decide_attempt(status, given_date, expected)
    if status != "pending":
        assert outcome == "unchanged"
    else:
        assert outcome == ("attached" if given_date == expected else "blocked")


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_birth_date_formats_roundtrip(day: date) -> None:
    assert rules.parse_birth_date(day.strftime("%d/%m/%Y")) == day
    assert rules.parse_birth_date(day.isoformat()) == day
    assert rules.parse_birth_date(f" {day.day}.{day.month}.{day.year} ") == day


@pytest.mark.parametrize("text", ["", "31/02/2017", "14/03/17", "hier", "2017/03/14x"])
def test_not_a_date(text: str) -> None:
    assert rules.parse_birth_date(text) is None


@given(st.integers(1, 10), st.lists(st.floats(0, 100), max_size=30))
def test_rate_limit_never_allows_more_than_the_limit_per_window(
    limit: int, offsets: list[float]
) -> None:
    window: rules.Window | None = None
    allowed_at: list[float] = []
    for now in sorted(offsets):
        ok, window = rules.hit(window, now, limit=limit, seconds=1000)
        if ok:
            allowed_at.append(now)
    assert len(allowed_at) == min(limit, len(offsets))


def test_rate_window_resets() -> None:
    ok, w = rules.hit(None, 0, limit=1, seconds=10)
    assert (
        ok
        and not rules.hit(w, 5, limit=1, seconds=10)[0]
        and rules.hit(w, 10, limit=1, seconds=10)[0]
    )


def test_guardian_attributes_and_subject_digest() -> None:
    attrs = rules.guardian_attributes(
        bridge_id="br-1",
        origin="FranceConnect",
        attached_dns=["b", "a"],
        blocked_dns=[],
        ent_login_disabled=True,
    )
    assert rules.present(attrs) == {
        "entsyncBridgeId": ("br-1",),
        "entsyncAccountOrigin": ("FranceConnect",),
        "entsyncAttachedChild": ("a", "b"),
        "entsyncEntLoginDisabled": ("TRUE",),
    }
    assert rules.subject_digest(b"k", "educonnect", "s") != rules.subject_digest(
        b"k", "franceconnect", "s"
    )
    assert "s" not in rules.bridge_id_for(b"k", "educonnect", "s")[3:]


guardian_records = st.lists(
    st.tuples(
        names,
        names,
        st.sampled_from(["J-1", "J-2", "J-3"]),
        st.booleans(),
        st.sampled_from([BORN, None]),
    ),
    max_size=8,
)


@given(
    guardian_records,
    st.sampled_from(["franceconnect", "educonnect"]),
    names,
    names,
    st.frozensets(st.sampled_from(["J-1", "J-2", "J-4"]), max_size=2),
    st.sets(st.integers(0, 7), max_size=3),
    st.booleans(),
)
def test_resolving_among_the_indexed_candidates_decides_as_among_all(
    records: list[tuple[str, str, str, bool, date | None]],
    provider: str,
    family: str,
    given_name: str,
    keys: frozenset[str],
    bridged_rows: set[int],
    name_only: bool,
) -> None:
    gs = {
        f"g{i}": guardian(
            f"g{i}", last=last, first=first, manual=manual, birth_date=born
        ).model_copy(update={"jointure": jointure})
        for i, (last, first, jointure, manual, born) in enumerate(records)
    }
    bridged = {f"g{i}": f"br-{i}" for i in bridged_rows if f"g{i}" in gs}
    identity = rules.Identity(
        provider,  # type: ignore[arg-type]
        "d",
        source_keys=keys,
        family_name=family,
        given_name=given_name,
        birth_date=BORN,
    )
    index = rules.CandidateIndex.of(gs)
    candidates = index.candidates(identity)
    for existing in (None, "br-x"):
        everyone = rules.resolve(
            identity,
            existing_bridge=existing,
            guardians=gs,
            bridged=bridged,
            name_only_claims=name_only,
        )
        indexed = rules.resolve(
            identity,
            existing_bridge=existing,
            guardians={g: gs[g] for g in candidates},
            bridged={g: b for g, b in bridged.items() if g in candidates},
            name_only_claims=name_only,
        )
        assert indexed == everyone

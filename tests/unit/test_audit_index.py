"""What the audit store indexes of an audit message: contract events, future types, garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause, GroupSpec
from sync import dit, equality
from sync.auditindex import index_message, join_schools, school_of_dn, utc_text

AT = datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))


def changed(dn: str, kind: str = "group", action: str = "modify") -> DirectoryChanged:
    return DirectoryChanged(
        event_id="ev-1",
        action=action,  # type: ignore[arg-type]
        entity_id="g-abc",
        entity_kind=kind,  # type: ignore[arg-type]
        dn=dn,
        changes=(AttributeChange(name="member", before_digest=None, after_digest="d" * 64),),
        cause=Cause(topic="entsync.feed.v1", partition=1, offset=9, rule="link.member", at=AT),
    )


def test_a_directory_change_is_indexed_and_kept_raw() -> None:
    dn = dit.group_dn(GroupSpec(school_jointure="0310100R", profile="pupils", class_code="CP"))
    raw = changed(dn).model_dump_json().encode()
    indexed = index_message(raw)
    assert indexed.status == "event" and indexed.event_id == "ev-1"
    assert (indexed.type, indexed.action, indexed.entity_kind) == (
        "directory.changed",
        "modify",
        "group",
    )
    assert indexed.schools == "|0310100R|" and indexed.rule == "link.member"
    assert indexed.cause_at == "2026-03-01T06:30:00.000000+00:00"
    assert indexed.raw is not None and DirectoryChanged.model_validate_json(indexed.raw) == changed(
        dn
    )


def test_schools_come_from_school_and_group_dns_never_from_people() -> None:
    assert school_of_dn(dit.school_dn("0310100R")) == "0310100R"
    assert school_of_dn(dit.gar_group_dn("0820100N")) == "0820100N"
    assert school_of_dn(dit.people_dn("p-xyz")) is None
    assert school_of_dn("cn=x,ou=manual-groups,dc=ent,dc=example") is None
    assert school_of_dn("not a dn") is None


# ldap3 escapes a lone space badly (a backslash too many); jointures never have edge spaces.
jointures = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s)


@given(jointures, st.sampled_from(["pupils", "guardians", "gar"]))
def test_the_school_of_any_group_dn_round_trips(jointure: str, profile: str) -> None:
    spec = GroupSpec(school_jointure=jointure, profile=profile)  # type: ignore[arg-type]
    # A group name spells ``＄`` as the directory reads it (``$``): equal as the directory says.
    assert equality.equal(school_of_dn(dit.group_dn(spec)) or "", jointure)
    assert school_of_dn(dit.school_dn(jointure)) == jointure


def test_a_future_type_is_stored_raw_with_its_common_fields() -> None:
    raw = json.dumps(
        {
            "type": "lifecycle.held",
            "event_id": "h-1",
            "entity_id": "p-1",
            "entity_kind": "pupil",
            "dn": dit.people_dn("p-1"),
            "school_uais": ["0310100R", "0820100N"],
            "cause": {"rule": "lifecycle.hold", "at": "2026-03-01T08:30:00Z"},
            "extra": {"nested": [1, 2]},
        }
    ).encode()
    indexed = index_message(raw)
    assert indexed.status == "event" and indexed.type == "lifecycle.held"
    assert (indexed.event_id, indexed.entity_kind, indexed.rule) == (
        "h-1",
        "pupil",
        "lifecycle.hold",
    )
    assert indexed.schools == "|0310100R|0820100N|"
    assert indexed.cause_at == "2026-03-01T08:30:00.000000+00:00"
    assert indexed.raw is not None and json.loads(indexed.raw)["extra"] == {"nested": [1, 2]}
    # Without an event id, identical bytes get the same id (a replay is still a duplicate).
    no_id = index_message(b'{"type": "x.y"}')
    assert no_id.event_id == index_message(b'{"type": "x.y"}').event_id
    assert no_id.event_id.startswith("raw:") and no_id.cause_at is None


def test_garbage_and_broken_contracts_keep_a_digest_only() -> None:
    broken = json.loads(changed(dit.school_dn("0310100R")).model_dump_json())
    broken["surname"] = "Dupont"  # not in the contract: never stored
    for value in (None, b"\xff\xfe", b"[1, 2]", b"not json", json.dumps(broken).encode()):
        indexed = index_message(value)
        assert indexed.status == "invalid" and indexed.raw is None
        assert indexed.event_id == f"invalid:{indexed.raw_digest}"
    assert index_message(json.dumps(broken).encode()).type == "directory.changed"


def test_times_and_school_lists_have_one_text_form() -> None:
    assert utc_text(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000+00:00"
    assert utc_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) < utc_text(
        datetime(2026, 1, 2, 3, 4, 6)
    )
    assert join_schools([]) is None and join_schools(["b", "a", "a", "x|y"]) == "|a|b|"


@given(st.text(alphabet="ouciden=,\\ #$%abc", max_size=40))
def test_school_of_dn_skips_only_what_it_would_not_parse(dn: str) -> None:
    """A DN whose first attribute is neither ou nor cn is no school's, without being parsed."""
    from sync.auditindex import _school_of_dn

    assert school_of_dn(dn) == _school_of_dn(dn)

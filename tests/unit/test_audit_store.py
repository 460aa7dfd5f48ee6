"""The audit store's contract, on SQLite here; the integration tests run the same functions on a
real PostgreSQL server by overriding the ``store_url`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.auditstore import AuditStore, Search, StoreUrlError, open_store, redact
from connectors.auditstore.retention import prune
from connectors.auditstore.schema import incoming
from schemas.audit import AttributeChange, DirectoryChanged
from schemas.entities import Cause, GroupSpec
from sync import dit
from sync.auditchain import Incoming, OffsetRegressed
from sync.auditindex import utc_text

TOPIC = "entsync.audit.v1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = utc_text(T0 + timedelta(days=400))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return str(tmp_path / "audit.sqlite3")


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[AuditStore]:
    opened = open_store(store_url, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def event(
    n: int, dn: str, action: str = "modify", kind: str = "group", day: int = 0, entity: str = ""
) -> bytes:
    return (
        DirectoryChanged(
            event_id=f"ev-{n}",
            action=action,  # type: ignore[arg-type]
            entity_id=entity or f"{kind[0]}-{n}",
            entity_kind=kind,  # type: ignore[arg-type]
            dn=dn,
            changes=(AttributeChange(name="member", before_digest=None, after_digest="0" * 64),),
            cause=Cause(topic="entsync.feed.v1", offset=n, rule="r", at=T0 + timedelta(days=day)),
        )
        .model_dump_json()
        .encode()
    )


def message(partition: int, offset: int, value: bytes | None, day: int = 0) -> Incoming:
    ms = int((T0 + timedelta(days=day)).timestamp() * 1000)
    return incoming(TOPIC, partition, offset, ms, value)


def school_group(school: str) -> str:
    return dit.group_dn(GroupSpec(school_jointure=school, profile="pupils"))


def load(store: AuditStore) -> None:
    """Partition 0: offsets 0-3 (days 0-3); partition 1: offsets 0, 1 and 4 (a hole)."""
    store.append(
        TOPIC,
        0,
        [message(0, i, event(i, school_group("0310100R"), day=i), day=i) for i in range(4)],
        NOW,
    )
    store.append(
        TOPIC,
        1,
        [
            message(1, 0, event(10, dit.people_dn("p-1"), "add", "pupil", entity="p-1")),
            message(1, 1, event(11, dit.school_dn("0820100N"), "add", "school", day=2), day=2),
            message(
                1, 4, event(12, dit.people_dn("p-1"), "delete", "pupil", day=5, entity="p-1"), day=5
            ),
        ],
        NOW,
    )


def findings(store: AuditStore) -> list[tuple[int, str, int | None]]:
    return [(i.partition, f.kind, f.offset) for i, c in store.verify() for f in c.findings]


def test_each_event_is_stored_once_and_the_position_survives_reopening(
    store: AuditStore, store_url: str, tmp_path: Path
) -> None:
    load(store)
    # The topic replayed: the same events at new offsets are accounted for, not stored again.
    again = store.append(TOPIC, 0, [message(0, 4, event(1, school_group("0310100R")))], NOW)
    assert again.duplicates == 1
    store.append(TOPIC, 0, [message(0, 5, None), message(0, 6, b"{oops")], NOW)
    assert store.counts() == {"event": 7, "duplicate": 1, "invalid": 2}
    with open_store(store_url, tmp_path) as reopened:
        assert reopened.head(TOPIC, 0).next_offset == 7
        assert reopened.head(TOPIC, 1).next_offset == 5
        assert reopened.head(TOPIC, 2).next_offset == 0
        with pytest.raises(OffsetRegressed):
            reopened.append(TOPIC, 1, [message(1, 3, event(99, "cn=x"))], NOW)
    assert [(g.partition, g.start, g.end) for g in store.gaps()] == [(1, 2, 4)]
    assert findings(store) == [(1, "gap", 2)]


def test_a_batch_is_stored_whole_or_not_at_all(store: AuditStore) -> None:
    load(store)
    head = store.head(TOPIC, 0)
    # Someone wrote offset 5 behind the consumer's back: the batch 4-5 fails as a whole.
    store.backend.execute(
        "INSERT INTO audit_record (msg_topic, msg_partition, msg_offset, status, event_id,"
        " raw_digest, prev_hash, hash) VALUES (?, 0, 5, 'invalid', 'x', 'x', 'x', 'x')",
        (TOPIC,),
    )
    batch = [message(0, 4, event(20, "cn=a")), message(0, 5, event(21, "cn=b"))]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.append(TOPIC, 0, batch, NOW)
    assert store.head(TOPIC, 0) == head
    assert store.history("cn=a") == []


def test_history_search_and_export(store: AuditStore) -> None:
    load(store)
    person = store.history(dit.people_dn("p-1").upper())
    assert [r["action"] for r in person] == ["add", "delete"]
    assert [r["event_id"] for r in store.history("p-1")] == ["ev-10", "ev-12"]
    toulouse = store.search(Search(school="0310100R"))
    assert [r["msg_offset"] for r in toulouse] == [0, 1, 2, 3]
    assert store.search(Search(school="0310100")) == []
    assert store.search(Search(school="%")) == []
    window = store.search(
        Search(since=utc_text(T0 + timedelta(days=1)), until=utc_text(T0 + timedelta(days=3)))
    )
    assert sorted(r["event_id"] for r in window) == ["ev-1", "ev-11", "ev-2"]
    assert [r["event_id"] for r in store.search(Search(action="delete"))] == ["ev-12"]
    assert len(store.search(Search(entity_kind="group", limit=2))) == 2
    exported = list(store.export())
    assert len(exported) == 7 and [r.time for r in exported] == sorted(r.time for r in exported)
    assert all(DirectoryChanged.model_validate_json(r["raw"]) for r in exported)


def test_verify_names_a_changed_record(store: AuditStore) -> None:
    load(store)
    store.backend.execute(
        "UPDATE audit_record SET action = 'delete' WHERE msg_partition = 0 AND msg_offset = 2"
    )
    assert findings(store) == [(0, "changed", 2), (1, "gap", 2)]


def test_verify_finds_removed_records_and_heads(store: AuditStore) -> None:
    load(store)
    store.backend.execute("DELETE FROM audit_record WHERE msg_partition = 0 AND msg_offset = 1")
    store.backend.execute("DELETE FROM audit_record WHERE msg_partition = 1 AND msg_offset = 4")
    assert findings(store) == [(0, "missing", 2), (1, "truncated", 4)]
    store.backend.execute("DELETE FROM audit_partition WHERE msg_partition = 0")
    assert next(f[1] for f in findings(store) if f[0] == 0) == "no_head"


def test_pruning_keeps_the_rest_verifiable_and_still_tamper_evident(store: AuditStore) -> None:
    load(store)
    removed = prune(store, utc_text(T0 + timedelta(days=2)), NOW)
    assert removed == {(TOPIC, 0): 2, (TOPIC, 1): 1}
    info = {i.partition: i for i in store.partitions()}
    assert (info[0].start.offset, info[0].pruned) == (1, 2)
    assert all(check.ok for _, check in store.verify())
    assert prune(store, utc_text(T0 + timedelta(days=2)), NOW) == {}
    # Everything old: the anchor reaches the head, and the store still verifies.
    assert prune(store, NOW, NOW) == {(TOPIC, 0): 2, (TOPIC, 1): 2}
    assert store.counts() == {} and store.gaps() == []
    assert all(check.ok for _, check in store.verify())
    store.append(TOPIC, 0, [message(0, 4, event(30, "cn=a"))], NOW)
    store.backend.execute("UPDATE audit_record SET dn = 'cn=b' WHERE msg_offset = 4")
    assert findings(store) == [(0, "changed", 4)]


def test_store_urls(tmp_path: Path) -> None:
    assert redact("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact("postgresql://h/db") == "postgresql://h/db"
    for bad in ("mysql://h/db", "sqlite://relative"):
        with pytest.raises(StoreUrlError):
            open_store(bad, tmp_path)
    with open_store(f"sqlite:///{tmp_path}/x.db", tmp_path) as by_url:
        assert by_url.kind == "sqlite" and (tmp_path / "x.db").exists()
    with open_store(None, tmp_path / "state") as default:
        assert (tmp_path / "state" / "audit.sqlite3").exists() and default.counts() == {}

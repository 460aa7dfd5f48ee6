"""Topic names and the one schema each carries. A breaking change is a new (versioned) topic."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.admin import AdminCommandDecided
from schemas.audit import AuditMessage
from schemas.bridge import BridgeEventMessage, EduConnectGuardianChanged, SessionsRevoked
from schemas.entities import EntityMessage
from schemas.ledger import FileIngested
from schemas.lifecycle import FeedTopicMessage, ScolarityGroupsPurged, SnapshotDecision


@dataclass(frozen=True)
class TopicSpec:
    name: str
    schema: type[BaseModel]
    key: str
    doc: str


FEED = TopicSpec(
    "entsync.feed.v1",
    FeedTopicMessage,
    "record key '<kind>:<jointure>', 'snapshot:<category>:<scope>' or 'year'",
    "validated ONDE / staff records and snapshot markers, as published by 'entsync ingest'; "
    "lifecycle controls (snapshot scans and tallies, hold decisions, year commands)",
)
LIFECYCLE = TopicSpec(
    "entsync.lifecycle.v1",
    SnapshotDecision,
    "snapshot key 'snapshot:<category>:<scope>'",
    "one event per decision on a complete snapshot (applied, held, approved, frozen...): "
    "the record of holds",
)
SCOLARITY = TopicSpec(
    "entsync.scolarity.v1",
    ScolarityGroupsPurged,
    "school DN",
    "at a school-year switchover, one event per school listing its retired class groups",
)
ENTITIES = TopicSpec(
    "entsync.entities.v1",
    EntityMessage,
    "entity id (opaque)",
    "inputs of the reconciler, one partition per directory entry (records, links, logins)",
)
AUDIT = TopicSpec(
    "entsync.audit.v1",
    AuditMessage,
    "entity id (opaque)",
    "one event per directory change, naming its cause; and each hold decided without one "
    "(records held for an INE conflict, persons held by a login rule)",
)
ADMIN_DECISIONS = TopicSpec(
    "entsync.admin-decisions.v1",
    AdminCommandDecided,
    "entity id (opaque) of the deciding entity",
    "one event per admin command decided (accepted, unchanged or refused, with the reason)",
)

INGEST_LEDGER = TopicSpec(
    "entsync.ingest-ledger.v1",
    FileIngested,
    "file digest (sha256)",
    "files whose events were all delivered; a file already there is not published again",
)

# parent bridge
BRIDGE_EVENTS = TopicSpec(
    "entsync.bridge-events.v1",
    BridgeEventMessage,
    "bridge id (opaque), else the keyed digest of the OIDC subject",
    "parent bridge decisions for school administrators: identities bridged or unresolved, "
    "attachments recorded, blocked, unblocked or removed",
)
EDUCONNECT_SYNC = TopicSpec(
    "entsync.educonnect-sync.v1",
    EduConnectGuardianChanged,
    "guardian entity id (opaque)",
    "the nightly J+1 sync towards EduConnect: one event per guardian whose children, SMS phone "
    "or identity changed",
)
SESSIONS = TopicSpec(
    "entsync.sessions.v1",
    SessionsRevoked,
    "bridge id (opaque)",
    "ENT-credential sessions to close (a parent moved to EduConnect)",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    FEED,
    ENTITIES,
    AUDIT,
    ADMIN_DECISIONS,
    INGEST_LEDGER,
    LIFECYCLE,
    SCOLARITY,
    BRIDGE_EVENTS,
    EDUCONNECT_SYNC,
    SESSIONS,
)

# replay (entsync replay): a replay runs in its own consumer group with its own copies of these
# topics, so that nothing it derives (scans and tallies, entity inputs, audit, decisions) mixes
# with the live system. The live feed is read; the replay works on a private copy of its inputs.
REPLAY_PRIVATE: tuple[TopicSpec, ...] = (FEED, ENTITIES, AUDIT, ADMIN_DECISIONS, LIFECYCLE)


def run_topic_name(spec: TopicSpec, replay_id: str | None) -> str:
    """The name of ``spec``'s topic for a run: the live name, or the replay's private copy."""
    if replay_id is None or spec not in REPLAY_PRIVATE:
        return spec.name
    return f"{spec.name}.replay-{replay_id}"

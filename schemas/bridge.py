"""The parent bridge's events (EduConnect / FranceConnect sign-in of legal guardians).

Three topics, one schema each (see ``schemas.topics``):

- ``entsync.bridge-events.v1`` (:data:`BridgeEvent`): what the bridge decided about a sign-in or
  an attachment, for the schools' administrators. No clear-text personal data: people are named
  by opaque entity ids, OIDC subjects only by keyed digest, schools by DN;
- ``entsync.educonnect-sync.v1`` (:class:`EduConnectGuardianChanged`): the J+1 synchronisation
  towards EduConnect, one event per guardian whose links, SMS phone or identity changed since the
  last run. This topic *is* the data feed EduConnect needs (the mobile number for SMS activation,
  the names it matches on), so it carries those values, like the feed topic does;
- ``entsync.sessions.v1`` (:class:`SessionsRevoked`): ENT-credential sessions to close because
  the guardian moved to EduConnect.

Directory changes the bridge makes are audited as ``DirectoryChanged`` on ``entsync.audit.v1``
like every other change; these events are the decisions around them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

BRIDGE_SCHEMA_VERSION: Literal[1] = 1

Provider = Literal["educonnect", "franceconnect"]
AccountOrigin = Literal["FranceConnect", "Responsable", "Etablissement"]
"""How the EduConnect account was activated: FranceConnect, self-activated (SMS code) by the
guardian (``Responsable``), or with credentials printed by the school (``Etablissement``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _BridgeEventBase(_Frozen):
    schema_version: Literal[1] = BRIDGE_SCHEMA_VERSION
    event_id: str = Field(description="unique id of this event")
    at: datetime = Field(description="when it was decided (UTC)")
    school_dns: tuple[str, ...] = Field(
        default=(), description="schools whose administrators should see it"
    )


class IdentityBridged(_BridgeEventBase):
    """A sign-in was linked to guardian records (first time, or new records joined)."""

    type: Literal["bridge.identity-bridged"] = "bridge.identity-bridged"
    bridge_id: str
    provider: Provider
    method: Literal["existing", "source-keys", "identity-claims", "admin"]
    guardian_ids: tuple[str, ...]
    origin: AccountOrigin | None = None


class IdentityUnresolved(_BridgeEventBase):
    """No automatic link: no guardian matched, several did, or only manual accounts did."""

    type: Literal["bridge.identity-unresolved"] = "bridge.identity-unresolved"
    provider: Provider
    subject_digest: str = Field(description="keyed digest of the provider's subject")
    reason: Literal["no-candidate", "several-candidates", "manual-account"]
    candidate_ids: tuple[str, ...] = Field(
        default=(), description="guardian entity ids that matched (several or manual)"
    )


class AttachmentBlocked(_BridgeEventBase):
    """A wrong birth date was given for a proposed child: the parent cannot retry."""

    type: Literal["bridge.attachment-blocked"] = "bridge.attachment-blocked"
    bridge_id: str
    guardian_id: str
    child_id: str
    reason: Literal["wrong-birth-date"] = "wrong-birth-date"


class AttachmentRecorded(_BridgeEventBase):
    """A child was attached to a bridged identity (birth date confirmed, or by the school)."""

    type: Literal["bridge.attachment-recorded"] = "bridge.attachment-recorded"
    bridge_id: str
    guardian_id: str
    child_id: str
    by: Literal["parent", "school"]


class AttachmentUnblocked(_BridgeEventBase):
    """The school lifted a block: the parent may confirm the birth date again."""

    type: Literal["bridge.attachment-unblocked"] = "bridge.attachment-unblocked"
    bridge_id: str
    guardian_id: str
    child_id: str


class AttachmentRemoved(_BridgeEventBase):
    """The J+1 sync found the legal responsibility gone: the attachment is removed."""

    type: Literal["bridge.attachment-removed"] = "bridge.attachment-removed"
    bridge_id: str
    guardian_id: str
    child_id: str
    reason: Literal["link-lost"] = "link-lost"


BridgeEvent = Annotated[
    IdentityBridged
    | IdentityUnresolved
    | AttachmentBlocked
    | AttachmentRecorded
    | AttachmentUnblocked
    | AttachmentRemoved,
    Field(discriminator="type"),
]


class BridgeEventMessage(RootModel[BridgeEvent]):
    """The one schema of ``entsync.bridge-events.v1``. Key: bridge id, else subject digest."""


class EduConnectGuardianChanged(_Frozen):
    """One guardian's changes since the previous J+1 run (key: guardian entity id)."""

    schema_version: Literal[1] = BRIDGE_SCHEMA_VERSION
    type: Literal["educonnect.guardian-changed"] = "educonnect.guardian-changed"
    event_id: str = Field(description="deterministic: run time and guardian id")
    run_at: datetime
    guardian_id: str
    change: Literal["added", "modified", "removed"]
    jointure: str | None = Field(description="the ONDE source key (ENTPersonJointure)")
    children_gained: tuple[str, ...] = Field(default=(), description="pupil entity ids")
    children_lost: tuple[str, ...] = ()
    mobile_changed: bool = False
    mobile: str | None = Field(default=None, description="current SMS activation number, E.164")
    identity_changed: bool = False
    last_name: str | None = None
    first_name: str | None = None


class SessionsRevoked(_Frozen):
    """Close the ENT-credential sessions of these guardian accounts (key: bridge id)."""

    schema_version: Literal[1] = BRIDGE_SCHEMA_VERSION
    type: Literal["sessions.revoked"] = "sessions.revoked"
    event_id: str
    at: datetime
    bridge_id: str
    guardian_ids: tuple[str, ...]
    reason: Literal["educonnect-first-login"] = "educonnect-first-login"
    ent_login_disabled: bool = Field(description="ENT-credential sign-in disabled as well")


class ChildFacts(_Frozen):
    """What the J+1 snapshot keeps of a child, for proposals (never shown: the birth date)."""

    child_id: str
    first_name: str
    school_dn: str | None = None
    school_name: str | None = None
    birth_date: date | None = None


class GuardianFacts(_Frozen):
    """What the J+1 snapshot keeps of a guardian entry, as read from the directory."""

    guardian_id: str
    dn: str
    jointure: str
    last_name: str
    first_name: str
    birth_date: date | None = Field(default=None, description="ONDE does not carry it")
    mobile: str | None = None
    manual: bool = False
    child_ids: tuple[str, ...] = ()
    school_dns: tuple[str, ...] = ()


class Snapshot(_Frozen):
    """The directory as seen by one J+1 run: the only source of the bridge's proposals."""

    run_at: datetime
    guardians: dict[str, GuardianFacts] = Field(default_factory=dict)
    children: dict[str, ChildFacts] = Field(default_factory=dict)

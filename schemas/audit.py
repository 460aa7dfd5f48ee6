"""Audit events: one per directory change, on topic ``entsync.audit.v1``.

No clear-text personal data: entries are named by opaque entity id and DN (built from opaque ids),
attribute values only by keyed digest (see :func:`sync.diff.values_digest`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.entities import Cause, EntityKind

AUDIT_SCHEMA_VERSION: Literal[1] = 1


class AttributeChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    before_digest: str | None = Field(
        description="HMAC-SHA256 (ENTSYNC_AUDIT_DIGEST_KEY) of sorted values before; None: absent"
    )
    after_digest: str | None = Field(
        description="HMAC-SHA256 (ENTSYNC_AUDIT_DIGEST_KEY) of sorted values after; None: absent"
    )


class DirectoryChanged(BaseModel):
    """Exactly one per LDAP add, modify or delete."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = AUDIT_SCHEMA_VERSION
    type: Literal["directory.changed"] = "directory.changed"
    event_id: str = Field(description="deterministic: same cause and change give the same id")
    action: Literal["add", "modify", "delete"]
    entity_id: str
    entity_kind: EntityKind
    dn: str
    changes: tuple[AttributeChange, ...]
    cause: Cause
    schools: tuple[str, ...] = Field(
        default=(),
        description="jointures (UAIs in AAF1D) of the schools the entry belongs to, before or "
        "after the change: what 'entsync audit search --school' finds",
    )
    merged_causes: tuple[Cause, ...] = Field(
        default=(),
        description="earlier causes whose changes to this entry were written with this one",
    )


class RecordsHeld(BaseModel):
    """An entity's records held (or no longer held) for a reason between records, not in one
    record: an INE carried by records that are not the same person (``ine_conflict``,
    :mod:`sync.sameperson`). Published on ``entsync.audit.v1`` beside the directory changes,
    each time the held keys or the conflict's state change. No values: record ids only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = AUDIT_SCHEMA_VERSION
    type: Literal["records.held"] = "records.held"
    event_id: str = Field(description="deterministic: same cause and outcome give the same id")
    entity_id: str
    entity_kind: EntityKind
    reason: Literal["ine_conflict"] = "ine_conflict"
    rule: str = Field(description="the rule that found it: names_and_birth_date_differ")
    held: tuple[str, ...] = Field(description="source keys 'pupil:<jointure>' held after the input")
    unresolved: bool = Field(
        description="True: the conflict waits for an operator (the entry is kept as last written)"
    )
    cause: Cause


class IdentityHeld(BaseModel):
    """A person held, or released, by a rule of the core that no feed record carries (an
    academic login another person has): it changes no entry, so no ``DirectoryChanged`` traces
    it; this event does. Names the entity by opaque id and the rule by reason, never a value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = AUDIT_SCHEMA_VERSION
    type: Literal["identity.held"] = "identity.held"
    event_id: str = Field(description="deterministic: same cause, entity and reasons, same id")
    entity_id: str
    entity_kind: EntityKind
    reason: str | None = Field(description="the hold reason now; None: released")
    previous: str | None = Field(description="the hold reason before; None: was not held")
    cause: Cause


AuditEvent = Annotated[DirectoryChanged | RecordsHeld | IdentityHeld, Field(discriminator="type")]


class AuditMessage(RootModel[AuditEvent]):
    """Wire form of one message on ``entsync.audit.v1``: a directory change, or a hold decided
    without one (its consumers keep types they do not know, raw)."""

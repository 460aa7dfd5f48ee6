"""Admin command decisions: one event per admin command decided, on ``entsync.admin-decisions.v1``.

An admin command (``entsync admin ...``) travels on ``entsync.entities.v1`` to the entity that is
the authority on it at apply time. That entity decides it: *accepted* (the directory changes
follow, each audited on ``entsync.audit.v1`` with the command's rule as cause), *unchanged* (it
was already so: nothing to do) or *refused* (nothing changes; ``reason`` says why). This event
records that decision, so a refusal, which changes no entry, is still traced.

No clear-text personal data: teachers and pupils are named by opaque entity id, records by
source key (jointure); schools by jointure and classes by code (not personal).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.entities import Cause

ADMIN_SCHEMA_VERSION: Literal[1] = 1

AdminCommandName = Literal[
    "attach-teacher",
    "detach-teacher",
    "gar-manager-add",
    "gar-manager-remove",
    "detach-from-school",
    "reattach-to-school",
    "block",
    "unblock",
    "create-manual",
    "delete-manual",
    "resolve-ine",
]
AdminOutcome = Literal["accepted", "unchanged", "refused"]
RefusalReason = Literal[
    "class-missing",
    "teacher-not-in-school",
    "last-gar-manager",
    "attachment-school",
    "holder-unknown",
]


class AdminCommandDecided(BaseModel):
    """How the authority entity decided one admin command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = ADMIN_SCHEMA_VERSION
    type: Literal["admin.command-decided"] = "admin.command-decided"
    event_id: str = Field(description="deterministic: same command, same decision, same id")
    command: AdminCommandName
    outcome: AdminOutcome
    reason: RefusalReason | None = Field(default=None, description="set when refused")
    entity_id: str = Field(description="the deciding entity (a class, a group, a teacher)")
    teacher_id: str | None = Field(default=None, description="teacher commands")
    block_id: str | None = Field(default=None, description="block commands")
    holder: str | None = Field(
        default=None, description="resolve-ine: the source key named as the INE's holder"
    )
    school_jointure: str
    class_code: str | None = None
    cause: Cause

"""What ``entsync audit export`` (and ``history`` / ``search`` with ``--json``) write: one line per
stored audit event, with where it was on the audit topic and its place in the store's chain."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportedAuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    topic: str
    partition: int
    offset: int
    logged_at: str | None = Field(description="broker time of the audit message, UTC ISO 8601")
    hash: str = Field(description="the record's hash in its partition's chain (sha256, hex)")
    event: dict[str, Any] | None = Field(
        description="the audit event as published (a directory.changed or a later type)"
    )

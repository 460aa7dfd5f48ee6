"""The ingest ledger: one record per file whose events were all delivered to the feed topic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class FileIngested(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["file.ingested"] = "file.ingested"
    file_digest: str
    file_name: str
    category: str
    scope: str | None
    complete: bool
    events_published: int
    at: datetime

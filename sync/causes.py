"""The cause of a decision: the topic position of the message behind it, and its source file.

The worker (:func:`connectors.stream.outbox.cause_from`) and the replay's prediction
(:func:`sync.replay.cause_of`) name a message's cause with this one function, so that a dry run
predicts the causes the worker writes in audit events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.entities import Cause


def message_cause(
    *, topic: str, partition: int, offset: int, at: datetime, rule: str, source: Any = None
) -> Cause:
    """``source``: the record's ``SourceRef`` (file name, digest, index), if it has one."""
    return Cause(
        topic=topic,
        partition=partition,
        offset=offset,
        source_file=getattr(source, "file_name", None),
        source_file_digest=getattr(source, "file_digest", None),
        record_index=getattr(source, "record_index", None),
        rule=rule,
        at=at,
    )

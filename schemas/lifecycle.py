"""Account lifecycle contracts: absence from complete snapshots, holds, the school year.

Absence is decided from evidence only: a person is *absent* from a complete extract of its scope
when its feed key was last fed by that scope and the extract's records did not include it. Feed
keys are spread over the feed topic's partitions, so a snapshot is checked in two rounds run by
``route_feed``:

1. ``SnapshotCompleted`` reaches the snapshot's *coordinator* (the partition of its key
   ``snapshot:<category>:<scope>``), which sends a :class:`SnapshotScan` (phase ``tally``) to
   every partition; each answers a :class:`SnapshotTally` (active and absent keys it holds);
2. with every tally in, the coordinator decides (guard against mass deletion, school-year
   freeze, switchover grace) and publishes a :class:`SnapshotDecision` on
   ``entsync.lifecycle.v1``; when absence is to be applied it sends a :class:`SnapshotScan`
   (phase ``apply``) to every partition, which marks its absent keys removed.

A held snapshot waits for an operator: :class:`HoldDecided` (``entsync holds approve|reject``).
School-year commands (:class:`YearCommand`, ``entsync year freeze|switchover``) go to every
partition of the feed topic (absence decisions) and, as ``year.switchover`` entity inputs, to
every partition of the entities topic (classes retired).

These control messages travel on ``entsync.feed.v1`` next to the feed's records: the topic's one
schema is :class:`FeedTopicMessage`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.feed import Category, FeedEventModels

LIFECYCLE_SCHEMA_VERSION: Literal[1] = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _ControlBase(_Frozen):
    schema_version: Literal[1] = LIFECYCLE_SCHEMA_VERSION
    key: str = Field(description="Kafka key: the snapshot key, or 'year' for year commands")


class SnapshotRef(_Frozen):
    """Which complete extract a control message is about."""

    snapshot_id: str
    category: Category
    scope: str
    started_at: datetime = Field(description="when its SnapshotStarted was routed")
    extract_date: date | None = Field(default=None, description="the extract's date")


class SnapshotScan(_ControlBase):
    """Coordinator → every partition: count (``tally``) or remove (``apply``) absent keys."""

    type: Literal["snapshot.scan"] = "snapshot.scan"
    snapshot: SnapshotRef
    phase: Literal["tally", "apply"]
    partition: int = Field(ge=0, description="the partition this copy is addressed to")
    partitions: int = Field(ge=1)
    rule: str = Field(description="why absence is applied: 'lifecycle.absent-from-snapshot'...")


class SnapshotTally(_ControlBase):
    """One partition's count for a snapshot: active keys of the scope, and those absent."""

    type: Literal["snapshot.tally"] = "snapshot.tally"
    snapshot_id: str
    partition: int = Field(ge=0)
    partitions: int = Field(ge=1)
    active: int = Field(ge=0)
    absent: int = Field(ge=0)


class HoldDecided(_ControlBase):
    """An operator's decision on a held snapshot (``entsync holds approve|reject``)."""

    type: Literal["hold.decided"] = "hold.decided"
    snapshot_id: str
    approve: bool
    operator: str | None = None
    at: datetime


class YearCommand(_ControlBase):
    """``entsync year freeze | unfreeze | switchover``, one copy per partition."""

    type: Literal["year.command"] = "year.command"
    action: Literal["freeze", "unfreeze", "switchover"]
    school_year: str | None = Field(default=None, description="the new year, for a switchover")
    partition: int = Field(ge=0)
    at: datetime


ControlEventModels = SnapshotScan | SnapshotTally | HoldDecided | YearCommand
ControlEvent = Annotated[ControlEventModels, Field(discriminator="type")]

# One discriminated union over both families (the two unions of models make one flat union):
# pydantic picks the model by ``type`` in one step, where a union of the two discriminated
# unions tried the feed events first, then the controls (twice the time per message).
FeedTopicEvent = Annotated[FeedEventModels | ControlEventModels, Field(discriminator="type")]


class FeedTopicMessage(RootModel[FeedTopicEvent]):
    """Wire form of one message on ``entsync.feed.v1``: a feed event or a lifecycle control."""


# --------------------------------------------------------------------------- decisions topic

SnapshotOutcome = Literal[
    "applied",  # absent keys were marked removed (disappeared)
    "nothing-absent",
    "held",  # mass-deletion guard: waits for an operator
    "approved",  # a held snapshot approved: applied
    "rejected",  # a held snapshot rejected: nothing marked
    "frozen",  # school year frozen: nothing disappears
    "grace",  # new school year's grace period: absence not applied yet
    "superseded",  # a newer complete snapshot of the scope replaced this held one
]


class SnapshotDecision(_Frozen):
    """What was decided about one complete snapshot (topic ``entsync.lifecycle.v1``).

    Counts only, never keys or names. A hold is a decision with outcome ``held``; its id is the
    snapshot id. The latest decision per snapshot id is its current status.
    """

    schema_version: Literal[1] = LIFECYCLE_SCHEMA_VERSION
    type: Literal["snapshot.decision"] = "snapshot.decision"
    snapshot_id: str
    category: Category
    scope: str
    outcome: SnapshotOutcome
    active: int = Field(ge=0, description="active keys of the scope before the snapshot")
    absent: int = Field(ge=0, description="of which absent from it")
    record_count: int = Field(ge=0)
    reason: str = Field(description="plain words for the operator")
    operator: str | None = None
    at: datetime


class SchoolYearState(_Frozen):
    """The school-year calendar as one feed partition knows it (kept per partition)."""

    schema_version: Literal[1] = LIFECYCLE_SCHEMA_VERSION
    frozen: bool = False
    frozen_at: datetime | None = None
    school_year: str | None = Field(default=None, description="set by the last switchover")
    switchover_at: datetime | None = None


class PendingSnapshot(_Frozen):
    """A complete snapshot being checked by its coordinator."""

    snapshot: SnapshotRef
    record_count: int = 0
    partitions: int = 1
    tallies: dict[int, tuple[int, int]] = Field(
        default_factory=dict, description="partition → (active, absent)"
    )
    outcome: SnapshotOutcome | None = None


class ScopeState(_Frozen):
    """Coordinator memory of one snapshot key (``snapshot:<category>:<scope>``)."""

    schema_version: Literal[1] = LIFECYCLE_SCHEMA_VERSION
    key: str
    started: SnapshotRef | None = Field(default=None, description="the snapshot being received")
    pending: dict[str, PendingSnapshot] = Field(
        default_factory=dict, description="by snapshot id: being tallied, or held"
    )
    last_applied: str | None = Field(default=None, description="last snapshot id decided")


class RetiredGroup(_Frozen):
    """One group retired by the switchover (no names of people, only the group's identity)."""

    dn: str
    class_code: str
    profile: str = Field(description="pupils, guardians or teachers of the class")


class ScolarityGroupsPurged(_Frozen):
    """Per school, at a switchover (topic ``entsync.scolarity.v1``): last year's class groups,
    which content services purge (shares to those groups end with the year)."""

    schema_version: Literal[1] = LIFECYCLE_SCHEMA_VERSION
    type: Literal["scolarity.groups-purged"] = "scolarity.groups-purged"
    school_dn: str
    school_year: str = Field(description="the new school year")
    groups: tuple[RetiredGroup, ...]
    at: datetime

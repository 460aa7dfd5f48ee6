"""Every metric entsync exports, in one place (names, help, labels).

Labels carry bounded, non-personal values only: categories, scopes (a UAI or an academy
code), profiles, outcomes, operations, providers, reasons (machine codes), topics and
partitions. Never a name, a login, an INE, a jointure, an entity id or a DN:
:data:`ALLOWED_LABELS` lists the label names any metric may have, and :func:`scope_label`
keeps a scope that does not look like one out of the labels. A unit test checks both.

The worker's gauges are per process (each worker counts the partitions it holds): sum them
over the workers (``sum by (state, profile)``), except the snapshot timestamps (``max``).
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, Info

ALLOWED_LABELS = frozenset(
    {
        "agent",
        "by",
        "category",
        "component",
        "kind",
        "op",
        "outcome",
        "partition",
        "profile",
        "provider",
        "reason",
        "scope",
        "state",
        "status",
        "topic",
        "version",
    }
)
_SCOPE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # 0310100R, AC-TOULOUSE
_REASON = re.compile(r"^[a-z0-9_.-]{1,64}$")  # machine codes: 'state-mismatch'
OTHER = "other"

BUILD = Info("entsync_build", "entsync's version and the component this process runs")

# --- worker: feed and directory -----------------------------------------------------------
FEED_RECORDS = Counter(
    "entsync_feed_records",
    "feed records routed by the worker, by AAF category and outcome (changed: sent on to the "
    "entities; unchanged: same version or nothing to send; held: published held, e.g. by the "
    "admission rules; deleted; rejected: failed validation in a complete extract)",
    ["category", "outcome"],
)
ENTITY_INPUTS = Counter("entsync_entity_inputs", "entity inputs decided by the reconciler")
DIRECTORY_WRITES = Counter(
    "entsync_directory_writes",
    "directory writes by operation and outcome: added, modified, deleted; healed (the entry was "
    "not as expected and was brought to the op's state); already_done (the directory had it); "
    "refused (the directory refused it for good, or it followed a refused write of its entry)",
    ["op", "outcome"],
)
WRITE_SECONDS = Histogram(
    "entsync_directory_write_seconds",
    "time of one directory write, retries included",
    ["op"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LDAP_RETRIES = Counter(
    "entsync_ldap_retries", "directory write attempts retried after a transient error", ["op"]
)
BATCH_SECONDS = Histogram(
    "entsync_batch_seconds",
    "time of one batch of an agent (route_feed: routed and delivered; reconcile: from decided "
    "to written, audited and acknowledged)",
    ["agent"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
BATCH_EVENTS = Counter("entsync_batch_events", "events taken in batches, by agent", ["agent"])

# --- worker: state ------------------------------------------------------------------------
ACCOUNTS = Gauge(
    "entsync_accounts",
    "person entities of the partitions this worker holds, by lifecycle state and profile "
    "(counted when the tables are recovered, then kept at each state change)",
    ["state", "profile"],
)
HOLDS_PENDING = Gauge(
    "entsync_holds_pending",
    "what waits for an operator or the source, in the partitions this worker holds: snapshot "
    "(complete extracts held by the mass-deletion guard), ine_conflict (pupils with an "
    "unresolved INE conflict), login (staff held by an academic-login rule)",
    ["kind"],
)
SNAPSHOTS_DECIDED = Counter(
    "entsync_snapshots_decided",
    "decisions on complete snapshots, by category and outcome (applied, nothing-absent, held, "
    "approved, rejected, frozen, grace, superseded)",
    ["category", "outcome"],
)
SNAPSHOT_LAST_SUCCESS = Gauge(
    "entsync_snapshot_last_success_timestamp_seconds",
    "time of the last complete snapshot taken (applied, nothing-absent, approved, frozen or "
    "grace) per category and scope; take the max over workers",
    ["category", "scope"],
)
CONSUMER_LAG = Gauge(
    "entsync_consumer_lag_messages",
    "messages of an assigned partition not yet consumed (end offset minus position)",
    ["topic", "partition"],
)
READY = Gauge("entsync_ready", "1 when the process answers ready on /readyz")

# --- bridge -------------------------------------------------------------------------------
BRIDGE_SIGN_INS = Counter(
    "entsync_bridge_sign_ins",
    "sign-ins at the parent bridge by provider and outcome (signed_in, first_sign_in, "
    "unresolved, refused); reason: why unresolved or refused (machine code)",
    ["provider", "outcome", "reason"],
)
BRIDGE_ATTACHMENTS = Counter(
    "entsync_bridge_attachments",
    "parents' answers on the attachment page by outcome (attached, blocked, unchanged); by: "
    "parent (the school's commands run in processes of their own: see the bridge events topic)",
    ["outcome", "by"],
)
BRIDGE_SYNC_LAST_SUCCESS = Gauge(
    "entsync_bridge_sync_last_success_timestamp_seconds", "time of the last successful J+1 run"
)

# --- audit consumer -----------------------------------------------------------------------
AUDIT_EVENTS = Counter(
    "entsync_audit_events",
    "audit topic messages written to the audit store, by status (stored, duplicate, invalid)",
    ["status"],
)
AUDIT_GAPS = Counter("entsync_audit_gaps", "offset gaps found in the audit topic")

SUCCESSFUL_SNAPSHOTS = frozenset({"applied", "nothing-absent", "approved", "frozen", "grace"})


def scope_label(scope: str) -> str:
    """``scope`` if it looks like a UAI or an academy code, else 'other'."""
    return scope if _SCOPE.match(scope) else OTHER


def reason_label(reason: str | None) -> str:
    """A machine reason code, or 'other' ('' when there is none)."""
    if not reason:
        return ""
    return reason if _REASON.match(reason) else OTHER


def package_version() -> str:
    try:
        return version("entsync")
    except PackageNotFoundError:  # pragma: no cover: running from a tree without metadata
        return "unknown"


def set_build_info(component: str) -> None:
    """The ``entsync_build_info`` series of this process, and its series known in advance: a
    counter an alert watches must exist before its first increase (``increase()`` of a series
    born at 1 is 0)."""
    BUILD.info({"version": package_version(), "component": component})
    if component == "worker":
        for op in ("add", "modify", "delete"):
            for outcome in WRITE_OUTCOMES:
                DIRECTORY_WRITES.labels(op, outcome)
            LDAP_RETRIES.labels(op)
        for kind in HOLD_KINDS:
            HOLDS_PENDING.labels(kind)
    elif component == "audit-consumer":
        for status in ("stored", "duplicate", "invalid"):
            AUDIT_EVENTS.labels(status)


WRITE_OUTCOMES = ("added", "modified", "deleted", "healed", "already_done", "refused")
HOLD_KINDS = ("snapshot", "ine_conflict", "login")

"""The stream shell's plain values, read from the settings (the one place that does).

``connectors/`` takes these values and never reads the settings itself: the worker's app and
tables (:class:`connectors.stream.deployment.StreamConfig`), the core's deployment constants
(:class:`sync.reconcile.Context`) and the lifecycle rules' delays and guard.
"""

from __future__ import annotations

from datetime import timedelta

from connectors.stream.deployment import StreamConfig, StreamTopics
from entsync.audit_key import audit_digest_key
from entsync.settings import Settings
from schemas.topics import ADMIN_DECISIONS, AUDIT, ENTITIES, FEED, LIFECYCLE
from sync.absence import Guard
from sync.lifecycle import Policy
from sync.reconcile import Context


def stream_topics(settings: Settings) -> StreamTopics:
    """Live names, or a replay's private copies (``settings.replay_id``): README "Replay"."""
    return StreamTopics(
        feed=settings.topic_name(FEED),
        entities=settings.topic_name(ENTITIES),
        audit=settings.topic_name(AUDIT),
        decisions=settings.topic_name(ADMIN_DECISIONS),
        lifecycle=settings.topic_name(LIFECYCLE),
    )


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        app_id=settings.app_id,
        partitions=settings.topic_partitions,
        topics=stream_topics(settings),
        state_dir=settings.state_dir,
        session_timeout_s=settings.kafka_session_timeout_s,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        sweep_hour=settings.lifecycle_sweep_hour,
        replay=settings.replay_id is not None,
        intake_max_waiting=settings.intake_max_waiting,
        fetch_partition_bytes=settings.kafka_fetch_partition_bytes,
        window_max_inputs=settings.write_window_max_inputs,
    )


def context_of(settings: Settings) -> Context:
    """The deployment constants the core decides with."""
    return Context(
        base_dn=settings.ldap_base_dn,
        namespace=settings.id_namespace,
        digest_key=audit_digest_key(settings),
        sources=settings.jointure_sources(),
    )


def policy_from(settings: Settings) -> Policy:
    """The sweeper's delays per profile from the configuration."""
    s = settings
    predelete = {
        "pupil": s.lifecycle_predelete_days_pupil,
        "guardian": s.lifecycle_predelete_days_guardian,
        "staff": s.lifecycle_predelete_days_staff,
    }
    delete = {
        "pupil": s.lifecycle_delete_days_pupil,
        "guardian": s.lifecycle_delete_days_guardian,
        "staff": s.lifecycle_delete_days_staff,
    }
    return Policy(
        predelete_after={
            k: timedelta(days=v or s.lifecycle_predelete_days) for k, v in predelete.items()
        },
        delete_after={k: timedelta(days=v or s.lifecycle_delete_days) for k, v in delete.items()},
        default_predelete=timedelta(days=s.lifecycle_predelete_days),
        default_delete=timedelta(days=s.lifecycle_delete_days),
    )


def guard_from(settings: Settings) -> Guard:
    """The mass-absence guard (a complete snapshot missing too many accounts is held)."""
    return Guard(
        max_share=settings.lifecycle_guard_share,
        min_count=settings.lifecycle_guard_min_count,
        grace=timedelta(days=settings.lifecycle_grace_days),
    )

"""CLI command: ``entsync topics ensure``, the Kafka topics entsync uses, created when missing.

The worker, ingest and the bridge create the topics they need at start too; this command lets a
deployment create them first, once (the Helm chart's topic Job), with the configured partitions,
replication, ``min.insync.replicas`` and retention, and the tables' changelogs compacted.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from entsync.cli.common import EXIT_CONFIG, StateDir, console, fail, settings_or_exit
from entsync.exit_codes import ExitCode
from entsync.settings import ConfigurationError

EXIT_BROKER = ExitCode.BROKER_UNREACHABLE

topics_app = typer.Typer(
    name="topics",
    help=(
        "Kafka topics: create the ones entsync uses that are missing (never alters an existing "
        "one). Exit codes: 0 done, 1 a topic has another partition count than "
        "ENTSYNC_TOPIC_PARTITIONS, 2 configuration error, 3 broker unreachable or refusing."
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics")


@topics_app.command("ensure")
def ensure(
    state_dir: StateDir = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the broker")] = 60.0,
) -> None:
    """Create the missing topics and the tables' changelogs; check partition counts."""
    from connectors.stream.restore import ENTITIES_TABLE, SOURCES_TABLE, changelog_topic
    from connectors.stream.topics import (
        TopicSetupError,
        ensure_compacted,
        ensure_topics,
        require_partitions,
    )
    from entsync.kafka_clients import kafka_params
    from schemas.topics import ENTITIES, FEED

    settings = settings_or_exit(state_dir)
    try:
        kafka = kafka_params(settings)
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    partitions = settings.topic_partitions
    changelogs = [changelog_topic(settings.app_id, t) for t in (SOURCES_TABLE, ENTITIES_TABLE)]
    streams = [settings.topic_name(FEED), settings.topic_name(ENTITIES)]

    async def run() -> list[str]:
        await ensure_topics(kafka, partitions, extra=settings.private_topic_names())
        created = await ensure_compacted(kafka, changelogs, partitions)
        await require_partitions(kafka, partitions, [*streams, *changelogs])
        return created

    try:
        created = asyncio.run(asyncio.wait_for(run(), timeout))
    except ConfigurationError as exc:  # a partition count that is not the configured one
        raise fail(str(exc), ExitCode.FAILED) from exc
    except (TopicSetupError, TimeoutError, OSError) as exc:
        raise fail(f"topics not ensured: {type(exc).__name__}: {exc}", EXIT_BROKER) from exc
    except Exception as exc:  # aiokafka's own errors (connection refused, ...)
        if type(exc).__module__.startswith("aiokafka"):
            raise fail(f"topics not ensured: {type(exc).__name__}", EXIT_BROKER) from exc
        raise
    console.print(
        f"topics: every topic entsync uses exists ({partitions} partitions); "
        f"changelogs created now: {', '.join(created) or 'none'}"
    )

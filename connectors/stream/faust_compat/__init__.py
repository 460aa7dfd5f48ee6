"""faust-streaming and aiokafka behind one door: every patch, and every private attribute read.

The stream shell relies on behaviours of faust and aiokafka that no public API offers (see
README "Crash safety on Kafka"): six process-wide patches (:mod:`.patches`) and a few reads of
private attributes (:mod:`.access`). They were written for the versions in :data:`SUPPORTED`;
:func:`install` checks those versions and that every attribute in :data:`REQUIRED` exists before
it patches anything, and refuses to start otherwise (``FaustCompatError``): a rename in an
upgrade must stop the worker, not silently disable a fix that prevents data loss. Upgrading
faust or aiokafka means reading these two modules again, then widening :data:`SUPPORTED`.

The objects handled here (consumers, fetchers, workers, their private attributes) are untyped
faust, mode and aiokafka internals: they are ``Any`` in this package, which is why it is one.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from connectors.stream.clients import KafkaParams

__all__ = ["REQUIRED", "SUPPORTED", "check", "install"]

# The versions (major.minor) the patches and accessors were written and tested for.
SUPPORTED = {"faust-streaming": "0.15", "aiokafka": "0.14", "mode-streaming": "0.7"}

# module:class, attribute: everything patched, wrapped or read on a class.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("faust.transport.consumer:Consumer", "ack"),
    ("faust.transport.consumer:Consumer", "_add_gap"),
    ("faust.transport.consumer:Consumer", "_new_offset"),
    ("faust.transport.consumer:Consumer", "perform_seek"),
    ("faust.transport.consumer:Consumer", "resume_partitions"),
    ("faust.transport.consumer:Consumer", "_commit"),
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_highwaters"),
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_create_worker_consumer"),
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "Worker"),
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_ensure_consumer"),
    ("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "call_thread"),
    ("aiokafka.consumer.consumer:AIOKafkaConsumer", "pause"),
    ("aiokafka.consumer.consumer:AIOKafkaConsumer", "resume"),
    ("aiokafka.consumer.group_coordinator:GroupCoordinator", "_maybe_leave_group"),
    ("aiokafka.consumer.group_coordinator:GroupCoordinator", "_send_req"),
    ("faust.worker:Worker", "_on_sigterm"),
    ("faust.worker:Worker", "_on_sigint"),
    ("faust.stores.rocksdb:Store", "_db_for_partition"),
    ("faust.stores.rocksdb:Store", "offset_key"),
)


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def check() -> None:
    """Refuse (:class:`.patches.FaustCompatError`) another faust, aiokafka or mode than
    :data:`SUPPORTED`, or one without an attribute of :data:`REQUIRED`."""
    from connectors.stream.faust_compat import patches  # faust imported only when needed

    for distribution, wanted in SUPPORTED.items():
        found = _installed(distribution)
        if found is None or not (found == wanted or found.startswith(wanted + ".")):
            raise patches.FaustCompatError(
                f"{distribution} {found or 'not installed'} is installed; entsync's stream "
                f"work-arounds were written for {wanted}.x (connectors/stream/faust_compat)"
            )
    for where, name in REQUIRED:
        module_name, class_name = where.split(":")
        owner = getattr(importlib.import_module(module_name), class_name)
        patches._original(owner, name)


def install(kafka: KafkaParams, fetch_max_wait_ms: int) -> None:
    """Check, then patch (once per process); later calls only update the values the patches
    read (the brokers to ask for true end offsets, the consumer's fetch wait)."""
    from connectors.stream.faust_compat import patches

    check()
    patches._config.kafka = kafka
    patches._config.fetch_max_wait_ms = fetch_max_wait_ms
    patches.guard_untracked_acks()
    patches.commit_acknowledged_offsets_only()
    patches.leave_group_from_first_generation()
    patches.fetch_max_wait()
    patches.recover_tables_to_true_end()
    patches.consumer_thread_never_holds_exit()

"""The one place that builds Kafka clients: aiokafka producers, consumers and admin clients, the
topics entsync creates, and faust's broker options, all from one plain :class:`KafkaParams`.

``entsync.kafka_clients`` fills and checks the parameters from the settings; nothing here reads
the settings, so connectors take a ``KafkaParams`` and never import ``entsync`` for Kafka.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
KEEP_FOREVER = -1  # retention.ms


@dataclass(frozen=True)
class KafkaParams:
    """Where the brokers are, how to authenticate, and how entsync's topics are created.

    The SASL password is kept out of ``repr`` (and so out of every log line and error).
    """

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    ssl_check_hostname: bool = True
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    retention_ms: int = KEEP_FOREVER

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _no_key_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's pass
    # phrase, and a worker without one would hang: refuse such a key instead.
    raise ValueError("the key file is encrypted: give an unencrypted key (kept in a Secret)")


@functools.lru_cache(maxsize=8)
def ssl_context(params: KafkaParams) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None otherwise): the server's certificate checked
    against ``ssl_ca_file`` (else the system's CAs), its host name too unless switched off."""
    if not params.uses_ssl:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=params.ssl_ca_file)
    context.check_hostname = params.ssl_check_hostname
    if params.ssl_cert_file:
        context.load_cert_chain(
            params.ssl_cert_file, params.ssl_key_file, password=_no_key_password
        )
    return context


ClientOptions: TypeAlias = dict[str, Any]
"""Keyword arguments of aiokafka's clients (and faust.App's): strings, numbers, an SSL context,
credentials; aiokafka checks them, hence ``Any``."""


def auth_options(params: KafkaParams) -> ClientOptions:
    """The security keyword arguments every aiokafka client takes."""
    options: ClientOptions = {"security_protocol": params.security_protocol}
    if params.uses_ssl:
        options["ssl_context"] = ssl_context(params)
    if params.uses_sasl:
        options["sasl_mechanism"] = params.sasl_mechanism
        options["sasl_plain_username"] = params.sasl_username
        options["sasl_plain_password"] = params.sasl_password
    return options


def client_options(params: KafkaParams, options: ClientOptions) -> ClientOptions:
    """``options`` with the brokers and the security settings (which callers may not override)."""
    return {**options, "bootstrap_servers": params.servers, **auth_options(params)}


# ``**options``: a client's own keyword arguments (as ClientOptions).
def producer(params: KafkaParams, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**client_options(params, options))


def consumer(params: KafkaParams, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **client_options(params, options))


def admin(params: KafkaParams, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(params, options))


def topic_configs(params: KafkaParams, *, compacted: bool = False) -> dict[str, str]:
    """Configs of a topic entsync creates. Stream topics are never compacted (the worker's
    commits rely on offsets without holes) and keep ``retention_ms``; table changelogs are
    compacted (their latest value per key is the table)."""
    configs = (
        {"cleanup.policy": "compact"}
        if compacted
        else {"cleanup.policy": "delete", "retention.ms": str(params.retention_ms)}
    )
    if params.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(params.min_insync_replicas)
    return configs


def new_topic(
    params: KafkaParams, name: str, partitions: int, *, compacted: bool = False
) -> NewTopic:
    return NewTopic(
        name,
        partitions,
        params.replication_factor,
        topic_configs=topic_configs(params, compacted=compacted),
    )


def changelog_configs(params: KafkaParams) -> dict[str, str]:
    """What faust adds to the configs of the changelogs it creates (it compacts them itself)."""
    return {k: v for k, v in topic_configs(params, compacted=True).items() if k != "cleanup.policy"}


def faust_options(params: KafkaParams) -> ClientOptions:
    """faust.App keyword arguments: brokers, credentials, replication of the topics it creates."""
    import faust

    credentials: faust.SASLCredentials | faust.SSLCredentials | None = None
    context = ssl_context(params)
    if params.uses_sasl:
        credentials = faust.SASLCredentials(
            username=params.sasl_username,
            password=params.sasl_password,
            ssl_context=context,
            mechanism=params.sasl_mechanism,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {
        "broker": [f"kafka://{server}" for server in params.servers],
        "broker_credentials": credentials,
        "topic_replication_factor": params.replication_factor,
    }

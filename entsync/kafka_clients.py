"""Kafka connection parameters from the settings, checked once at start-up.

Every Kafka client of every command (and faust's) is built by :mod:`connectors.stream.clients`
from the :class:`KafkaParams` made here. A wrong combination fails here, before any connection,
with a message naming the setting to fix and never the value of a secret.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from connectors.stream.clients import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaParams, ssl_context
from entsync.settings import ConfigurationError, Settings

_SSL_FILES = ("ssl_ca_file", "ssl_cert_file", "ssl_key_file")


def _env(name: str) -> str:
    return f"ENTSYNC_KAFKA_{name.upper()}"


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    """``value`` in ``allowed`` (case-insensitive), else a message listing them."""
    normalized = value.strip().upper()
    if normalized not in allowed:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ConfigurationError(
            f"{_env(name)} is {shown!r}: it must be one of {', '.join(allowed)}"
        )
    return normalized


def _readable(path: Path | None, name: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigurationError(f"{_env(name)} names {str(path)!r}, which is not a file")
    try:
        path.open("rb").close()
    except OSError as exc:
        raise ConfigurationError(
            f"{_env(name)}: cannot read {str(path)!r} ({exc.strerror})"
        ) from None
    return str(path)


def _check_sasl(settings: Settings, protocol: str) -> str | None:
    """The SASL mechanism when the protocol uses SASL; SASL settings without it are refused."""
    given = [
        _env(name)
        for name in ("sasl_mechanism", "sasl_username", "sasl_password")
        if getattr(settings, f"kafka_{name}") is not None
    ]
    if not protocol.startswith("SASL_"):
        if given:
            raise ConfigurationError(
                f"{', '.join(given)} set but ENTSYNC_KAFKA_SECURITY_PROTOCOL is {protocol}: set "
                "it to SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        return None
    if settings.kafka_sasl_mechanism is None:
        raise ConfigurationError(
            f"ENTSYNC_KAFKA_SECURITY_PROTOCOL is {protocol}: set ENTSYNC_KAFKA_SASL_MECHANISM "
            f"({', '.join(SASL_MECHANISMS)})"
        )
    mechanism = _choice(settings.kafka_sasl_mechanism, SASL_MECHANISMS, "sasl_mechanism")
    missing = [
        _env(name)
        for name in ("sasl_username", "sasl_password")
        if not getattr(settings, f"kafka_{name}")
    ]
    if missing:
        raise ConfigurationError(f"SASL ({mechanism}) needs {' and '.join(missing)}")
    return mechanism


def _check_ssl(settings: Settings, protocol: str) -> dict[str, str | None]:
    files = {name: getattr(settings, f"kafka_{name}") for name in _SSL_FILES}
    if not protocol.endswith("SSL"):
        given = [_env(name) for name, path in files.items() if path is not None]
        if not settings.kafka_ssl_check_hostname:
            given.append(_env("ssl_check_hostname"))
        if given:
            raise ConfigurationError(
                f"{', '.join(given)} set but ENTSYNC_KAFKA_SECURITY_PROTOCOL is {protocol}: set "
                "it to SSL (or SASL_SSL), or unset them"
            )
        return dict.fromkeys(_SSL_FILES)
    if files["ssl_key_file"] is not None and files["ssl_cert_file"] is None:
        raise ConfigurationError(
            "ENTSYNC_KAFKA_SSL_KEY_FILE set without ENTSYNC_KAFKA_SSL_CERT_FILE (the client "
            "certificate it is the key of)"
        )
    return {name: _readable(path, name) for name, path in files.items()}


def _check_topics(settings: Settings) -> None:
    insync = settings.kafka_min_insync_replicas
    if insync is not None and insync > settings.kafka_replication_factor:
        raise ConfigurationError(
            f"ENTSYNC_KAFKA_MIN_INSYNC_REPLICAS ({insync}) is above "
            f"ENTSYNC_KAFKA_REPLICATION_FACTOR ({settings.kafka_replication_factor}): no write "
            "could ever be acknowledged"
        )
    if settings.kafka_retention_ms == 0:
        raise ConfigurationError(
            "ENTSYNC_KAFKA_RETENTION_MS is 0: give milliseconds, or -1 to keep the topics forever"
        )


def kafka_params(settings: Settings) -> KafkaParams:
    """The checked parameters of every Kafka client; ConfigurationError if a setting is wrong."""
    bootstrap = settings.require_kafka()
    protocol = _choice(settings.kafka_security_protocol, SECURITY_PROTOCOLS, "security_protocol")
    mechanism = _check_sasl(settings, protocol)
    files = _check_ssl(settings, protocol)
    _check_topics(settings)
    password = settings.kafka_sasl_password
    params = KafkaParams(
        bootstrap=bootstrap,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=settings.kafka_sasl_username if mechanism else None,
        sasl_password=password.get_secret_value() if mechanism and password else None,
        ssl_ca_file=files["ssl_ca_file"],
        ssl_cert_file=files["ssl_cert_file"],
        ssl_key_file=files["ssl_key_file"],
        ssl_check_hostname=settings.kafka_ssl_check_hostname,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        retention_ms=settings.kafka_retention_ms,
    )
    try:
        ssl_context(params)  # the files must hold what they are named for
    except (ssl.SSLError, ValueError, OSError) as exc:
        # ssl's messages name the OpenSSL reason (no file content); ours the encrypted key.
        reason = exc.args[1] if isinstance(exc, ssl.SSLError) and len(exc.args) > 1 else exc
        raise ConfigurationError(
            f"the Kafka TLS files (ENTSYNC_KAFKA_SSL_CA_FILE, _CERT_FILE, _KEY_FILE) are not "
            f"usable: {reason}"
        ) from None
    return params

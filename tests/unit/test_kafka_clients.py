"""The Kafka factory: settings -> checked KafkaParams -> aiokafka and faust client options.

No broker here: these tests check what reaches the clients (TLS is exercised against a real
broker in tests/integration/test_kafka_tls.py) and that wrong settings fail with a message that
names the setting and never holds the secret.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from entsync.kafka_clients import kafka_params
from entsync.settings import ConfigurationError, Settings, load_settings
from tests.certs import Pki, write_pki

SECRET = "hunter2-not-for-logs"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return write_pki(tmp_path_factory.mktemp("pki"))


def settings(**values: Any) -> Settings:
    values.setdefault("kafka_bootstrap", "kafka-1:9093,kafka-2:9093")
    return Settings(state_dir=Path("/nonexistent"), **values)


def sasl(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "entsync",
        "kafka_sasl_password": SecretStr(SECRET),
    }
    return settings(**{**base, **values})


def test_defaults_are_plaintext_with_topics_kept_forever() -> None:
    params = kafka_params(settings())
    assert params.servers == ["kafka-1:9093", "kafka-2:9093"]
    assert clients.auth_options(params) == {"security_protocol": "PLAINTEXT"}
    assert clients.topic_configs(params) == {"cleanup.policy": "delete", "retention.ms": "-1"}
    options = clients.faust_options(params)
    assert options["broker"] == ["kafka://kafka-1:9093", "kafka://kafka-2:9093"]
    assert options["broker_credentials"] is None
    assert options["topic_replication_factor"] == 1


def test_topic_settings_reach_created_topics_and_changelogs() -> None:
    params = kafka_params(
        settings(
            kafka_replication_factor=3,
            kafka_min_insync_replicas=2,
            kafka_retention_ms=30 * 86_400_000,
        )
    )
    topic = clients.new_topic(params, "entsync.feed.v1", 4)
    assert (topic.num_partitions, topic.replication_factor) == (4, 3)
    assert topic.topic_configs == {
        "cleanup.policy": "delete",
        "retention.ms": str(30 * 86_400_000),
        "min.insync.replicas": "2",
    }
    changelog = clients.new_topic(params, "entsync-entities-changelog", 4, compacted=True)
    assert changelog.topic_configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
    # faust compacts its changelogs itself; the rest comes with them
    assert clients.changelog_configs(params) == {"min.insync.replicas": "2"}
    assert clients.faust_options(params)["topic_replication_factor"] == 3


async def test_sasl_ssl_reaches_every_aiokafka_client(pki: Pki) -> None:
    params = kafka_params(sasl(kafka_security_protocol="sasl_ssl", kafka_ssl_ca_file=pki.ca_file))
    assert params.security_protocol == "SASL_SSL"
    producer = clients.producer(params, acks="all")
    consumer = clients.consumer(params, enable_auto_commit=False)
    for inner in (producer.client, consumer._client):
        assert inner._security_protocol == "SASL_SSL"
        assert inner._sasl_mechanism == "SCRAM-SHA-512"
        assert inner._sasl_plain_username == "entsync"
        assert inner._sasl_plain_password == SECRET
        assert isinstance(inner._ssl_context, ssl.SSLContext)
        assert inner._bootstrap_servers == ["kafka-1:9093", "kafka-2:9093"]
    admin = clients.admin(params)
    assert admin._client._sasl_mechanism == "SCRAM-SHA-512"
    assert admin._client._ssl_context is clients.ssl_context(params)
    await admin.close()
    await consumer.stop()
    await producer.stop()


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_reaches_faust_as_its_clients_see_it(protocol: str, mechanism: str) -> None:
    params = kafka_params(sasl(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism))
    app = faust.App("entsync-test", **clients.faust_options(params))
    # What faust's producer, consumer and topic creation pass to aiokafka.
    given = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    ours = clients.auth_options(params)
    assert given["security_protocol"] == ours["security_protocol"] == protocol
    assert given["sasl_mechanism"] == mechanism
    assert given["sasl_plain_username"] == "entsync"
    assert given["sasl_plain_password"] == SECRET
    assert (given["ssl_context"] is not None) == (protocol == "SASL_SSL")
    assert SECRET not in repr(app.conf.broker_credentials)


def test_ssl_reaches_faust_with_the_same_context(pki: Pki) -> None:
    params = kafka_params(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=pki.ca_file,
            kafka_ssl_cert_file=pki.cert_file,
            kafka_ssl_key_file=pki.key_file,
        )
    )
    app = faust.App("entsync-test", **clients.faust_options(params))
    given = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert given == {"security_protocol": "SSL", "ssl_context": clients.ssl_context(params)}
    context = clients.ssl_context(params)
    assert context is not None
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_hostname_check_can_be_switched_off_but_not_verification(pki: Pki) -> None:
    params = kafka_params(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=pki.ca_file,
            kafka_ssl_check_hostname=False,
        )
    )
    context = clients.ssl_context(params)
    assert context is not None
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_ssl_without_ca_file_uses_the_system_cas() -> None:
    context = clients.ssl_context(kafka_params(settings(kafka_security_protocol="SSL")))
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


def test_the_password_is_not_in_the_params_repr() -> None:
    params = kafka_params(sasl())
    assert SECRET not in repr(params)
    assert SECRET not in str(params)


def _refused(tmp_path: Path, pki: Pki) -> list[tuple[Settings, str]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    locked = write_pki(tmp_path / "locked", key_password=b"pass phrase")
    ssl_with = {"kafka_security_protocol": "SSL"}
    return [
        (settings(kafka_security_protocol="TLS"), "ENTSYNC_KAFKA_SECURITY_PROTOCOL"),
        (sasl(kafka_sasl_mechanism="GSSAPI"), "ENTSYNC_KAFKA_SASL_MECHANISM is 'GSSAPI'"),
        (sasl(kafka_sasl_mechanism="SCRAM-SHA-1"), "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        (sasl(kafka_sasl_mechanism=None), "set ENTSYNC_KAFKA_SASL_MECHANISM"),
        (sasl(kafka_sasl_username=None), "needs ENTSYNC_KAFKA_SASL_USERNAME"),
        (sasl(kafka_sasl_password=None), "needs ENTSYNC_KAFKA_SASL_PASSWORD"),
        (sasl(kafka_security_protocol="SSL"), "ENTSYNC_KAFKA_SASL_MECHANISM, "),
        (
            settings(kafka_sasl_password=SecretStr(SECRET)),
            "ENTSYNC_KAFKA_SASL_PASSWORD set but ENTSYNC_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (settings(kafka_ssl_ca_file=pki.ca_file), "ENTSYNC_KAFKA_SSL_CA_FILE set but"),
        (settings(kafka_ssl_check_hostname=False), "ENTSYNC_KAFKA_SSL_CHECK_HOSTNAME set but"),
        (
            settings(**ssl_with, kafka_ssl_ca_file=tmp_path / "missing.pem"),
            "ENTSYNC_KAFKA_SSL_CA_FILE names",
        ),
        (settings(**ssl_with, kafka_ssl_ca_file=garbage), "not usable"),
        (settings(**ssl_with, kafka_ssl_key_file=pki.key_file), "without ENTSYNC_KAFKA_SSL_CERT"),
        (
            settings(**ssl_with, kafka_ssl_cert_file=pki.cert_file, kafka_ssl_key_file=garbage),
            "not usable",
        ),
        (
            settings(
                **ssl_with,
                kafka_ssl_cert_file=locked.cert_file,
                kafka_ssl_key_file=locked.key_file,
            ),
            "the key file is encrypted",
        ),
        (
            settings(kafka_replication_factor=2, kafka_min_insync_replicas=3),
            "ENTSYNC_KAFKA_MIN_INSYNC_REPLICAS (3) is above",
        ),
        (settings(kafka_retention_ms=0), "ENTSYNC_KAFKA_RETENTION_MS is 0"),
        (settings(kafka_bootstrap=None), "ENTSYNC_KAFKA_BOOTSTRAP"),
    ]


def test_wrong_settings_fail_naming_the_setting_never_the_secret(tmp_path: Path, pki: Pki) -> None:
    for wrong, expected in _refused(tmp_path, pki):
        with pytest.raises(ConfigurationError) as caught:
            kafka_params(wrong)
        message = str(caught.value)
        assert expected in message, message
        assert SECRET not in message


def test_invalid_values_fail_at_load_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ENTSYNC_CONFIG", raising=False)
    monkeypatch.setenv("ENTSYNC_KAFKA_REPLICATION_FACTOR", SECRET)
    monkeypatch.setenv("ENTSYNC_KAFKA_RETENTION_MS", "-7")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(state_dir=tmp_path)
    message = str(caught.value)
    assert "ENTSYNC_KAFKA_REPLICATION_FACTOR" in message
    assert "ENTSYNC_KAFKA_RETENTION_MS" in message
    assert SECRET not in message


def test_params_built_by_hand_stay_plaintext_for_the_local_broker() -> None:
    params = KafkaParams("127.0.0.1:9092")
    assert clients.ssl_context(params) is None
    assert clients.client_options(params, {"acks": "all"}) == {
        "acks": "all",
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }

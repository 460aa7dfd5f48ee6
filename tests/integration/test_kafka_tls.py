"""Kafka over TLS, for real: the local broker behind a TLS terminator (Debian's stunnel4).

The broker listens in clear on a port of its own and advertises the terminator's address, so
every connection a client makes (bootstrap, then the broker it is told about) goes through TLS,
with a CA and server certificate the test generates. The right CA works end to end (publish and
consume; ``entsync run``: ingest, then the faust worker until idle); a CA the client does not
know and a certificate for another host name are refused. SASL cannot be exercised here (the
bundled broker's SASL did not work): tests/unit/test_kafka_clients.py checks what reaches
aiokafka and faust.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from connectors.aaf.generator import GeneratorConfig, generate
from connectors.ldap import LdapParams
from connectors.services import broker
from connectors.services.process import free_port, spawn_detached, stop_pid, tcp_answers
from connectors.stream import clients
from connectors.stream.clients import KafkaParams
from connectors.stream.reader import read_topic
from connectors.stream.topics import ensure_topics
from entsync.kafka_clients import kafka_params
from entsync.settings import Settings
from tests.certs import Pki, write_pki
from tests.integration.test_pipeline_e2e import AUDIT_DIGEST_KEY, Pipeline, worker_counts

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
REFUSAL_TIMEOUT_S = 30


def _stunnel() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        pytest.fail("stunnel4 is not installed: run ./dev setup (apt-get install stunnel4)")
    return found


@dataclass(frozen=True)
class Terminator:
    """A stunnel process: TLS on ``port``, clear text to the broker."""

    pid: int
    port: int
    config: Path

    def stop(self) -> None:
        stop_pid(self.pid, marker=str(self.config))


def start_terminator(
    directory: Path,
    pki: Pki,
    broker_port: int,
    port: int | None = None,
    client_ca: Path | None = None,
) -> Terminator:
    """``client_ca``: clients must show a certificate it issued (mutual TLS)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = directory / "stunnel.conf"
    config.write_text(
        "foreground = yes\npid =\n"
        "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
        f"[kafka]\naccept = {HOST}:{port}\nconnect = {HOST}:{broker_port}\n"
        f"cert = {pki.cert_file}\nkey = {pki.key_file}\n"
        + (f"verifyChain = yes\nCAfile = {client_ca}\n" if client_ca else "")
    )
    pid = spawn_detached([_stunnel(), str(config)], log_path=directory / "log", cwd=directory)
    terminator = Terminator(pid, port, config)
    deadline = time.monotonic() + 10
    while not tcp_answers(port):
        if time.monotonic() > deadline:
            terminator.stop()
            raise RuntimeError(f"stunnel did not listen: {(directory / 'log').read_text()}")
        time.sleep(0.05)
    return terminator


@dataclass(frozen=True)
class TlsBroker:
    pki: Pki
    terminator: Terminator
    broker_port: int

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.terminator.port}"

    def env(self, ca_file: Path | None = None) -> dict[str, str]:
        return {
            "ENTSYNC_KAFKA_BOOTSTRAP": self.bootstrap,
            "ENTSYNC_KAFKA_SECURITY_PROTOCOL": "SSL",
            "ENTSYNC_KAFKA_SSL_CA_FILE": str(ca_file or self.pki.ca_file),
        }


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    root = tmp_path_factory.mktemp("kafka-tls")
    pki = write_pki(root / "pki", hosts=("localhost",), ips=(HOST,))
    layout = broker.BrokerLayout(root / "broker")
    layout.state_dir.mkdir()
    broker_port, tls_port = free_port(), free_port()
    pid = broker.start(broker.find_broker(), layout, broker_port, advertised=f"{HOST}:{tls_port}")
    terminator: Terminator | None = None
    try:
        broker.wait_ready(port=broker_port, pid=pid, layout=layout, timeout=20)
        terminator = start_terminator(root / "stunnel", pki, broker_port, tls_port)
        yield TlsBroker(pki, terminator, broker_port)
    finally:
        if terminator is not None:
            terminator.stop()
        stop_pid(pid, marker=broker.marker(broker_port))


def ssl_params(tls: TlsBroker, **values: Any) -> KafkaParams:
    values.setdefault("kafka_bootstrap", tls.bootstrap)
    values.setdefault("kafka_ssl_ca_file", tls.pki.ca_file)
    return kafka_params(Settings(kafka_security_protocol="SSL", **values))


async def _handshake(port: int, params: KafkaParams, host: str = HOST) -> None:
    """A TLS handshake with the same context the Kafka clients use."""
    _, writer = await asyncio.open_connection(
        host, port, ssl=clients.ssl_context(params), server_hostname=host
    )
    writer.close()
    await writer.wait_closed()


async def _refused(
    port: int, params: KafkaParams, host: str = HOST
) -> ssl.SSLCertVerificationError:
    producer = clients.producer(params, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), REFUSAL_TIMEOUT_S)
    await producer.stop()
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await _handshake(port, params, host)
    return caught.value


async def test_the_right_ca_publishes_and_consumes(tls_broker: TlsBroker) -> None:
    params = ssl_params(tls_broker)
    topic = "entsync.tls-check.v1"
    await ensure_topics(params, 4, extra=[topic])
    producer = clients.producer(params, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    finally:
        await producer.stop()
    records = await read_topic(params, topic)
    assert sorted(r.value for r in records if r.value) == [f"v{i}".encode() for i in range(5)]


def test_ingest_and_worker_run_over_tls(
    tls_broker: TlsBroker,
    clean_directory: LdapParams,
    local_services: Any,
    tmp_path: Path,
) -> None:
    extract = generate(tmp_path / "extract", GeneratorConfig(schools=1, pupils_per_school=12))
    files = [str(p) for k, p in sorted(extract.files.items()) if k != "delta"]
    env = {
        **os.environ,
        **tls_broker.env(),
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_LDAP_URL": clean_directory.url,
        "ENTSYNC_LDAP_BIND_DN": clean_directory.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": clean_directory.password,
        "ENTSYNC_LDAP_BASE_DN": local_services.base_dn,
        "ENTSYNC_AUDIT_DIGEST_KEY": AUDIT_DIGEST_KEY,
        "ENTSYNC_LOG_FORMAT": "json",
    }
    pipeline = Pipeline(
        env=env,
        bootstrap=tls_broker.bootstrap,
        ldap=clean_directory,
        base_dn=local_services.base_dn,
    )
    feed_events, changes = worker_counts(pipeline.ok("run", *files, "--timeout", "240"))
    assert feed_events > 0 and changes > 0
    # faust created its table changelogs through the terminator too, compacted.
    changelogs = asyncio.run(read_topic(ssl_params(tls_broker), "entsync-entities-changelog"))
    assert changelogs


async def test_an_unknown_ca_is_refused(tls_broker: TlsBroker, tmp_path: Path) -> None:
    other = write_pki(tmp_path / "other-ca", hosts=("localhost",), ips=(HOST,))
    params = ssl_params(tls_broker, kafka_ssl_ca_file=other.ca_file)
    refusal = await _refused(tls_broker.terminator.port, params)
    assert refusal.verify_code == 20, refusal.verify_message  # unable to get local issuer


async def test_a_certificate_for_another_host_is_refused(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    # Issued by a CA the client trusts, but for another name: only the host check refuses it.
    elsewhere = write_pki(tmp_path / "elsewhere", hosts=("kafka.elsewhere.example",), ips=())
    terminator = start_terminator(tmp_path / "stunnel", elsewhere, tls_broker.broker_port)
    try:
        # by IP address (the certificate names none)...
        at = f"{HOST}:{terminator.port}"
        params = ssl_params(tls_broker, kafka_bootstrap=at, kafka_ssl_ca_file=elsewhere.ca_file)
        refusal = await _refused(terminator.port, params)
        assert refusal.verify_code == 64, refusal.verify_message  # IP address mismatch
        # ... and by name
        named = ssl_params(
            tls_broker,
            kafka_bootstrap=f"localhost:{terminator.port}",
            kafka_ssl_ca_file=elsewhere.ca_file,
        )
        refusal = await _refused(terminator.port, named, "localhost")
        assert refusal.verify_code == 62, refusal.verify_message  # hostname mismatch
        # Switched off, the same certificate passes: the refusal above was the host name.
        unchecked = ssl_params(
            tls_broker,
            kafka_bootstrap=at,
            kafka_ssl_ca_file=elsewhere.ca_file,
            kafka_ssl_check_hostname=False,
        )
        await _handshake(terminator.port, unchecked)
    finally:
        terminator.stop()


def test_a_wrong_sasl_mechanism_stops_the_worker_at_start(
    local_services: Any, tmp_path: Path
) -> None:
    secret = "sasl-secret-never-printed"
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),
        "ENTSYNC_KAFKA_BOOTSTRAP": local_services.kafka_bootstrap,
        "ENTSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ENTSYNC_KAFKA_SASL_MECHANISM": "GSSAPI",
        "ENTSYNC_KAFKA_SASL_USERNAME": "entsync",
        "ENTSYNC_KAFKA_SASL_PASSWORD": secret,
    }
    pipeline = Pipeline(env=env, bootstrap="", ldap=local_services.ldap_params, base_dn="")
    started = time.monotonic()
    done = pipeline.cli("worker", "--until-idle", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "ENTSYNC_KAFKA_SASL_MECHANISM" in done.stderr
    assert secret not in done.stdout + done.stderr
    assert time.monotonic() - started < 30


async def test_a_client_certificate_is_shown_when_the_broker_asks(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    client = write_pki(tmp_path / "client", hosts=("entsync-worker",), ips=())
    terminator = start_terminator(
        tmp_path / "stunnel", tls_broker.pki, tls_broker.broker_port, client_ca=client.ca_file
    )
    try:
        at = f"{HOST}:{terminator.port}"
        # Without one the terminator closes the connection during the handshake.
        anonymous = clients.producer(ssl_params(tls_broker, kafka_bootstrap=at))
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(anonymous.start(), REFUSAL_TIMEOUT_S)
        await anonymous.stop()
        # With it, the bootstrap goes through (then the advertised terminator, which asks none).
        params = ssl_params(
            tls_broker,
            kafka_bootstrap=at,
            kafka_ssl_cert_file=client.cert_file,
            kafka_ssl_key_file=client.key_file,
        )
        await _handshake(terminator.port, params)
        producer = clients.producer(params)
        await asyncio.wait_for(producer.start(), REFUSAL_TIMEOUT_S)
        await producer.stop()
    finally:
        terminator.stop()

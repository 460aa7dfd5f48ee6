"""LDAP over TLS against a real slapd of its own, given a CA and a server certificate this test
makes: ldaps:// and StartTLS bind, search and write with the right CA; an unknown CA (or none:
the system's trust store) and a wrong host name are refused, at once and not retried; a server
without TLS refuses StartTLS. Both clients: ldap3 (reads, admin, the ldap3 writer) and
python-ldap (the default writer). Every connection here comes from the settings through
:mod:`entsync.ldap_clients`, as in production."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.ldap import DirectoryWriter, PipelinedWriter, RetryPolicy, read_entry
from connectors.ldap.connection import LdapParams, connection
from connectors.ldap.directory import ensure_base_dit
from connectors.ldap.errors import DirectoryTlsError
from connectors.services import slapd
from connectors.services.process import free_port, pid_alive, stop_pid
from entsync.exit_codes import ExitCode
from entsync.ldap_clients import directory_writer, ldap_params
from entsync.settings import Settings
from sync.ops import AddEntry, ModifyEntry
from tests.tls_certs import TestCA

pytestmark = pytest.mark.integration

BASE = "dc=tls,dc=example"
ENTSYNC = str(Path(sys.executable).parent / "entsync")


@dataclass(frozen=True)
class TlsSlapd:
    port: int  # ldap:// (StartTLS offered)
    ldaps_port: int
    password: str = field(repr=False)
    ca_file: Path  # the CA that signed the server's certificate (for "localhost" only: no IP)
    unknown_ca_file: Path  # a CA that signed nothing here
    state_dir: Path  # no services.json: nothing filled in from local services

    def settings(self, url: str, **more: Any) -> Settings:
        return Settings(
            state_dir=self.state_dir,
            ldap_url=url,
            ldap_bind_dn=f"cn=admin,{BASE}",
            ldap_password=SecretStr(self.password),
            ldap_base_dn=BASE,
            **more,
        )


def _start(
    layout: slapd.SlapdLayout,
    started: list[tuple[int, str]],
    tls: slapd.SlapdTls | None = None,
    ldaps_port: int | None = None,
) -> tuple[int, str]:
    """Start a slapd (on loopback; plain bind checks it is up); return (port, password)."""
    password = slapd.prepare(layout, base_dn=BASE, tls=tls)
    port = free_port()
    pid = slapd.start(slapd.find_slapd(), layout, port, ldaps_port=ldaps_port)
    started.append((pid, slapd.marker(layout)))
    plain = LdapParams(slapd.ldap_url(port), f"cn=admin,{BASE}", password)
    slapd.wait_ready(plain, pid=pid, layout=layout, timeout=20)
    return port, password


def _host_name() -> str:
    """This machine's name as libldap finds it: it checks a URL naming localhost against it."""
    try:
        return socket.gethostbyname_ex(socket.gethostname())[0]
    except OSError:
        return socket.gethostname()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsSlapd, int]]:
    """The TLS slapd, and the port of a slapd without TLS; both stopped by pid at the end."""
    root = tmp_path_factory.mktemp("ldap-tls")
    ca = TestCA(root / "ca")
    unknown = TestCA(root / "unknown-ca", name="some other CA")
    cert = ca.issue("server", "localhost", _host_name())  # both clients' view of "localhost"
    started: list[tuple[int, str]] = []
    try:
        ldaps_port = free_port()
        port, password = _start(
            slapd.SlapdLayout(root / "slapd-tls"),
            started,
            tls=slapd.SlapdTls(ca.ca_file, cert.cert_file, cert.key_file),
            ldaps_port=ldaps_port,
        )
        plain_port, _ = _start(slapd.SlapdLayout(root / "slapd-plain"), started)
        (root / "state").mkdir()
        yield (
            TlsSlapd(port, ldaps_port, password, ca.ca_file, unknown.ca_file, root / "state"),
            plain_port,
        )
    finally:
        for pid, marker in started:
            stop_pid(pid, marker=marker, timeout=10)
            assert not pid_alive(pid, marker)


@pytest.fixture(scope="module")
def server(servers: tuple[TlsSlapd, int]) -> TlsSlapd:
    return servers[0]


def _ways(server: TlsSlapd, host: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """ldaps:// and StartTLS to ``host``: (URL, the settings beyond it)."""
    return {
        "ldaps": (f"ldaps://{host}:{server.ldaps_port}", {}),
        "starttls": (f"ldap://{host}:{server.port}", {"ldap_starttls": True}),
    }


WAYS = ["ldaps", "starttls"]


def _open(params: LdapParams) -> None:
    with connection(params):
        pass


@pytest.mark.parametrize("way", WAYS)
def test_the_right_ca_binds_searches_and_writes(server: TlsSlapd, way: str) -> None:
    url, more = _ways(server, "localhost")[way]
    params = ldap_params(server.settings(url, ldap_tls_ca_file=server.ca_file, **more))
    ensure_base_dit(params, BASE)  # writes over TLS (idempotent)
    with connection(params) as conn:
        assert conn.server.ssl is (way == "ldaps")
        assert conn.tls_started is (way == "starttls")
        assert conn.extend.standard.who_am_i() == f"dn:cn=admin,{BASE}"
        assert conn.search(f"ou=people,{BASE}", "(objectClass=organizationalUnit)")
        assert len(conn.entries) == 1


async def test_the_writer_in_its_processes_writes_over_tls(server: TlsSlapd) -> None:
    """The ldap3 writer's own processes get the TLS parameters too (they are pickled to them)."""
    url, more = _ways(server, "localhost")["starttls"]
    settings = server.settings(
        url,
        ldap_tls_ca_file=server.ca_file,
        ldap_writer="ldap3",
        ldap_writer_processes=1,
        **more,
    )
    params = ldap_params(settings)
    ensure_base_dit(params, BASE)
    dn = f"ou=tls-check,ou=people,{BASE}"
    unit = {"objectClass": ("organizationalUnit",), "ou": ("tls-check",)}
    async with directory_writer(settings) as writer:
        await writer.apply([AddEntry(dn, unit)])
        await writer.apply([ModifyEntry(dn, {"description": ("written over TLS",)}, unit)])
    entry = read_entry(params, dn)
    assert entry is not None and entry.get("description") == ("written over TLS",)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("ca", ["unknown", "system"])
def test_an_unknown_ca_is_refused(server: TlsSlapd, way: str, ca: str) -> None:
    """Not signed by a CA we trust: refused, also with no CA file (the system's trust store
    is used then, never "no validation")."""
    url, more = _ways(server, "localhost")[way]
    ca_file = server.unknown_ca_file if ca == "unknown" else None
    params = ldap_params(server.settings(url, ldap_tls_ca_file=ca_file, **more))
    with pytest.raises(DirectoryTlsError, match="certificate verify failed") as refused:
        _open(params)
    assert server.password not in str(refused.value)


@pytest.mark.parametrize("way", WAYS)
def test_a_wrong_host_name_is_refused(server: TlsSlapd, way: str) -> None:
    """The certificate names "localhost"; the same server reached as 127.0.0.1 is refused."""
    url, more = _ways(server, "127.0.0.1")[way]
    params = ldap_params(server.settings(url, ldap_tls_ca_file=server.ca_file, **more))
    wrong_name = re.escape("certificate is not valid for '127.0.0.1'")
    with pytest.raises(DirectoryTlsError, match=wrong_name):
        _open(params)


async def test_the_ldap3_writer_does_not_retry_a_refused_certificate(server: TlsSlapd) -> None:
    """A refused certificate does not heal: the write fails at once, not after the budget."""
    url, _ = _ways(server, "localhost")["ldaps"]
    params = ldap_params(server.settings(url, ldap_tls_ca_file=server.unknown_ca_file))
    started = time.monotonic()
    async with DirectoryWriter(params, retry=RetryPolicy(total=30.0)) as writer:
        with pytest.raises(DirectoryTlsError):
            await writer.apply([AddEntry(f"ou=never,{BASE}", {"ou": ("never",)})])
    assert time.monotonic() - started < 10


# -- the python-ldap writer (libldap's TLS) ---------------------------------------------------


async def _write(settings: Settings, name: str) -> None:
    """One entry added and modified by the worker's writer, as the settings make it."""
    dn = f"ou={name},ou=people,{BASE}"
    unit = {"objectClass": ("organizationalUnit",), "ou": (name,)}
    async with directory_writer(settings, retry=RetryPolicy(total=30.0)) as writer:
        assert isinstance(writer, PipelinedWriter)
        await writer.apply([AddEntry(dn, unit)])
        await writer.apply([ModifyEntry(dn, {"description": ("over TLS",)}, unit)])


@pytest.mark.parametrize("way", WAYS)
async def test_the_python_ldap_writer_writes_over_tls(server: TlsSlapd, way: str) -> None:
    url, more = _ways(server, "localhost")[way]
    settings = server.settings(url, ldap_tls_ca_file=server.ca_file, **more)
    params = ldap_params(settings)
    ensure_base_dit(params, BASE)
    await _write(settings, f"pyldap-{way}")
    entry = read_entry(params, f"ou=pyldap-{way},ou=people,{BASE}")
    assert entry is not None and entry.get("description") == ("over TLS",)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("ca", "host", "reason"),
    [
        ("unknown", "localhost", "certificate verify failed"),
        ("system", "localhost", "certificate verify failed"),
        ("right", "127.0.0.1", "certificate is not valid for '127.0.0.1'"),
    ],
)
async def test_the_python_ldap_writer_refuses_what_is_not_trusted(
    server: TlsSlapd, way: str, ca: str, host: str, reason: str
) -> None:
    """Refused at once (not after the retry budget), saying why, without the password."""
    url, more = _ways(server, host)[way]
    ca_file = {"unknown": server.unknown_ca_file, "system": None, "right": server.ca_file}[ca]
    settings = server.settings(url, ldap_tls_ca_file=ca_file, **more)
    started = time.monotonic()
    with pytest.raises(DirectoryTlsError, match=re.escape(reason)) as refused:
        await _write(settings, "never")
    assert time.monotonic() - started < 10
    assert server.password not in str(refused.value)


async def test_the_python_ldap_writer_is_refused_starttls(
    servers: tuple[TlsSlapd, int],
) -> None:
    server, plain_port = servers
    settings = server.settings(f"ldap://localhost:{plain_port}", ldap_starttls=True)
    with pytest.raises(DirectoryTlsError, match="StartTLS refused"):
        await _write(settings, "never")


def test_a_server_without_tls_refuses_starttls(servers: tuple[TlsSlapd, int]) -> None:
    server, plain_port = servers
    params = ldap_params(server.settings(f"ldap://localhost:{plain_port}", ldap_starttls=True))
    with pytest.raises(DirectoryTlsError, match="StartTLS"):
        _open(params)


def test_the_directory_command_names_the_refusal(server: TlsSlapd, tmp_path: Path) -> None:
    """What an operator sees: the directory unreachable (exit 6), why, and no password."""
    url, _ = _ways(server, "localhost")["ldaps"]
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path),
        "ENTSYNC_LDAP_URL": url,
        "ENTSYNC_LDAP_BIND_DN": f"cn=admin,{BASE}",
        "ENTSYNC_LDAP_PASSWORD": server.password,
        "ENTSYNC_LDAP_BASE_DN": BASE,
        "ENTSYNC_LDAP_TLS_CA_FILE": str(server.unknown_ca_file),
    }
    done = subprocess.run(
        [ENTSYNC, "directory", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == ExitCode.DIRECTORY_UNREACHABLE, output
    assert "certificate verify failed" in output
    assert server.password not in output
    env["ENTSYNC_LDAP_TLS_CA_FILE"] = str(server.ca_file)
    done = subprocess.run(
        [ENTSYNC, "directory", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr

"""LDAP security settings, checked before any connection (no network): a clear-text bind off
this machine is refused unless allowed, TLS settings must make sense, and TLS always means a
validated certificate. TLS against a real slapd: tests/integration/test_ldap_tls.py."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ldap3.core import exceptions as ldap_exc
from pydantic import SecretStr

from connectors.ldap.connection import LdapParams, classify, tls_failure, tls_of
from entsync.ldap_clients import is_loopback, ldap_params, security_problem
from entsync.settings import ConfigurationError, Settings
from tests.tls_certs import TestCA

PASSWORD = "not-in-any-message-7Qz"


def problem(
    url: str, *, start_tls: bool = False, ca: Path | None = None, allow: bool = False
) -> str | None:
    return security_problem(url, start_tls=start_tls, ca_file=ca, allow_cleartext=allow)


@pytest.mark.parametrize(
    "url",
    [
        "ldap://127.0.0.1:389",
        "ldap://127.9.8.7",
        "ldap://localhost:1389",
        "LDAP://LOCALHOST",
        "ldap://[::1]:389",
        "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi",
    ],
)
def test_clear_text_to_this_machine_is_allowed(url: str) -> None:
    assert problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "ldap://ldap.ac-example.fr",
        "ldap://ldap.ac-example.fr:389",
        "ldap://10.0.0.12",
        "ldap://[2001:db8::1]:389",
        "ldap://localhost.attacker.example",  # a name, not loopback
        "ldap://0.0.0.0:389",
    ],
)
def test_clear_text_bind_elsewhere_is_refused(url: str) -> None:
    message = problem(url)
    assert message is not None
    assert "clear text" in message
    for way_out in ("ldaps://", "ENTSYNC_LDAP_STARTTLS", "ENTSYNC_LDAP_ALLOW_CLEARTEXT_BIND"):
        assert way_out in message


def test_clear_text_elsewhere_when_explicitly_allowed() -> None:
    assert problem("ldap://ldap.ac-example.fr", allow=True) is None


@pytest.mark.parametrize(
    ("url", "start_tls"),
    [("ldaps://ldap.ac-example.fr", False), ("ldap://ldap.ac-example.fr", True)],
)
def test_encrypted_connections_need_no_permission(url: str, start_tls: bool) -> None:
    assert problem(url, start_tls=start_tls, ca=Path("/etc/ssl/ca.pem")) is None


@pytest.mark.parametrize(
    ("url", "start_tls", "ca", "expected"),
    [
        ("ldaps://ldap.ac-example.fr", True, None, "ldap:// URLs only"),
        ("ldapi://%2Frun%2Fldapi", True, None, "ldap:// URLs only"),
        ("ldap://127.0.0.1", False, Path("ca.pem"), "not encrypted"),
        ("ldap.ac-example.fr:389", False, None, "must start with"),
        ("http://ldap.ac-example.fr", False, None, "must start with"),
    ],
)
def test_contradictory_settings_are_refused(
    url: str, start_tls: bool, ca: Path | None, expected: str
) -> None:
    message = problem(url, start_tls=start_tls, ca=ca, allow=True)
    assert message is not None and expected in message


@given(st.ip_addresses(v=4) | st.ip_addresses(v=6))
def test_any_address_is_refused_in_clear_unless_loopback(address: ipaddress._BaseAddress) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    refused = problem(f"ldap://{host}:389") is not None
    assert refused is not address.is_loopback
    assert is_loopback(str(address)) is address.is_loopback
    assert problem(f"ldaps://{host}:636") is None


def settings(tmp_path: Path, url: str, **more: object) -> Settings:
    # state_dir without services.json: nothing filled from local services.
    return Settings(
        state_dir=tmp_path,
        ldap_url=url,
        ldap_bind_dn="cn=entsync,ou=services,dc=ac-example,dc=fr",
        ldap_password=SecretStr(PASSWORD),
        **more,  # type: ignore[arg-type]
    )


def test_the_factory_refuses_at_start_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        ldap_params(settings(tmp_path, "ldap://ldap.ac-example.fr"))
    assert "clear text" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_the_settings_reach_the_parameters(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca").ca_file
    params = ldap_params(
        settings(tmp_path, "ldap://ldap.ac-example.fr", ldap_starttls=True, ldap_tls_ca_file=ca)
    )
    assert (params.start_tls, params.tls_ca_file) == (True, str(ca))
    assert PASSWORD not in repr(params)
    allowed = ldap_params(
        settings(tmp_path, "ldap://ldap.ac-example.fr", ldap_allow_cleartext_bind=True)
    )
    assert not allowed.uses_tls and tls_of(allowed) is None


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTSYNC_LDAP_STARTTLS", "true")
    monkeypatch.setenv("ENTSYNC_LDAP_ALLOW_CLEARTEXT_BIND", "false")
    monkeypatch.setenv("ENTSYNC_LDAP_TLS_CA_FILE", str(tmp_path / "ca.pem"))
    loaded = Settings()
    assert loaded.ldap_starttls and not loaded.ldap_allow_cleartext_bind
    assert loaded.ldap_tls_ca_file == tmp_path / "ca.pem"


@pytest.mark.parametrize("content", [None, "", "-----BEGIN CERTIFICATE-----\nnope\n"])
def test_a_missing_or_unusable_ca_file_is_refused(tmp_path: Path, content: str | None) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    with pytest.raises(ConfigurationError, match="ENTSYNC_LDAP_TLS_CA_FILE"):
        ldap_params(settings(tmp_path, "ldaps://ldap.ac-example.fr", ldap_tls_ca_file=ca))


@pytest.mark.parametrize(
    ("url", "start_tls"), [("ldaps://ldap.ac-example.fr:636", False), ("ldap://h", True)]
)
def test_tls_always_requires_a_valid_certificate(url: str, start_tls: bool) -> None:
    tls = tls_of(LdapParams(url, "cn=x", PASSWORD, start_tls=start_tls))
    assert tls is not None and tls.validate == ssl.CERT_REQUIRED


def _merged(outer: type[Exception], inner: Exception) -> Exception:
    """What ldap3 raises: its class merged with the original error's (see tls_failure)."""
    merged = type(outer.__name__, (outer, type(inner)), {})
    return merged(f"socket ssl wrapping error: {inner}")


def test_an_untrusted_certificate_is_a_tls_failure_not_a_lost_connection() -> None:
    inner = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: bad (_ssl.c:1006)"
    )
    exc = _merged(ldap_exc.LDAPSocketOpenError, inner)
    assert tls_failure(exc) == "certificate verify failed: bad"
    assert classify(exc) is None
    # Several addresses: ldap3 lists each one's error.
    several = ldap_exc.LDAPSocketOpenError(
        "unable to open socket",
        [(ConnectionRefusedError(111, "refused"), ("::1", 636)), (exc, ("127.0.0.1", 636))],
    )
    assert tls_failure(several) == "certificate verify failed: bad"


def test_lost_connections_stay_transient() -> None:
    eof = _merged(ldap_exc.LDAPSocketOpenError, ssl.SSLEOFError(8, "EOF"))
    assert tls_failure(eof) is None and classify(eof) is not None
    on_open_connection = _merged(ldap_exc.LDAPSocketReceiveError, ssl.SSLError(1, "bad record"))
    assert tls_failure(on_open_connection) is None and classify(on_open_connection) is not None
    refused = ldap_exc.LDAPSocketOpenError("unable to open socket", [])
    assert tls_failure(refused) is None and classify(refused) is not None


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("command", [["directory", "check"], ["worker", "--until-idle"]])
def test_commands_refuse_a_clear_text_bind_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from typer.testing import CliRunner

    from entsync.cli import app

    # TEST-NET addresses: never contacted, the refusal comes first.
    monkeypatch.setenv("ENTSYNC_LDAP_URL", "ldap://192.0.2.10:389")
    monkeypatch.setenv("ENTSYNC_LDAP_BIND_DN", "cn=entsync,dc=ac-example,dc=fr")
    monkeypatch.setenv("ENTSYNC_LDAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("ENTSYNC_KAFKA_BOOTSTRAP", "192.0.2.11:9092")
    result = CliRunner().invoke(app, [*command, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "clear text" in result.output and "192.0.2.10" in result.output
    assert PASSWORD not in result.output

"""Every LDAP client entsync opens is built here, from the settings: connection parameters
(TLS included) and the directory writer. ``connectors.ldap`` takes these plain parameters.

Security is checked before any connection: ``ldaps://`` or StartTLS always validate the
server's certificate (``ENTSYNC_LDAP_TLS_CA_FILE``, else the system's trust store) and host
name; a simple bind in clear text to anything but this machine is refused unless
``ENTSYNC_LDAP_ALLOW_CLEARTEXT_BIND`` says so. Messages name settings, never the password.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from connectors.ldap.batch import BatchWriter, RetryPolicy
from connectors.ldap.connection import LdapParams
from connectors.ldap.pipelined import PipelinedWriter
from connectors.ldap.writer import DirectoryWriter
from entsync.settings import ConfigurationError, Settings

SCHEMES = ("ldap", "ldaps", "ldapi")


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address; names are not resolved (a DNS answer could say
    anything)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_problem(
    url: str, *, start_tls: bool, ca_file: Path | None, allow_cleartext: bool
) -> str | None:
    """What is wrong with this way of connecting (None: nothing). Pure: no file, no network."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return (
            f"ENTSYNC_LDAP_URL must start with ldap://, ldaps:// or ldapi://, not {scheme or url!r}"
        )
    if start_tls and scheme != "ldap":
        return (
            f"ENTSYNC_LDAP_STARTTLS applies to ldap:// URLs only; {scheme}:// is "
            + ("already TLS" if scheme == "ldaps" else "a local socket")
            + ": unset ENTSYNC_LDAP_STARTTLS"
        )
    encrypted = scheme == "ldaps" or start_tls
    if ca_file is not None and not encrypted:
        return (
            "ENTSYNC_LDAP_TLS_CA_FILE is set but the connection is not encrypted: use an "
            "ldaps:// URL or ENTSYNC_LDAP_STARTTLS=true"
        )
    # ldapi:// is a local socket: nothing crosses a network.
    if scheme == "ldap" and not start_tls and not allow_cleartext:
        host = parts.hostname
        if not is_loopback(host):
            return (
                f"refusing to send the bind password in clear text to {host or 'the server'}: "
                "use an ldaps:// URL or ENTSYNC_LDAP_STARTTLS=true (with ENTSYNC_LDAP_TLS_CA_FILE "
                "for a private CA), or set ENTSYNC_LDAP_ALLOW_CLEARTEXT_BIND=true if the network "
                "path is protected otherwise"
            )
    return None


def _check_ca_file(path: Path) -> None:
    """The CA file must hold at least one certificate that Python's ssl accepts."""
    if not path.is_file():
        raise ConfigurationError(f"ENTSYNC_LDAP_TLS_CA_FILE names {str(path)!r}, not a file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"ENTSYNC_LDAP_TLS_CA_FILE {str(path)!r} holds no usable PEM certificate "
            f"({type(exc).__name__})"
        ) from exc


def ldap_params(settings: Settings) -> LdapParams:
    """The directory's connection parameters; ConfigurationError if missing or insecure."""
    settings = settings.resolved()
    url, bind_dn, password = settings.require_ldap()
    ca_file = settings.ldap_tls_ca_file
    problem = security_problem(
        url,
        start_tls=settings.ldap_starttls,
        ca_file=ca_file,
        allow_cleartext=settings.ldap_allow_cleartext_bind,
    )
    if problem is not None:
        raise ConfigurationError(problem)
    if ca_file is not None:
        _check_ca_file(ca_file)
    return LdapParams(
        url=url,
        bind_dn=bind_dn,
        password=password,
        start_tls=settings.ldap_starttls,
        tls_ca_file=str(ca_file) if ca_file is not None else None,
    )


def directory_writer(settings: Settings, *, retry: RetryPolicy | None = None) -> BatchWriter:
    """The worker's writer (``ENTSYNC_LDAP_WRITER``): its client, concurrency, retry budget
    and processes."""
    writer = PipelinedWriter if settings.ldap_writer == "python-ldap" else DirectoryWriter
    return writer(
        ldap_params(settings),
        max_in_flight=settings.ldap_max_in_flight,
        retry=retry or RetryPolicy(total=settings.ldap_retry_total_s),
        processes=settings.writer_processes(),
        log_setup=(settings.log_format, settings.log_level),
    )

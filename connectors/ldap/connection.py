"""Connection parameters and synchronous ldap3 connections, with error classification.

TLS (``ldaps://`` or StartTLS) always validates the server's certificate, against
``tls_ca_file`` or else the system's trust store, and its host name: ldap3's default,
``CERT_NONE``, is never used. Which settings give these parameters, and the refusal of a clear
text bind, are the shell's (:mod:`entsync.ldap_clients`).
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ldap3 import NONE, SYNC, Connection, Server, Tls
from ldap3.core import exceptions as ldap_exc

from connectors.ldap.errors import DirectoryAuthError, DirectoryTlsError, DirectoryUnavailableError

# Result codes worth retrying: busy (51), unavailable (52), and the client-side "server down"
# / "connect error" codes some libraries report (81, 91).
TRANSIENT_RESULT_CODES = frozenset({51, 52, 81, 91})
# "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ... (_ssl.c:1006)"
_OPENSSL_REASON = re.compile(r"\[SSL: \w+\] (.+?)\s*\(_ssl")


@dataclass(frozen=True)
class LdapParams:
    """Where and how to bind. The password is kept out of ``repr``."""

    url: str
    bind_dn: str
    password: str = field(repr=False)
    connect_timeout: float = 5.0
    receive_timeout: float = 60.0
    start_tls: bool = False  # on an ldap:// URL: StartTLS before the bind
    tls_ca_file: str | None = None  # trusted CAs (PEM); None: the system's trust store

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or urlsplit(self.url).scheme.lower() == "ldaps"


class _CheckedTls(Tls):  # type: ignore[misc]  # ldap3 has no type hints
    """ldap3's ``Tls`` whose handshake checks the certificate and the host name itself
    (Python's default context: OpenSSL's check, IP addresses included). ldap3 turns the
    context's check off for one of its own after the handshake, which on Python 3.12+ falls
    back to a copy of an old ``match_hostname`` that accepts no IP address."""

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        context = ssl.create_default_context(cafile=self.ca_certs_file)  # CERT_REQUIRED, names
        connection.socket = context.wrap_socket(
            connection.socket, do_handshake_on_connect=do_handshake, server_hostname=self.sni
        )


def tls_of(params: LdapParams) -> Tls | None:
    """The TLS configuration (None: no TLS): the certificate required, signed by a CA of
    ``tls_ca_file`` (else of the system's store), naming the URL's host."""
    if not params.uses_tls:
        return None
    host = urlsplit(params.url).hostname
    return _CheckedTls(validate=ssl.CERT_REQUIRED, ca_certs_file=params.tls_ca_file, sni=host)


class TransientLdapError(Exception):
    """Internal: worth retrying. ``maybe_applied``: the request may have reached the server."""

    def __init__(self, reason: str, *, maybe_applied: bool) -> None:
        super().__init__(reason)
        self.maybe_applied = maybe_applied


def tls_failure(exc: BaseException) -> str | None:
    """Why opening TLS failed, if that is what ``exc`` says (None: not a TLS failure).

    Only errors of the opening (ldaps:// handshake, StartTLS) count: TLS errors on an open
    connection are lost connections. ldap3 raises its own class merged with the original
    error's (an ``ssl.SSLError`` is an OSError), and when the host has several addresses an
    ``LDAPSocketOpenError`` whose second argument lists each address's error.
    """
    if not isinstance(exc, ldap_exc.LDAPSocketOpenError | ldap_exc.LDAPStartTLSError):
        return None
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return None  # closed during the handshake: a server going down, retried
    if isinstance(exc, ssl.SSLError | ldap_exc.LDAPStartTLSError):
        # ldap3 nests the reason in tuples of strings: keep OpenSSL's words only.
        reason = _OPENSSL_REASON.search(str(exc))
        if reason is None:
            return f"{type(exc).__name__}: {exc}"
        return reason.group(1).replace("\\'", "'")  # quoted in a repr, once or twice
    history = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(history, list):
        for item in history:
            found = tls_failure(item[0]) if isinstance(item, tuple) and item else None
            if found is not None:
                return found
    return None


def classify(exc: BaseException) -> TransientLdapError | None:
    """A transient error for ldap3 exceptions that mean "connection lost", else None (TLS
    failures included: a wrong certificate does not heal by retrying)."""
    if tls_failure(exc) is not None:
        return None
    if isinstance(exc, ldap_exc.LDAPSocketOpenError):
        return TransientLdapError(type(exc).__name__, maybe_applied=False)
    if isinstance(exc, ldap_exc.LDAPCommunicationError | ldap_exc.LDAPResponseTimeoutError):
        return TransientLdapError(type(exc).__name__, maybe_applied=True)
    if isinstance(exc, OSError):
        return TransientLdapError(type(exc).__name__, maybe_applied=True)
    return None


def connect(
    params: LdapParams, *, timeout: float | None = None, get_info: str = NONE
) -> Connection:
    """An open, bound connection; ``get_info``: what ldap3 reads of the server when binding
    (``SCHEMA``: its subschema entry, for the preflight).

    Raises TransientLdapError if the server cannot be reached or is busy, DirectoryTlsError if
    TLS fails (certificate not trusted, wrong host name, StartTLS refused), DirectoryAuthError
    if the bind is refused.
    """
    server = Server(
        params.url,
        get_info=get_info,
        connect_timeout=timeout if timeout is not None else params.connect_timeout,
        tls=tls_of(params),
    )
    conn = Connection(
        server,
        user=params.bind_dn,
        password=params.password,
        client_strategy=SYNC,
        auto_bind=False,
        raise_exceptions=False,
        # ldap3 packs it into a C struct: whole seconds only.
        receive_timeout=math.ceil(timeout if timeout is not None else params.receive_timeout),
        auto_referrals=False,
    )
    try:
        conn.open()
        if params.start_tls and not conn.start_tls():
            raise ldap_exc.LDAPStartTLSError("StartTLS not started")
        ok = conn.bind()
    except Exception as exc:
        transient = classify(exc)
        with contextlib.suppress(Exception):
            conn.unbind()
        tls = tls_failure(exc)
        if tls is not None:
            raise DirectoryTlsError(f"TLS with the LDAP server {params.url} failed: {tls}") from exc
        if transient is None:
            raise
        raise TransientLdapError(transient.args[0], maybe_applied=False) from exc
    if not ok:
        code = int(conn.result.get("result") or 0)
        name = str(conn.result.get("description") or "bind failed")
        with contextlib.suppress(Exception):
            conn.unbind()
        if code in TRANSIENT_RESULT_CODES:
            raise TransientLdapError(name, maybe_applied=False)
        raise DirectoryAuthError(f"LDAP bind as {params.bind_dn!r} refused: {name} ({code})")
    return conn


def close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.unbind()


@contextlib.contextmanager
def connection(params: LdapParams, *, get_info: str = NONE) -> Iterator[Connection]:
    """A bound connection for a few synchronous calls; unavailable server raises at once."""
    try:
        conn = connect(params, get_info=get_info)
    except TransientLdapError as exc:
        raise DirectoryUnavailableError(f"LDAP server {params.url} unavailable: {exc}") from exc
    try:
        yield conn
    finally:
        close_quietly(conn)


def can_bind(params: LdapParams, *, timeout: float = 2.0) -> bool:
    """Whether an admin bind works now (readiness probe)."""
    try:
        conn = connect(params, timeout=timeout)
    except (TransientLdapError, DirectoryAuthError):
        return False
    close_quietly(conn)
    return True


def result_of(conn: Connection) -> tuple[int, str, str]:
    """(code, name, diagnostic message) of the last operation on ``conn``."""
    result: dict[str, Any] = conn.result or {}
    return (
        int(result.get("result") or 0),
        str(result.get("description") or ""),
        str(result.get("message") or ""),
    )

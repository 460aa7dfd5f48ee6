"""python-ldap (OpenLDAP's libldap) connections for the bulk writer, and their replies.

The same security as :mod:`connectors.ldap.connection` (ldap3): ``ldaps://`` or StartTLS
demand a certificate signed by a CA of ``tls_ca_file``, else of the system's trust store (the
one Python's ssl uses), naming the URL's host, TLS 1.2 at least. The options are set on each
connection, so neither ``ldap.conf``, ``.ldaprc`` nor ``LDAPTLS_*`` variables can weaken them.
One libldap rule differs: a URL naming ``localhost`` is checked against this machine's own host
name.

libldap says little of a failed handshake (Debian builds it with GnuTLS: "(unknown error
code)"), so the reason comes from a second attempt through Python's ssl (the ldap3 connection),
which also tells a refused certificate (not retried) from a server going down (retried).
"""

from __future__ import annotations

import contextlib
import errno
import ssl
from collections.abc import Mapping
from typing import Any

import ldap
from ldap3.core.results import RESULT_CODES

from connectors.ldap.connection import (
    TRANSIENT_RESULT_CODES,
    LdapParams,
    TransientLdapError,
    close_quietly,
    connect,
)
from connectors.ldap.errors import DirectoryAuthError, DirectoryTlsError, DirectoryUnavailableError
from connectors.ldap.healing import (
    MODIFY_ADD,
    MODIFY_DELETE,
    AddRequest,
    DeleteRequest,
    ModifyRequest,
    Reply,
    Request,
)

Connection = Any  # python-ldap's LDAPObject (no type hints)
_MOD = {MODIFY_ADD: ldap.MOD_ADD, MODIFY_DELETE: ldap.MOD_DELETE}  # else MOD_REPLACE
# Opening a connection failed before any TLS byte: the server is not there (retried).
_UNREACHABLE = frozenset(
    {errno.ECONNREFUSED, errno.ENOTCONN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)
# The connection is gone or silent (libldap's client-side codes): retried on a new one.
LOST = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT)


def details(exc: ldap.LDAPError) -> Mapping[str, Any]:
    """python-ldap's error dict: result, desc, info, msgid, errno (each may be absent)."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, Mapping) else {}


def describe(exc: ldap.LDAPError) -> str:
    found = details(exc)
    text = str(found.get("desc") or type(exc).__name__)
    info = found.get("info")
    return f"{text} ({info})" if info else text


def reply_of_error(exc: ldap.LDAPError) -> Reply:
    """A refused request's reply, with the result's standard name (as ldap3 gives it)."""
    found = details(exc)
    code = int(found.get("result", -1))
    name = RESULT_CODES.get(code) or str(found.get("desc") or type(exc).__name__)
    return Reply(code, name, str(found.get("info") or ""))


def _trust_store(params: LdapParams) -> tuple[int, str] | None:
    """Which CAs to trust: the CA file, else the system's store as Python's ssl finds it."""
    if params.tls_ca_file is not None:
        return ldap.OPT_X_TLS_CACERTFILE, params.tls_ca_file
    paths = ssl.get_default_verify_paths()
    if paths.cafile:
        return ldap.OPT_X_TLS_CACERTFILE, paths.cafile
    if paths.capath:
        return ldap.OPT_X_TLS_CACERTDIR, paths.capath
    return None  # libldap's own default


def _new(params: LdapParams, timeout: float) -> Connection:
    conn: Connection = ldap.initialize(params.url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
    conn.set_option(ldap.OPT_TIMEOUT, params.receive_timeout)  # StartTLS and bind
    if params.uses_tls:
        trust = _trust_store(params)
        if trust is not None:
            conn.set_option(*trust)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, ldap.OPT_X_TLS_PROTOCOL_TLS1_2)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # a context of its own, with these options
    return conn


def open_connection(params: LdapParams, *, timeout: float | None = None) -> Connection:
    """An open, bound connection.

    Raises TransientLdapError if the server cannot be reached or is busy, DirectoryTlsError if
    TLS fails (certificate not trusted, wrong host name, StartTLS refused), DirectoryAuthError
    if the bind is refused.
    """
    wait = timeout if timeout is not None else params.connect_timeout
    conn = _new(params, wait)
    try:
        if params.start_tls:
            try:
                conn.start_tls_s()
            except ldap.LDAPError as exc:
                code = int(details(exc).get("result", -1))
                if code > 0 and code not in TRANSIENT_RESULT_CODES:  # the server said no
                    raise DirectoryTlsError(
                        f"TLS with the LDAP server {params.url} failed: StartTLS refused: "
                        f"{describe(exc)}"
                    ) from exc
                raise
        conn.simple_bind_s(params.bind_dn, params.password)
    except ldap.LDAPError as exc:
        close(conn)
        raise _opening_error(params, exc, wait) from exc
    except BaseException:
        close(conn)
        raise
    return conn


def _opening_error(params: LdapParams, exc: ldap.LDAPError, timeout: float) -> Exception:
    found = details(exc)
    code = int(found.get("result", -1))
    if code in TRANSIENT_RESULT_CODES:
        return TransientLdapError(describe(exc), maybe_applied=False)
    if not isinstance(exc, LOST):
        return DirectoryAuthError(
            f"LDAP bind as {params.bind_dn!r} refused: {reply_of_error(exc).name} ({code})"
        )
    if not params.uses_tls or found.get("errno") in _UNREACHABLE:
        return TransientLdapError(describe(exc), maybe_applied=False)
    return _tls_diagnosis(params, exc, timeout)


def _tls_diagnosis(params: LdapParams, exc: ldap.LDAPError, timeout: float) -> Exception:
    """Why libldap could not open TLS, said by a second attempt through Python's ssl."""
    try:
        close_quietly(connect(params, timeout=timeout))
    except (TransientLdapError, DirectoryAuthError) as found:  # DirectoryTlsError included
        return found
    except DirectoryUnavailableError as down:
        return TransientLdapError(str(down), maybe_applied=False)
    return DirectoryTlsError(
        f"TLS with the LDAP server {params.url} failed in libldap ({describe(exc)}) although "
        "Python's ssl accepts the certificate: libldap checks a URL naming localhost against "
        "this machine's host name, and its TLS library may refuse what OpenSSL accepts"
    )


def close(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.unbind_ext()


def _encoded(values: list[str]) -> list[bytes]:
    return [value.encode() for value in values]


def send(conn: Connection, request: Request) -> int:
    """Send ``request`` without waiting for its reply; its message id."""
    if isinstance(request, AddRequest):
        return int(
            conn.add_ext(
                request.dn,
                [(name, _encoded(values)) for name, values in request.attributes.items()],
            )
        )
    if isinstance(request, ModifyRequest):
        modlist = [
            (_MOD.get(change, ldap.MOD_REPLACE), name, _encoded(values) or None)
            for name, parts in request.changes.items()
            for change, values in parts
        ]
        return int(conn.modify_ext(request.dn, modlist))
    if isinstance(request, DeleteRequest):
        return int(conn.delete_ext(request.dn))
    return int(conn.search_ext(request.dn, ldap.SCOPE_BASE, "(objectClass=*)", request.attributes))


def entry_of(found: list[tuple[str | None, dict[str, list[bytes]]]]) -> dict[str, tuple[str, ...]]:
    """Attribute values of the entry a base search returned, keyed by lower-cased name."""
    for dn, attributes in found:
        if dn is not None:  # not a referral
            return {
                name.lower(): tuple(v.decode("utf-8", errors="replace") for v in values)
                for name, values in attributes.items()
            }
    return {}

"""Connection parameters and synchronous ldap3 connections, with error classification."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ldap3 import NONE, SYNC, Connection, Server
from ldap3.core import exceptions as ldap_exc

from connectors.ldap.errors import DirectoryAuthError, DirectoryUnavailableError

if TYPE_CHECKING:
    from entsync.settings import Settings

# Result codes worth retrying: busy (51), unavailable (52), and the client-side "server down"
# / "connect error" codes some libraries report (81, 91).
TRANSIENT_RESULT_CODES = frozenset({51, 52, 81, 91})


@dataclass(frozen=True)
class LdapParams:
    """Where and how to bind. The password is kept out of ``repr``."""

    url: str
    bind_dn: str
    password: str = field(repr=False)
    connect_timeout: float = 5.0
    receive_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapParams:
        url, bind_dn, password = settings.resolved().require_ldap()
        return cls(url=url, bind_dn=bind_dn, password=password)


class TransientLdapError(Exception):
    """Internal: worth retrying. ``maybe_applied``: the request may have reached the server."""

    def __init__(self, reason: str, *, maybe_applied: bool) -> None:
        super().__init__(reason)
        self.maybe_applied = maybe_applied


def classify(exc: BaseException) -> TransientLdapError | None:
    """A transient error for ldap3 exceptions that mean "connection lost", else None."""
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

    Raises TransientLdapError if the server cannot be reached or is busy, DirectoryAuthError
    if the bind is refused.
    """
    server = Server(
        params.url,
        get_info=get_info,
        connect_timeout=timeout if timeout is not None else params.connect_timeout,
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
        ok = conn.bind()
    except Exception as exc:
        transient = classify(exc)
        with contextlib.suppress(Exception):
            conn.unbind()
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

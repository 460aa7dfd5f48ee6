"""The local OpenLDAP server: find it, configure it, start it, wait until it answers.

The configuration is regenerated from the state directory at each start; the database and the
generated admin password are created once and kept, so data survives ``down``/``up``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import schemas
from connectors.ldap.connection import LdapParams, can_bind
from connectors.services.errors import (
    ServiceError,
    ServiceNotInstalledError,
    ServiceStartError,
)
from connectors.services.process import log_tail, pid_alive, spawn_detached

INSTALL_HINT = "apt-get install -y slapd ldap-utils"
SLAPD_BIN_ENV = "ENTSYNC_SLAPD_BIN"
# Debian installs slapd in /usr/sbin, often missing from a non-root PATH.
SLAPD_FALLBACK_DIRS: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec")
SYSTEM_SCHEMA_DIRS: tuple[str, ...] = (
    "/etc/ldap/schema",
    "/etc/openldap/schema",
    "/usr/local/etc/openldap/schema",
)
MODULE_DIRS: tuple[str, ...] = (
    "/usr/lib/ldap",
    "/usr/lib/x86_64-linux-gnu/ldap",
    "/usr/lib64/openldap",
    "/usr/libexec/openldap",
    "/usr/lib/openldap",
)
SYSTEM_SCHEMAS: tuple[str, ...] = ("core", "cosine", "inetorgperson", "nis")
# sdet.schema first: entsync.schema does not depend on it, but the indexes below do.
OWN_SCHEMAS: tuple[str, ...] = ("sdet", "entsync")
INDEXED: tuple[str, ...] = (
    "objectClass",
    "ENTPersonJointure",
    "ENTPersonLogin",
    "ENTEleveINE",
    "entsyncId",
    "member",
)
ACCOUNT_STATES: tuple[str, ...] = ("active", "disappeared", "predeleted")


def find_slapd() -> str:
    """The slapd binary: ``$ENTSYNC_SLAPD_BIN``, then PATH, then the usual sbin directories."""
    override = os.environ.get(SLAPD_BIN_ENV)
    if override:
        if os.access(override, os.X_OK) and Path(override).is_file():
            return override
        raise ServiceNotInstalledError(
            f"{SLAPD_BIN_ENV}={override!r} is not an executable file. "
            f"Install OpenLDAP with: {INSTALL_HINT} (Debian)"
        )
    found = shutil.which("slapd")
    if found:
        return found
    for directory in SLAPD_FALLBACK_DIRS:
        candidate = Path(directory) / "slapd"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceNotInstalledError(
        f"slapd (OpenLDAP server) not found on PATH nor in {', '.join(SLAPD_FALLBACK_DIRS)}. "
        f"Install it with: {INSTALL_HINT} (Debian)"
    )


def schema_dir() -> Path:
    """The installed ``schemas/ldap`` directory holding sdet.schema and entsync.schema."""
    return Path(schemas.__file__).resolve().parent / "ldap"


def _system_schema_dir() -> Path:
    for directory in SYSTEM_SCHEMA_DIRS:
        if (Path(directory) / "core.schema").is_file():
            return Path(directory)
    raise ServiceNotInstalledError(
        f"OpenLDAP's core.schema not found in {', '.join(SYSTEM_SCHEMA_DIRS)}. "
        f"Install it with: {INSTALL_HINT} (Debian)"
    )


def _module_dir() -> Path | None:
    """Where slapd's loadable modules are; None if back_mdb is built in."""
    for directory in MODULE_DIRS:
        if (Path(directory) / "back_mdb.la").exists() or (Path(directory) / "back_mdb.so").exists():
            return Path(directory)
    return None


def _has_module(modules: Path | None, name: str) -> bool:
    return modules is not None and (
        (modules / f"{name}.la").exists() or (modules / f"{name}.so").exists()
    )


def hash_password(password: str) -> str:
    """RFC 2307 ``{SSHA}`` hash, so the plain password is not in slapd.conf."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class SlapdLayout:
    """Files of the local slapd inside the state directory."""

    state_dir: Path

    @property
    def config(self) -> Path:
        return self.state_dir / "slapd.conf"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "slapd.pid"

    @property
    def args_file(self) -> Path:
        return self.state_dir / "slapd.args"

    @property
    def log(self) -> Path:
        return self.state_dir / "slapd.log"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "ldap-data"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "ldap_password"

    @property
    def base_dn_file(self) -> Path:
        return self.data_dir / "entsync-base-dn"


@dataclass(frozen=True)
class SlapdTls:
    """The server's certificate and key (PEM), and the CA file it presents them with."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def ensure_password(layout: SlapdLayout) -> str:
    """The admin password, generated on first use and kept (0600) in the state directory."""
    path = layout.password_file
    if path.exists():
        password = path.read_text().strip()
        if password:
            os.chmod(path, 0o600)
            return password
    password = secrets.token_urlsafe(24)
    _write_private(path, password + "\n")
    return password


def _q(value: str | Path) -> str:
    text = str(value)
    if any(ch in text for ch in '"\n\\'):
        raise ServiceError(f"unsupported character in slapd.conf value {text!r}")
    return f'"{text}"'


def render_config(
    layout: SlapdLayout,
    *,
    base_dn: str,
    password: str,
    sync_writes: bool = False,
    own_schema_dir: Path | None = None,
    tls: SlapdTls | None = None,
) -> str:
    """The slapd.conf text for a database at ``base_dn`` in ``layout``. ``own_schema_dir``:
    where sdet.schema and entsync.schema are (default: the shipped ones; tests point it at
    altered copies). ``tls``: serve ldaps:// and StartTLS with that certificate."""
    system = _system_schema_dir()
    own = own_schema_dir or schema_dir()
    modules = _module_dir()
    lines = [
        "# Generated by 'entsync services up'; regenerated at each start, do not edit.",
        *(f"include {_q(system / f'{name}.schema')}" for name in SYSTEM_SCHEMAS),
        *(f"include {_q(own / f'{name}.schema')}" for name in OWN_SCHEMAS),
        f"pidfile {_q(layout.pid_file)}",
        f"argsfile {_q(layout.args_file)}",
    ]
    if tls is not None:
        lines += [
            f"TLSCACertificateFile {_q(tls.ca_file)}",
            f"TLSCertificateFile {_q(tls.cert_file)}",
            f"TLSCertificateKeyFile {_q(tls.key_file)}",
        ]
    unique = _has_module(modules, "unique")
    constraint = _has_module(modules, "constraint")
    if modules is not None:
        lines += [f"modulepath {_q(modules)}", "moduleload back_mdb"]
        lines += ["moduleload unique"] if unique else []
        lines += ["moduleload constraint"] if constraint else []
    lines += [
        "",
        "database mdb",
        # A map size, not a file size: the file grows as needed up to it.
        "maxsize 4294967296",
        f"suffix {_q(base_dn)}",
        f"rootdn {_q('cn=admin,' + base_dn)}",
        f"rootpw {hash_password(password)}",
        f"directory {_q(layout.data_dir)}",
        *(f"index {attribute} eq" for attribute in INDEXED),
    ]
    if not sync_writes:
        # Survives a killed slapd (pages are in the OS cache), not a power loss: local use only.
        lines.append("dbnosync")
    if unique:
        # Logins must be unique in the whole tree, manual accounts included.
        uri = "ldap:///" + quote(base_dn, safe="=,") + "?ENTPersonLogin?sub"
        lines += ["overlay unique", f"unique_uri {_q(uri)}"]
    if constraint:
        pattern = "^(" + "|".join(ACCOUNT_STATES) + ")$"
        lines += [
            "overlay constraint",
            f"constraint_attribute entsyncAccountState regex {_q(pattern)}",
        ]
    return "\n".join(lines) + "\n"


def prepare(
    layout: SlapdLayout,
    *,
    base_dn: str,
    sync_writes: bool = False,
    own_schema_dir: Path | None = None,
    tls: SlapdTls | None = None,
) -> str:
    """Create the database directory and slapd.conf; return the admin password."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    layout.data_dir.mkdir(mode=0o700, exist_ok=True)
    marker = layout.base_dn_file
    if marker.exists():
        existing = marker.read_text().strip()
        if existing.lower() != base_dn.lower():
            raise ServiceError(
                f"the directory in {layout.data_dir} holds base DN {existing!r}, not "
                f"{base_dn!r}: use that base DN or remove {layout.data_dir}"
            )
    else:
        marker.write_text(base_dn + "\n")
    password = ensure_password(layout)
    config = render_config(
        layout,
        base_dn=base_dn,
        password=password,
        sync_writes=sync_writes,
        own_schema_dir=own_schema_dir,
        tls=tls,
    )
    _write_private(layout.config, config)
    return password


def ldap_url(port: int) -> str:
    """Client URL (ldap3 refuses a trailing slash)."""
    return f"ldap://127.0.0.1:{port}"


def start(binary: str, layout: SlapdLayout, port: int, *, ldaps_port: int | None = None) -> int:
    """Launch slapd in the foreground of its own session; ``ldaps_port``: also serve ldaps://
    there (the configuration must have ``tls``).

    ``-d none`` keeps it from forking (``-d 0`` does fork) and logs only start/stop and errors.
    """
    urls = ldap_url(port) + "/"
    if ldaps_port is not None:
        urls += f" ldaps://127.0.0.1:{ldaps_port}/"
    argv = [binary, "-f", str(layout.config), "-h", urls, "-d", "none"]
    return spawn_detached(argv, log_path=layout.log, cwd=layout.state_dir)


def marker(layout: SlapdLayout) -> str:
    """What identifies our slapd in a process command line: its config path."""
    return str(layout.config)


def wait_ready(params: LdapParams, *, pid: int, layout: SlapdLayout, timeout: float) -> None:
    """Return once an admin bind works; raise with the log tail if slapd died or timed out."""
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid, marker(layout)):
            raise ServiceStartError(
                f"slapd exited during startup; see {layout.log}:\n{log_tail(layout.log)}"
            )
        if can_bind(params, timeout=1.0):
            return
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                f"slapd did not answer an LDAP bind on {params.url} within {timeout:.0f}s; "
                f"see {layout.log}:\n{log_tail(layout.log)}"
            )
        time.sleep(0.1)

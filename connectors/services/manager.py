"""``up`` / ``down`` / ``status`` of the local slapd and broker in a state directory.

``<state_dir>/services.json`` records what ``up`` started (pids, ports, paths) and the
connection settings that :class:`entsync.settings.Settings` falls back on. It holds the local
admin password, so it is written 0600 like the password file itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from connectors.ldap.connection import LdapParams, can_bind
from connectors.ldap.directory import ensure_base_dit
from connectors.services import broker, slapd
from connectors.services.errors import ServiceError
from connectors.services.process import (
    free_port,
    pid_alive,
    port_is_free,
    read_pid_file,
    stop_pid,
    tcp_answers,
    write_pid_file,
)

log = structlog.get_logger(__name__)

SERVICES_FILE: Final = "services.json"
SERVICE_NAMES: Final = ("slapd", "broker")
DEFAULT_BASE_DN: Final = "dc=ent,dc=example"


@dataclass(frozen=True)
class ServicesConfig:
    """What ``up`` needs. Ports None: reuse the recorded ones if free, else pick free ones."""

    state_dir: Path = Path(".entsync")
    base_dn: str = DEFAULT_BASE_DN
    ldap_port: int | None = None
    kafka_port: int | None = None
    start_timeout: float = 20.0
    stop_timeout: float = 10.0
    # False: slapd runs with dbnosync (survives a killed slapd, not a power loss), 3-4x faster.
    sync_writes: bool = False


@dataclass(frozen=True)
class UpResult:
    info: dict[str, Any]
    started: tuple[str, ...]
    already_running: tuple[str, ...]


@dataclass(frozen=True)
class DownResult:
    stopped: dict[str, int] = field(default_factory=dict)
    not_running: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServicesStatus:
    info: dict[str, Any] | None
    running: dict[str, bool]

    @property
    def all_running(self) -> bool:
        return all(self.running.values())

    def as_json(self) -> dict[str, Any]:
        data = dict(self.info or {})
        data["running"] = dict(self.running)
        return data


def services_file(state_dir: Path) -> Path:
    return state_dir / SERVICES_FILE


def read_info(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(services_file(state_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_info(state_dir: Path, info: dict[str, Any]) -> None:
    path = services_file(state_dir)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialize up/down on one state directory (two terminals, parallel test workers)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marker(name: str, state_dir: Path, service: dict[str, Any]) -> str:
    if name == "slapd":
        return slapd.marker(slapd.SlapdLayout(state_dir))
    return broker.marker(int(service.get("port") or 0))


def _pid_file(name: str, state_dir: Path) -> Path:
    if name == "slapd":
        return slapd.SlapdLayout(state_dir).pid_file
    return broker.BrokerLayout(state_dir).pid_file


def _running_pid(name: str, state_dir: Path, info: dict[str, Any] | None) -> int | None:
    """The recorded pid of ``name`` if that process is alive and is ours."""
    service = (info or {}).get(name) or {}
    pid = service.get("pid")
    if isinstance(pid, int) and pid_alive(pid, _marker(name, state_dir, service)):
        return pid
    return None


def _choose_port(wanted: int | None, recorded: Any, name: str) -> int:
    if wanted is not None:
        if not port_is_free(wanted):
            raise ServiceError(f"{name}: port {wanted} on 127.0.0.1 is already in use")
        return wanted
    # Same port as last time when possible: clients that cached the URL keep working.
    if isinstance(recorded, int) and port_is_free(recorded):
        return recorded
    return free_port()


def _clean_stale_pid_file(name: str, state_dir: Path, marker: str) -> None:
    path = _pid_file(name, state_dir)
    pid = read_pid_file(path)
    if path.exists() and (pid is None or not pid_alive(pid, marker)):
        path.unlink(missing_ok=True)
        log.info("services.stale_pid_file_removed", service=name)


def _ensure_slapd(
    config: ServicesConfig, state_dir: Path, binary: str, previous: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """(slapd section of services.json, whether it was started now)."""
    layout = slapd.SlapdLayout(state_dir)
    password = slapd.prepare(layout, base_dn=config.base_dn, sync_writes=config.sync_writes)
    bind_dn = f"cn=admin,{config.base_dn}"
    recorded = dict(previous.get("slapd") or {})
    pid = _running_pid("slapd", state_dir, previous)
    port = recorded.get("port")
    started = False
    if not (
        pid is not None
        and isinstance(port, int)
        and can_bind(LdapParams(slapd.ldap_url(port), bind_dn, password))
    ):
        if pid is not None:  # ours but not answering: replace it
            stop_pid(pid, marker=slapd.marker(layout), timeout=config.stop_timeout)
        _clean_stale_pid_file("slapd", state_dir, slapd.marker(layout))
        port = _choose_port(config.ldap_port, recorded.get("port"), "slapd")
        pid = slapd.start(binary, layout, port)
        params = LdapParams(slapd.ldap_url(port), bind_dn, password)
        try:
            slapd.wait_ready(params, pid=pid, layout=layout, timeout=config.start_timeout)
        except BaseException:
            stop_pid(pid, marker=slapd.marker(layout), timeout=config.stop_timeout)
            raise
        started = True
        log.info("services.started", service="slapd", pid=pid, port=port)
    assert isinstance(port, int)
    return {
        "pid": pid,
        "port": port,
        "url": slapd.ldap_url(port),
        "bind_dn": bind_dn,
        "password": password,
        "binary": binary,
        "pid_file": str(layout.pid_file),
        "config": str(layout.config),
        "log": str(layout.log),
        "data_dir": str(layout.data_dir),
        "password_file": str(layout.password_file),
        # A slapd kept running keeps the setting it was started with.
        "sync_writes": config.sync_writes if started else recorded.get("sync_writes"),
    }, started


def _ensure_broker(
    config: ServicesConfig, state_dir: Path, binary: str, previous: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """(broker section of services.json, whether it was started now)."""
    layout = broker.BrokerLayout(state_dir)
    recorded = dict(previous.get("broker") or {})
    pid = _running_pid("broker", state_dir, previous)
    port = recorded.get("port")
    started = False
    if not (pid is not None and isinstance(port, int) and broker.kafka_answers(port)):
        if pid is not None and isinstance(port, int):
            stop_pid(pid, marker=broker.marker(port), timeout=config.stop_timeout)
        port = _choose_port(config.kafka_port, recorded.get("port"), "broker")
        _clean_stale_pid_file("broker", state_dir, broker.marker(port))
        pid = broker.start(binary, layout, port)
        try:
            broker.wait_ready(port=port, pid=pid, layout=layout, timeout=config.start_timeout)
        except BaseException:
            stop_pid(pid, marker=broker.marker(port), timeout=config.stop_timeout)
            raise
        write_pid_file(layout.pid_file, pid)
        started = True
        log.info("services.started", service="broker", pid=pid, port=port)
    assert isinstance(port, int)
    return {
        "pid": pid,
        "port": port,
        "binary": binary,
        "pid_file": str(layout.pid_file),
        "log": str(layout.log),
        "storage": "memory (topics and offsets are lost when the broker stops)",
    }, started


def up(config: ServicesConfig) -> UpResult:
    """Start what is not running (and answering); write services.json. Idempotent.

    If a service fails to start, the ones this call started are stopped again.
    """
    state_dir = config.state_dir.resolve()
    with _locked(state_dir):
        # Both binaries first: fail before starting anything.
        slapd_bin = slapd.find_slapd()
        broker_bin = broker.find_broker()
        previous = read_info(state_dir) or {}
        started: list[str] = []
        current: dict[str, Any] = {}
        try:
            slapd_info, slapd_started = _ensure_slapd(config, state_dir, slapd_bin, previous)
            current["slapd"] = slapd_info
            if slapd_started:
                started.append("slapd")
            password = slapd_info.pop("password")
            bind_dn = slapd_info.pop("bind_dn")
            url = slapd_info.pop("url")
            ensure_base_dit(LdapParams(url, bind_dn, password), config.base_dn)
            broker_info, broker_started = _ensure_broker(config, state_dir, broker_bin, previous)
            if broker_started:
                started.append("broker")
        except BaseException:
            if started:
                _stop(state_dir, started, current, timeout=config.stop_timeout)
            raise
        info: dict[str, Any] = {
            "state_dir": str(state_dir),
            "kafka_bootstrap": broker.bootstrap(broker_info["port"]),
            "ldap_url": url,
            "ldap_bind_dn": bind_dn,
            "ldap_password": password,
            "ldap_base_dn": config.base_dn,
            "slapd": slapd_info,
            "broker": broker_info,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_info(state_dir, info)
        kept = tuple(name for name in SERVICE_NAMES if name not in started)
        if not started:
            log.info("services.already_running", services=list(kept))
        return UpResult(info=info, started=tuple(started), already_running=kept)


def down(
    state_dir: Path,
    *,
    services: Sequence[str] = SERVICE_NAMES,
    timeout: float = 10.0,
) -> DownResult:
    """Stop the processes ``up`` started (SIGTERM, then SIGKILL after ``timeout``).

    Only pids recorded by ``up`` (services.json, pid files) whose command line is ours are
    signalled. Stopping every service removes services.json; stopping some keeps their ports
    there so that the next ``up`` restarts them where clients expect them.
    """
    unknown = set(services) - set(SERVICE_NAMES)
    if unknown:
        raise ServiceError(f"unknown service(s): {', '.join(sorted(unknown))}")
    state_dir = state_dir.resolve()
    with _locked(state_dir):
        info = read_info(state_dir) or {}
        result = _stop(state_dir, services, info, timeout=timeout)
        for name in services:
            if name in info:
                info[name] = {**info[name], "pid": None}
        if set(services) >= set(SERVICE_NAMES):
            services_file(state_dir).unlink(missing_ok=True)
        elif info:
            _write_info(state_dir, info)
        return result


def _stop(
    state_dir: Path, services: Sequence[str], info: dict[str, Any], *, timeout: float
) -> DownResult:
    """Stop the recorded pids of ``services`` that are still ours; remove their pid files."""
    stopped: dict[str, int] = {}
    not_running: list[str] = []
    for name in services:
        service = dict(info.get(name) or {})
        marker = _marker(name, state_dir, service)
        pid_file = _pid_file(name, state_dir)
        candidates = {read_pid_file(pid_file), service.get("pid")}
        pids = sorted(pid for pid in candidates if isinstance(pid, int))
        killed = [pid for pid in pids if stop_pid(pid, marker=marker, timeout=timeout)]
        pid_file.unlink(missing_ok=True)
        if killed:
            stopped[name] = killed[0]
            log.info("services.stopped", service=name, pid=killed[0])
        else:
            not_running.append(name)
    return DownResult(stopped=stopped, not_running=tuple(not_running))


def status(state_dir: Path) -> ServicesStatus:
    """What services.json says, and whether each process is alive and listening."""
    state_dir = state_dir.resolve()
    info = read_info(state_dir)
    running: dict[str, bool] = {}
    for name in SERVICE_NAMES:
        service = (info or {}).get(name) or {}
        pid = _running_pid(name, state_dir, info)
        port = service.get("port")
        running[name] = pid is not None and isinstance(port, int) and tcp_answers(port)
    return ServicesStatus(info=info, running=running)

"""``entsync services``: idempotent up, status, down by pid, data kept, missing slapd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ldap3 import Connection, Server

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import read_entry
from connectors.services import (
    ServiceNotInstalledError,
    ServicesConfig,
    read_info,
    status,
    up,
)
from connectors.services import slapd as slapd_module
from connectors.services.process import pid_alive
from entsync.exit_codes import ExitCode
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

ENTSYNC = str(Path(sys.executable).with_name("entsync"))
REQUIRED_KEYS = {"kafka_bootstrap", "ldap_url", "ldap_bind_dn", "ldap_password", "ldap_base_dn"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENTSYNC, "services", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def params_of(info: dict[str, object]) -> LdapParams:
    return LdapParams(str(info["ldap_url"]), str(info["ldap_bind_dn"]), str(info["ldap_password"]))


def test_up_twice_does_not_start_twice(local_services: LocalServices) -> None:
    before = {name: local_services.pid(name) for name in ("slapd", "broker")}
    result = up(ServicesConfig(state_dir=local_services.state_dir))
    assert result.started == ()
    assert set(result.already_running) == {"slapd", "broker"}
    assert {name: result.info[name]["pid"] for name in ("slapd", "broker")} == before


def test_status_json_via_cli(local_services: LocalServices) -> None:
    done = cli("status", "--json", "--state-dir", str(local_services.state_dir))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data.keys() >= REQUIRED_KEYS
    assert data["running"] == {"slapd": True, "broker": True}
    assert data["slapd"]["pid"] == local_services.pid("slapd")
    assert data["broker"]["pid"] == local_services.pid("broker")
    assert data["ldap_url"].startswith("ldap://127.0.0.1:")
    assert data["kafka_bootstrap"].startswith("127.0.0.1:")
    assert (local_services.state_dir / "services.json").stat().st_mode & 0o077 == 0
    assert (local_services.state_dir / "ldap_password").stat().st_mode & 0o077 == 0


def test_cli_lifecycle_leaves_no_process_and_keeps_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "slapd.pid").write_text("999999\n")  # stale, from a machine reboot say
    (state / "broker.pid").write_text("999998\n")

    first = cli("up", "--state-dir", str(state))
    assert first.returncode == 0, first.stderr
    info = read_info(state)
    assert info is not None
    pids = {name: info[name]["pid"] for name in ("slapd", "broker")}
    try:
        assert all(pid_alive(pid) for pid in pids.values())
        second = cli("up", "--state-dir", str(state))
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert {name: (read_info(state) or {})[name]["pid"] for name in pids} == pids

        # Data written now must survive down/up (the broker's, being in memory, does not).
        conn = Connection(Server(info["ldap_url"]), info["ldap_bind_dn"], info["ldap_password"])
        assert conn.bind()
        assert conn.add(
            f"cn=kept,ou=manual-groups,{info['ldap_base_dn']}",
            attributes={"objectClass": ["ENTGroupe"], "cn": "kept", "member": "cn=x"},
        ), conn.result
        conn.unbind()

        # A killed broker is noticed and restarted alone, on the same port.
        os.kill(pids["broker"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pids["broker"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert status(state).running == {"slapd": True, "broker": False}
        assert cli("status", "--state-dir", str(state)).returncode == ExitCode.SERVICES_NOT_RUNNING
        restarted = up(ServicesConfig(state_dir=state))
        assert restarted.started == ("broker",)
        assert restarted.info["kafka_bootstrap"] == info["kafka_bootstrap"]
        pids["broker"] = restarted.info["broker"]["pid"]
    finally:
        stopped = cli("down", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not (state / "slapd.pid").exists()
    assert not (state / "broker.pid").exists()
    assert not (state / "services.json").exists()
    gone = cli("status", "--json", "--state-dir", str(state))
    assert gone.returncode == ExitCode.SERVICES_NOT_RUNNING
    assert json.loads(gone.stdout)["running"] == {"slapd": False, "broker": False}

    again = up(ServicesConfig(state_dir=state))
    try:
        assert again.started == ("slapd", "broker")
        kept = f"cn=kept,ou=manual-groups,{info['ldap_base_dn']}"
        assert read_entry(params_of(again.info), kept) is not None
    finally:
        cli("down", "--state-dir", str(state))
    assert not any(pid_alive(again.info[name]["pid"]) for name in ("slapd", "broker"))


def test_missing_slapd_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no slapd there
    monkeypatch.delenv(slapd_module.SLAPD_BIN_ENV, raising=False)
    monkeypatch.setattr(slapd_module, "SLAPD_FALLBACK_DIRS", ())
    with pytest.raises(ServiceNotInstalledError, match="apt-get install -y slapd ldap-utils"):
        up(ServicesConfig(state_dir=tmp_path / "state"))
    # Nothing was started: the broker is only launched once both binaries are found.
    assert not (tmp_path / "state" / "broker.pid").exists()
    assert read_info(tmp_path / "state") is None


def test_missing_slapd_via_cli(tmp_path: Path) -> None:
    done = cli(
        "up",
        "--state-dir",
        str(tmp_path / "state"),
        env={slapd_module.SLAPD_BIN_ENV: str(tmp_path / "no-slapd")},
    )
    assert done.returncode != 0
    assert "apt-get install -y slapd ldap-utils" in done.stderr
    assert read_info(tmp_path / "state") is None

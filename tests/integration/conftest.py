"""Fixtures for tests against real local services (slapd and the tansu broker).

``local_services`` starts both once per session in a temporary state directory and, at the
end, stops them by pid and checks that no process is left. ``clean_directory`` empties the
directory's branches before a test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import BRANCHES, clear_subtree, ensure_base_dit
from connectors.services import SERVICE_NAMES, ServicesConfig, down, read_info, up
from connectors.services.process import pid_alive
from entsync.settings import Settings
from tests.integration.postgres_support import postgres  # noqa: F401  (session fixture)

# The shortest session Apache Kafka accepts by default: the local broker completes a join after
# half of it, and a killed worker's partitions move after it (workers here start and stop often).
os.environ.setdefault("ENTSYNC_KAFKA_SESSION_TIMEOUT_S", "6")
# Continuous workers and audit consumers serve /metrics on one default port: test processes run
# side by side, so none unless a test names a port of its own.
os.environ.setdefault("ENTSYNC_METRICS_PORT", "0")


@dataclass
class LocalServices:
    """Handle on the session's services. ``info`` is services.json as last read."""

    state_dir: Path
    info: dict[str, Any]
    pids_seen: set[int] = field(default_factory=set)

    @property
    def base_dn(self) -> str:
        return str(self.info["ldap_base_dn"])

    @property
    def kafka_bootstrap(self) -> str:
        return str(self.info["kafka_bootstrap"])

    @property
    def ldap_params(self) -> LdapParams:
        return LdapParams(
            url=self.info["ldap_url"],
            bind_dn=self.info["ldap_bind_dn"],
            password=self.info["ldap_password"],
        )

    def pid(self, service: str) -> int:
        return int(self.info[service]["pid"])

    def up(self) -> tuple[str, ...]:
        """(Re)start what is not running, on the same ports; return what was started."""
        result = up(ServicesConfig(state_dir=self.state_dir))
        self.info = result.info
        self.pids_seen.update(self.pid(name) for name in SERVICE_NAMES)
        return result.started

    def stop(self, *services: str) -> None:
        """Stop some services by pid; their ports stay recorded for the next ``up``."""
        down(self.state_dir, services=services or SERVICE_NAMES)
        self.info = read_info(self.state_dir) or self.info

    def settings(self) -> Settings:
        return Settings(
            state_dir=self.state_dir,
            kafka_bootstrap=self.kafka_bootstrap,
            ldap_url=self.info["ldap_url"],
            ldap_bind_dn=self.info["ldap_bind_dn"],
            ldap_password=SecretStr(self.info["ldap_password"]),
            ldap_base_dn=self.base_dn,
        )


@pytest.fixture(scope="session")
def local_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    state_dir = tmp_path_factory.mktemp("entsync-state")
    handle = LocalServices(state_dir=state_dir, info={})
    handle.up()
    try:
        yield handle
    finally:
        info = read_info(state_dir) or {}
        for name in SERVICE_NAMES:
            pid = (info.get(name) or {}).get("pid")
            if isinstance(pid, int):
                handle.pids_seen.add(pid)
        down(state_dir)
        left = sorted(pid for pid in handle.pids_seen if pid_alive(pid))
        assert not left, f"service processes still running after down: {left}"


@pytest.fixture(scope="session")
def ldap_settings(local_services: LocalServices) -> Settings:
    """Settings pointing at the session's slapd and broker."""
    return local_services.settings()


@pytest.fixture(scope="session")
def ldap_params(local_services: LocalServices) -> LdapParams:
    return local_services.ldap_params


@pytest.fixture
def clean_directory(local_services: LocalServices) -> LdapParams:
    """Empty every branch under the base (branches kept, recreated if a test removed one)."""
    params = local_services.ldap_params
    ensure_base_dit(params, local_services.base_dn)
    for branch in BRANCHES:
        clear_subtree(params, f"ou={branch},{local_services.base_dn}")
    return params

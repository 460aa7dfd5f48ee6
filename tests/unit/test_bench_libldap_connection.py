"""bench/ldap_writer.py's python-ldap connection: unbound at the end, except when interrupted.

The benchmarks raise KeyboardInterrupt on SIGTERM; it can land while python-ldap holds its
connection lock, and unbinding then waits for ever (bench/growth.py hung so)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from connectors.ldap import libldap


def _load() -> ModuleType:
    # bench/ is no package (and ``sync`` names the core): load the file itself.
    path = Path(__file__).resolve().parents[2] / "bench" / "ldap_writer.py"
    spec = importlib.util.spec_from_file_location("bench_ldap_writer_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writers = _load()


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    unbound: list[object] = []
    monkeypatch.setattr(libldap, "open_connection", lambda params: "conn")
    monkeypatch.setattr(libldap, "close", unbound.append)
    return unbound


def test_unbinds_after_the_measurement(closed: list[object]) -> None:
    with writers.libldap_connection(None) as conn:
        assert conn == "conn"
    assert closed == ["conn"]


def test_unbinds_when_the_measurement_fails(closed: list[object]) -> None:
    with pytest.raises(RuntimeError), writers.libldap_connection(None):
        raise RuntimeError("refused")
    assert closed == ["conn"]


def test_does_not_unbind_when_interrupted(closed: list[object]) -> None:
    def interrupted(conn: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), writers.libldap_connection(None) as conn:
        interrupted(conn)
    assert closed == []

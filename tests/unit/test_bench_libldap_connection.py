"""bench/ldap_writer.py's python-ldap connection: unbound at the end, except when interrupted.

The benchmarks raise KeyboardInterrupt on SIGTERM; it can land while python-ldap holds its
connection lock, and unbinding then waits for ever (bench/growth.py hung so)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.ldap import libldap
from tests.unit.bench_files import load_bench

writers = load_bench("ldap_writer")


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

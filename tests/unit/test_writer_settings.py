"""How many writer processes a worker runs: the setting, else the machine's default."""

from __future__ import annotations

import pytest

from entsync.settings import DEFAULT_WRITER_PROCESSES, Settings


@pytest.mark.parametrize(
    ("cores", "expected"), [(1, 0), (None, 0), (2, DEFAULT_WRITER_PROCESSES), (16, 2)]
)
def test_default_writer_processes_follow_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, expected: int
) -> None:
    monkeypatch.delenv("ENTSYNC_LDAP_WRITER_PROCESSES", raising=False)
    monkeypatch.setattr("entsync.settings.os.cpu_count", lambda: cores)
    assert Settings().writer_processes() == expected


def test_the_setting_wins_threads_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("entsync.settings.os.cpu_count", lambda: 8)
    monkeypatch.setenv("ENTSYNC_LDAP_WRITER_PROCESSES", "0")
    assert Settings().writer_processes() == 0
    monkeypatch.setenv("ENTSYNC_LDAP_WRITER_PROCESSES", "3")
    assert Settings().writer_processes() == 3

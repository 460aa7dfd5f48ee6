"""Which writer a worker builds (ENTSYNC_LDAP_WRITER), and how many writer processes the ldap3
writer runs: the setting, else the machine's default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.ldap import DirectoryWriter, PipelinedWriter
from entsync.ldap_clients import directory_writer
from entsync.settings import DEFAULT_WRITER_PROCESSES, Settings


@pytest.fixture(autouse=True)
def no_writer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENTSYNC_LDAP_WRITER", "ENTSYNC_LDAP_WRITER_PROCESSES"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("writer", ["python-ldap", "ldap3"])
@pytest.mark.parametrize("cores", [1, None, 2, 16])
def test_default_writer_processes_follow_the_cores_and_the_writer(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, writer: str
) -> None:
    monkeypatch.setenv("ENTSYNC_LDAP_WRITER", writer)
    monkeypatch.setattr("entsync.settings.os.cpu_count", lambda: cores)
    expected = DEFAULT_WRITER_PROCESSES[writer] if (cores or 1) >= 2 else 0
    assert Settings().writer_processes() == expected
    assert DEFAULT_WRITER_PROCESSES == {"python-ldap": 1, "ldap3": 2}


def test_the_setting_wins_threads_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("entsync.settings.os.cpu_count", lambda: 8)
    monkeypatch.setenv("ENTSYNC_LDAP_WRITER_PROCESSES", "0")
    assert Settings().writer_processes() == 0
    monkeypatch.setenv("ENTSYNC_LDAP_WRITER_PROCESSES", "3")
    assert Settings().writer_processes() == 3


def _settings(tmp_path: Path, **more: object) -> Settings:
    return Settings(
        state_dir=tmp_path,
        ldap_url="ldap://127.0.0.1:1",
        ldap_bind_dn="cn=admin,dc=x",
        ldap_password=SecretStr("secret"),
        **more,  # type: ignore[arg-type]
    )


def test_the_factory_builds_the_chosen_writer(tmp_path: Path) -> None:
    assert Settings().ldap_writer == "python-ldap"
    default = directory_writer(_settings(tmp_path, ldap_writer_processes=0))
    assert isinstance(default, PipelinedWriter)
    default.close()
    chosen = directory_writer(_settings(tmp_path, ldap_writer="ldap3", ldap_writer_processes=0))
    assert isinstance(chosen, DirectoryWriter)
    chosen.close()
    with pytest.raises(ValueError):
        _settings(tmp_path, ldap_writer="bonsai")

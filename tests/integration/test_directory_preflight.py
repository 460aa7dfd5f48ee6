"""``entsync directory init | check`` and the worker's preflight, against slapd servers of their
own: an empty database (not even the suffix entry), and a schema lacking one attribute type."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import BRANCHES, count_entries, ensure_base_dit, read_entry
from connectors.ldap.errors import BaseEntryError
from connectors.ldap.preflight import schema_problems
from connectors.services import slapd
from connectors.services.process import free_port, pid_alive, stop_pid
from entsync.worker import PREFLIGHT_EXIT

pytestmark = pytest.mark.integration

BASE = "dc=pre,dc=example"
ENTSYNC = str(Path(sys.executable).parent / "entsync")
StartSlapd = Callable[[Path | None], LdapParams]


@pytest.fixture
def start_slapd(tmp_path: Path) -> Iterator[StartSlapd]:
    """Start a slapd with an empty database at ``BASE`` (own schema files from a directory, or
    the shipped ones); every one started is stopped by pid at the end."""
    started: list[tuple[int, str]] = []

    def start(schema_dir: Path | None) -> LdapParams:
        layout = slapd.SlapdLayout(tmp_path / f"slapd-{len(started)}")
        password = slapd.prepare(layout, base_dn=BASE, own_schema_dir=schema_dir)
        port = free_port()
        pid = slapd.start(slapd.find_slapd(), layout, port)
        started.append((pid, slapd.marker(layout)))
        params = LdapParams(slapd.ldap_url(port), f"cn=admin,{BASE}", password)
        slapd.wait_ready(params, pid=pid, layout=layout, timeout=20)
        return params

    yield start
    for pid, marker in started:
        stop_pid(pid, marker=marker, timeout=10)
        assert not pid_alive(pid, marker)


def _cli(
    params: LdapParams, tmp_path: Path, *args: str, base: str = BASE
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(tmp_path / "state"),  # no local services recorded there
        "ENTSYNC_LDAP_URL": params.url,
        "ENTSYNC_LDAP_BIND_DN": params.bind_dn,
        "ENTSYNC_LDAP_PASSWORD": params.password,
        "ENTSYNC_LDAP_BASE_DN": base,
        # Never reached: the worker refuses before it talks to Kafka.
        "ENTSYNC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "ENTSYNC_LOG_FORMAT": "json",
    }
    return subprocess.run(
        [ENTSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _without_attribute(tmp_path: Path, name: str) -> Path:
    """Copies of our schema files, ``name`` removed from its file and from every MAY list."""
    target = tmp_path / "schema"
    target.mkdir()
    removed = False
    for file in ("sdet.schema", "entsync.schema"):
        text = (slapd.schema_dir() / file).read_text()
        block = re.compile(rf"attributetype \( \S+ NAME '{name}'.*?\)\n", re.DOTALL)
        edited = block.sub("", text)
        edited = re.sub(rf"\s*\b{name} \$", "", edited)
        removed = removed or edited != text
        (target / file).write_text(edited)
    assert removed, f"{name} not found in the shipped schema files"
    return target


def test_init_on_an_empty_database_creates_the_base_entries_once(
    start_slapd: StartSlapd, tmp_path: Path
) -> None:
    params = start_slapd(None)
    assert count_entries(params, BASE) == 0  # not even the suffix entry

    first = _cli(params, tmp_path, "directory", "init")
    assert first.returncode == 0, first.stdout + first.stderr
    expected = [BASE, *(f"ou={branch},{BASE}" for branch in BRANCHES)]
    assert [line.removeprefix("created ") for line in first.stdout.splitlines()[:-1]] == expected
    assert "accepts every class and attribute" in first.stdout
    assert count_entries(params, BASE) == len(expected)

    second = _cli(params, tmp_path, "directory", "init")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to do" in second.stdout and "created" not in second.stdout
    assert count_entries(params, BASE) == len(expected)


def test_base_entry_is_created_under_an_existing_parent_only(
    start_slapd: StartSlapd, tmp_path: Path
) -> None:
    params = start_slapd(None)
    orphan = f"ou=ent,ou=nowhere,{BASE}"
    refused = _cli(params, tmp_path, "directory", "init", base=orphan)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert orphan in message and f"it holds: '{BASE}'" in message
    assert count_entries(params, BASE) == 0  # nothing was written

    ensure_base_dit(params, BASE, branches=())
    nested = f"ou=ent,{BASE}"
    assert ensure_base_dit(params, nested)[0] == nested
    entry = read_entry(params, nested)
    assert entry is not None and "organizationalUnit" in entry.get("objectClass")
    with pytest.raises(BaseEntryError):
        ensure_base_dit(params, orphan)


def test_the_shipped_schema_passes_the_preflight(start_slapd: StartSlapd) -> None:
    # The real server's published schema, read and parsed, against the real builders.
    assert schema_problems(start_slapd(None)) == []


def test_a_schema_without_one_attribute_is_refused_naming_it(
    start_slapd: StartSlapd, tmp_path: Path
) -> None:
    params = start_slapd(_without_attribute(tmp_path, "entsyncBlockedMessage"))
    problems = schema_problems(params)
    assert [p.subject for p in problems] == ["entsyncBlockedMessage"]

    check = _cli(params, tmp_path, "directory", "check")
    assert check.returncode == 1
    assert "entsyncBlockedMessage" in check.stderr and "1 problem" in check.stderr

    worker = _cli(params, tmp_path, "worker", "--until-idle", "--timeout", "30")
    assert worker.returncode == PREFLIGHT_EXIT, worker.stdout + worker.stderr
    message = " ".join(worker.stderr.split())
    assert "entsyncBlockedMessage: attribute type unknown to the server" in message
    assert "worker refused to start" in message and "feed events" not in worker.stdout
    assert count_entries(params, BASE) == 0  # refused before writing anything


def test_the_worker_creates_missing_base_entries_at_start(start_slapd: StartSlapd) -> None:
    from connectors.ldap.preflight import prepare_directory

    params = start_slapd(None)
    created = prepare_directory(params, BASE)
    assert created[0] == BASE and len(created) == 1 + len(BRANCHES)
    assert prepare_directory(params, BASE) == []

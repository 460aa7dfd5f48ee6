"""A directory the earlier entsync wrote, migrated to the published SDET form, loads in slapd.

``tests/data/legacy/demo-072a288.ldif`` is what entsync 072a288 wrote from the bundled sample.
``entsync directory migrate-ldif`` brings it to today's form; every migrated entry must then be
accepted by the local slapd, which loads the published SDET schema and ours (the upgrade path of
the README). ``tests/unit/test_legacy.py`` checks the same entries equal what today's core writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ldap3 import NONE, Connection, Server
from typer.testing import CliRunner

from connectors.ldap.connection import LdapParams
from connectors.ldap.ldif import read_ldif
from entsync.cli import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
LEGACY = ROOT / "tests" / "data" / "legacy" / "demo-072a288.ldif"
SCHOOLS = next((ROOT / "entsync" / "samples").glob("*_EtabEducNat_*.xml"))
runner = CliRunner()


def test_old_directory_migrated_loads_under_the_published_schema(
    clean_directory: LdapParams, tmp_path: Path
) -> None:
    target = tmp_path / "migrated.ldif"
    state = ["--state-dir", str(tmp_path / "state")]

    refused = runner.invoke(app, ["directory", "migrate-ldif", str(LEGACY), str(target), *state])
    assert refused.exit_code == 1, refused.output
    assert "0310100R" in refused.output and "--schools" in refused.output
    assert not target.exists()

    done = runner.invoke(
        app,
        ["directory", "migrate-ldif", str(LEGACY), str(target), "--schools", str(SCHOOLS), *state],
    )
    assert done.exit_code == 0, done.output
    with target.open(encoding="utf-8") as fh:
        migrated = [e for e in read_ldif(fh) if "entsyncId" in e.attributes]
    assert len(migrated) == 175

    server = Server(clean_directory.url, get_info=NONE)
    conn = Connection(server, clean_directory.bind_dn, clean_directory.password, auto_bind=True)
    try:
        # parents first: schools and people before the groups naming them
        for entry in sorted(migrated, key=lambda e: e.dn.startswith("cn=")):
            conn.add(entry.dn, attributes={k: list(v) for k, v in entry.attributes.items()})
            assert conn.result["result"] == 0, (entry.dn, conn.result)
        conn.search("ou=people,dc=ent,dc=example", "(ENTEleveMEF=*)", attributes=["1.1"])
        assert len(conn.entries) == 67
    finally:
        conn.unbind()

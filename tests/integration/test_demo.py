"""The README's first command: `entsync demo` starts its own services and syncs the sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.services import SERVICE_NAMES, down, read_info
from connectors.services.process import pid_alive

pytestmark = pytest.mark.integration

ENTSYNC = str(Path(sys.executable).with_name("entsync"))


def test_the_demo_syncs_the_sample_on_services_it_starts(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTSYNC_")}
    env["COLUMNS"] = "200"  # the summary table on one line per school
    pids: list[int] = []
    try:
        done = subprocess.run(
            [ENTSYNC, "demo", "--state-dir", str(state_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        info = read_info(state_dir) or {}
        pids = [p for p in ((info.get(n) or {}).get("pid") for n in SERVICE_NAMES) if p]
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        out = done.stdout
        # The three schools of the bundled sample, their accounts, and how to browse them.
        for uai in ("0310100R", "0810100U", "0820100N"):
            assert uai in out
        assert "National_1: 67" in out and "National_2: 73" in out
        assert "ldapsearch -x -H ldap://127.0.0.1:" in out
        # Nothing alarming on the way: faust's own warnings stay out of a newcomer's terminal.
        assert "WARNING" not in done.stdout + done.stderr, done.stderr[-2000:]
        assert (state_dir / "audit-digest.key").exists()
        assert not list(Path.cwd().glob("*-data"))  # faust's data dir is in the state dir
    finally:
        down(state_dir)
    assert pids and not [p for p in pids if pid_alive(p)]

"""One meaning per exit code, the same in the code, in ``entsync --help`` and in the README."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from connectors.stream.stopping import FORCED_STOP_EXIT
from entsync.cli import app
from entsync.exit_codes import MEANINGS, ExitCode
from entsync.worker import DIRECTORY_DOWN_EXIT, PREFLIGHT_EXIT, REFUSED_WRITES_EXIT

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_code_has_one_meaning() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)  # no alias
    assert set(MEANINGS) == set(ExitCode)
    assert len(set(MEANINGS.values())) == len(MEANINGS)


def test_the_worker_uses_the_table() -> None:
    assert REFUSED_WRITES_EXIT == ExitCode.WRITES_REFUSED
    assert PREFLIGHT_EXIT == ExitCode.SCHEMA_REFUSED
    assert DIRECTORY_DOWN_EXIT == ExitCode.DIRECTORY_UNREACHABLE
    assert FORCED_STOP_EXIT == ExitCode.FORCED_STOP


def test_help_lists_every_code() -> None:
    shown = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=200).output.split())
    for code in ExitCode:
        assert f"{int(code)}: {MEANINGS[code]}" in shown, code.name


def test_the_readme_table_lists_every_code() -> None:
    text = README.read_text()
    table = text[text.index("## Exit codes") :]
    table = table[: table.index("\n## ")]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M))
    assert sorted(int(c) for c in rows) == sorted(int(c) for c in ExitCode)

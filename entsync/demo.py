"""``entsync demo``: local services up, the bundled sample extract synced, a summary printed."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from rich.console import Console

from connectors.services.manager import ServicesConfig, up
from entsync.cli.pipeline import do_ingest, do_worker
from entsync.logs import configure_logging
from entsync.settings import Settings, load_settings
from entsync.summary import directory_summary, ldapsearch_command, render

DEMO_TIMEOUT_S = 600.0


def sample_files() -> list[Path]:
    """The bundled sample: a few schools' full extracts (schools, staff, pupils, guardians)."""
    folder = resources.files("entsync") / "samples"
    files = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".xml"))
    if not files:
        raise FileNotFoundError("the bundled sample extract is missing (entsync/samples)")
    return files


def _password_file(settings: Settings) -> Path:
    """The bind password in a 0600 file without newline, as ``ldapsearch -y`` wants it."""
    _, _, password = settings.require_ldap()
    path = settings.state_dir.resolve() / "ldapsearch.pw"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return path


def run_demo(state_dir: Path | None, console: Console) -> int:
    settings = load_settings(state_dir=state_dir)
    configure_logging(settings.log_format, "WARNING")
    console.rule("entsync demo")
    result = up(ServicesConfig(state_dir=settings.state_dir, base_dn=settings.ldap_base_dn))
    if result.started:
        console.print(f"started local services: {', '.join(result.started)}")
    if result.already_running:
        console.print(f"already running: {', '.join(result.already_running)}")
    settings = load_settings(state_dir=state_dir)  # now resolves to the running services
    files = sample_files()
    console.print(f"sample extract: {len(files)} files from {files[0].parent}")
    code = do_ingest(settings, files, report=None, force=False)
    if code != 0:
        return code
    code = do_worker(settings, until_idle=True, timeout=DEMO_TIMEOUT_S)
    if code != 0:
        return code
    summaries, by_profile = directory_summary(settings)
    render(summaries, by_profile, console)
    console.print("\nBrowse the pupils (and change the filter for the rest):")
    console.print(ldapsearch_command(settings, str(_password_file(settings))), soft_wrap=True)
    console.print("Stop the local services with: .venv/bin/entsync services down")
    return 0

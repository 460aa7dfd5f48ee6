"""What every command group shares: consoles, exit codes, the state-dir option, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from entsync.exit_codes import ExitCode
from entsync.logs import configure_logging
from entsync.settings import ConfigurationError, Settings, load_settings

console = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_REFUSED = ExitCode.FAILED
EXIT_CONFIG = ExitCode.CONFIGURATION

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="local services and stores (default ./.entsync)"),
]


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on stderr (not as markup: it may quote the operator's input)."""
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(code)


def settings_or_exit(state_dir: Path | None) -> Settings:
    """The configuration, logging configured; a configuration error exits with code 2."""
    try:
        settings = load_settings(state_dir=state_dir)
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    configure_logging(settings.log_format, settings.log_level)
    return settings

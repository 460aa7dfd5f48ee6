"""The ``entsync`` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from entsync.cli import (
    admin,
    audit,
    bridge,
    directory,
    feeds,
    lifecycle,
    pipeline,
    replay,
    services,
    status,
    topics,
)
from entsync.exit_codes import help_text

app = typer.Typer(
    name="entsync",
    help="Event-driven identity synchronizer: ONDE and staff feeds to an SDET LDAP directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Exit codes (one meaning each, for every command):\n\n" + help_text(),
)
services.register(app)
directory.register(app)
feeds.register(app)
pipeline.register(app)
admin.register(app)
lifecycle.register(app)
audit.register(app)
bridge.register(app)
replay.register(app)
status.register(app)
topics.register(app)
bridge.register_admin(admin.admin_app)


def main() -> None:
    app()

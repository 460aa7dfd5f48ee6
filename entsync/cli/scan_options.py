"""The scan options ``check``, ``ingest`` and ``run`` share, and the ScanConfig they make."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.console import Console

from connectors.aaf.config import ScanConfig

RefuseDoctype = Annotated[
    bool,
    typer.Option(
        "--refuse-doctype",
        envvar="ENTSYNC_AAF_REFUSE_DOCTYPE",
        help="refuse every DOCTYPE, even the standard <!DOCTYPE ficAlimMENESR SYSTEM "
        '"ficAlimMENESR.dtd"> accepted by default (the DTD is never loaded either way)',
    ),
]
AllowDoctype = Annotated[
    bool,
    typer.Option(
        "--allow-aaf-doctype",
        help="deprecated, does nothing: the standard AAF DOCTYPE is accepted by default",
        hidden=True,
    ),
]
Scope = Annotated[
    str | None,
    typer.Option(
        "--scope",
        help="absence scope (a UAI or an academy such as AC-DIJON) of the files whose name "
        "and records give none; a complete extract without a scope is refused",
    ),
]
_SCOPE_RE = re.compile(r"[A-Za-z0-9-]{1,64}")  # as in our file names: it goes into Kafka keys


def scan_config(
    refuse_doctype: bool, scope: str | None, allow_aaf_doctype: bool, err: Console
) -> ScanConfig:
    if allow_aaf_doctype:
        err.print("note: --allow-aaf-doctype is deprecated: the AAF DOCTYPE is accepted by default")
    if scope is not None and not _SCOPE_RE.fullmatch(scope):
        raise typer.BadParameter(
            "letters, digits and '-' only (a UAI or AC-...)", param_hint="--scope"
        )
    return ScanConfig(refuse_doctype=refuse_doctype, scope=scope)

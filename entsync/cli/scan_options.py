"""The scan options ``check``, ``ingest`` and ``run`` share, and the ScanConfig they make."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from connectors.aaf.config import ScanConfig

RefuseDoctype = Annotated[
    bool,
    typer.Option(
        "--refuse-doctype",
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


def scan_config(refuse_doctype: bool, allow_aaf_doctype: bool, err: Console) -> ScanConfig:
    if allow_aaf_doctype:
        err.print("note: --allow-aaf-doctype is deprecated: the AAF DOCTYPE is accepted by default")
    return ScanConfig(refuse_doctype=refuse_doctype)

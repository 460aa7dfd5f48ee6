"""Logging for the command line: see :mod:`connectors.logs` (connectors log without importing
the shell)."""

from __future__ import annotations

from connectors.logs import configure_logging, get_logger

__all__ = ["configure_logging", "get_logger"]

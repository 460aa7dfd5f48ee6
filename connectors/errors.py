"""Errors every layer raises and the command line reports the same way."""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""

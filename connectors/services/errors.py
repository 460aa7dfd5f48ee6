"""Errors raised while managing the local services; messages say what to do."""

from __future__ import annotations


class ServiceError(RuntimeError):
    """A local service could not be started, stopped or inspected."""


class ServiceNotInstalledError(ServiceError):
    """A service binary is missing; the message says how to install it."""


class ServiceStartError(ServiceError):
    """A service was launched but did not answer in time; the message carries its log tail."""

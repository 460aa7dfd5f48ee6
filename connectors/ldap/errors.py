"""Directory errors. Messages name the DN and the LDAP result, never attribute values."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.ldap.writer import OpResult

# Server diagnostics may quote values (the unique overlay prints its search filter): keep the
# attribute names, drop what follows "=" up to the closing parenthesis.
_ASSERTION_VALUE = re.compile(r"(=|~=|>=|<=)[^()]*\)")


def redact_diagnostic(message: str) -> str:
    """A server diagnostic message with filter assertion values removed."""
    return _ASSERTION_VALUE.sub(r"\1…)", message)


class DirectoryError(RuntimeError):
    """Base class. After a batch, ``results`` holds what each op did (None: not done)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.results: list[OpResult | None] = []
        self.errors: list[DirectoryError] = []


class DirectoryWriteError(DirectoryError):
    """The directory refused an operation for good (schema, constraint, missing parent...)."""

    def __init__(self, operation: str, dn: str, result_code: int, result_name: str, message: str):
        self.operation = operation
        self.dn = dn
        self.result_code = result_code
        self.result_name = result_name
        self.diagnostic = redact_diagnostic(message)
        text = f"LDAP {operation} of {dn!r} failed: {result_name} ({result_code})"
        super().__init__(f"{text}: {self.diagnostic}" if self.diagnostic else text)

    def __reduce__(self) -> tuple[type, tuple[str, str, int, str, str]]:
        # Crosses process boundaries (the writer's processes): rebuilt from its fields.
        args = (self.operation, self.dn, self.result_code, self.result_name, self.diagnostic)
        return type(self), args


class DirectoryUnavailableError(DirectoryError):
    """The directory could not be reached or stayed busy for the whole retry budget."""


class WriterStoppedError(DirectoryError):
    """The writer was aborted (the worker is stopping): some ops were not done. Not the
    directory's fault; they are done again when their inputs are read again."""


class DirectoryAuthError(DirectoryError):
    """The bind was refused: wrong DN or password."""


class DirectoryTlsError(DirectoryAuthError):
    """TLS with the server failed: its certificate is not trusted or does not name the host,
    or StartTLS was refused. Not retried: it does not heal by itself."""


class BaseEntryError(DirectoryError):
    """The base DN is missing and entsync may not create it (not the server's suffix, no
    parent): the server holds another tree, or the base DN is wrong."""


class PreflightError(DirectoryError):
    """The directory's schema does not accept what entsync writes; the message lists why."""

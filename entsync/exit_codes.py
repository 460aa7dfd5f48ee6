"""Every exit code of ``entsync``: one meaning each, listed in ``entsync --help`` and the README.

Scripts and Kubernetes jobs branch on them, so a code never changes meaning between commands.
"""

from __future__ import annotations

from enum import IntEnum

from connectors.stream.stopping import FORCED_STOP_EXIT


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    CONFIGURATION = 2
    SERVICES_NOT_RUNNING = 3
    WRITES_REFUSED = 4
    SCHEMA_REFUSED = 5
    DIRECTORY_UNREACHABLE = 6
    FORCED_STOP = FORCED_STOP_EXIT
    HISTORY_INCOMPLETE = 8
    FILES_REFUSED = 9
    BROKER_UNREACHABLE = 10


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "refused or failed: the message says why (a check that found problems, "
    "a request the directory's state refuses, --until-idle not idle in time, an unexpected "
    "error)",
    ExitCode.CONFIGURATION: "a setting or an option is missing or wrong",
    ExitCode.SERVICES_NOT_RUNNING: "'services status': a local service is not running (the LSB "
    "status convention)",
    ExitCode.WRITES_REFUSED: "the worker: directory writes were refused (retried at the "
    "entries' next change)",
    ExitCode.SCHEMA_REFUSED: "the worker: the directory's schema lacks what entsync writes; "
    "nothing was done",
    ExitCode.DIRECTORY_UNREACHABLE: "the directory did not answer (or refused the connection "
    "or the bind)",
    ExitCode.FORCED_STOP: "the worker: a stop signal and no clean stop within 8 s, or a second "
    "signal",
    ExitCode.HISTORY_INCOMPLETE: "replay: the topics' history does not explain the directory",
    ExitCode.FILES_REFUSED: "an input file was refused: nothing of it was published",
    ExitCode.BROKER_UNREACHABLE: "the broker did not answer, or refused to create a topic",
}


def help_text() -> str:
    """The table for ``entsync --help`` (one paragraph per code: typer's help rewraps lines)."""
    return "\n\n".join(f"{int(code)}: {MEANINGS[code]}" for code in ExitCode)

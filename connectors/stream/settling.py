"""A worker that waits long for its share of the partitions says so.

faust logs its joins and rebalances at INFO, below the worker's default level, so a group that
never settles was a silent hang: on the local broker (tansu 0.6), a group can keep naming a
member that left as its leader, and every later join waits for that leader's assignment for
ever (see :func:`connectors.stream.group.may_leave`, which keeps the worker's own stops from
causing it). Rules (:func:`warning_due`, checked every ``check_s``):

1. The worker is unsettled while faust rebalances (its tables' recovery included) or before
   its first assignment.
2. Unsettled for ``every_s`` (three session timeouts), it logs ``worker.group_not_settled``
   with how long, and the group's state and member count as the broker describes them; then
   again every ``every_s`` while it lasts.
3. Settled, the count starts again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from connectors.logs import get_logger
from connectors.stream.group import Describe

log = get_logger(__name__)

SETTLE_WARN_SESSIONS = 3
CHECK_S = 1.0


def unsettled(app: Any) -> bool:
    """Rule 1 (``app``: faust's untyped ``App``): rebalancing, or never assigned yet."""
    return bool(app.rebalancing) or not app.rebalancing_count


def warning_due(since: float, warned_at: float | None, now: float, every_s: float) -> bool:
    """Rule 2: unsettled since ``since``, last warned at ``warned_at`` (None: not yet)."""
    if now - since < every_s:
        return False
    return warned_at is None or now - warned_at >= every_s


class SettleWatch:
    """Rules 1-3 for a faust app (``Any``: faust's untyped ``App``), run as an app timer."""

    def __init__(
        self,
        app: Any,
        describe: Describe,
        every_s: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._app, self._describe, self.every_s = app, describe, every_s
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._since: float | None = None
        self._warned_at: float | None = None

    async def tick(self) -> None:
        now = self._clock()
        if not unsettled(self._app):  # rule 3
            self._since = self._warned_at = None
            return
        if self._since is None:
            self._since = now
        if not warning_due(self._since, self._warned_at, now, self.every_s):
            return
        self._warned_at = now
        try:
            group = await self._describe()
        except Exception as exc:  # the broker away: the warning without the group's side
            log.warning(
                "worker.group_not_settled",
                waited_s=round(now - self._since),
                group_state=None,
                error=type(exc).__name__,
            )
            return
        log.warning(
            "worker.group_not_settled",
            waited_s=round(now - self._since),
            group_state=group.state,
            group_members=len(group.members),
        )

"""``/metrics``, ``/healthz`` and ``/readyz`` on a port of their own (worker, audit consumer).

A small aiohttp server in the process's own event loop, so that ``/healthz`` answering means
the loop is not stuck. The socket is bound before anything else starts (:func:`bind`): a port
already taken stops the command at once, with a message naming the setting.

``/readyz`` runs the process's checks: 200 and ``{"ready": true, "checks": {...}}`` when all
pass, else 503 with the failing checks' reasons (short words, no secrets).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from connectors.monitoring.metrics import READY

# name -> None when fine, else why not; each check is bounded by CHECK_TIMEOUT_S
Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_S = 5.0


class PortInUseError(RuntimeError):
    """The metrics port cannot be bound; the message names the setting."""


def bind(host: str, port: int, setting: str = "ENTSYNC_METRICS_PORT") -> socket.socket:
    """A listening socket on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise PortInUseError(
            f"cannot serve /metrics on {host}:{port} ({exc.strerror}): set {setting} to a free "
            "port, or 0 to serve no metrics"
        ) from exc
    sock.setblocking(False)
    return sock


async def run_checks(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """(all passed, name -> 'ok' or the reason)."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            failed = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            failed = "timed out"
        except Exception as exc:  # a check that fails is a 'not ready', never a 500
            failed = type(exc).__name__
        results[name] = failed or "ok"
    ready = all(value == "ok" for value in results.values())
    READY.set(1 if ready else 0)
    return ready, results


async def metrics_response() -> tuple[bytes, str]:
    """The exposition text (rendered off the loop: a few ms for a large worker)."""
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, REGISTRY)
    return body, CONTENT_TYPE_LATEST


class HealthServer:
    """The three endpoints on an already bound socket."""

    def __init__(self, sock: socket.socket, checks: Mapping[str, Check]) -> None:
        self._sock = sock
        self._checks = checks
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._sock.close()

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = await metrics_response()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, results = await run_checks(self._checks)
        body = json.dumps({"ready": ready, "checks": results}) + "\n"
        return web.Response(
            text=body, status=200 if ready else 503, content_type="application/json"
        )

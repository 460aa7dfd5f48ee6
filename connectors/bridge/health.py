"""The bridge's ``/metrics``, ``/healthz`` and ``/readyz``, on its own HTTP port.

They are answered before the bridge's pages (no session, no security headers: no cookie is
read or set). Ready: the store answers, and every configured provider's discovery document was
read (once read it is kept: a provider outage later does not take the bridge out of its
Service; its pages then say the sign-in service is unavailable).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.bridge.oidc import OidcError, RelyingParty
from connectors.bridge.store import BridgeStore
from connectors.monitoring.server import Check, metrics_response, run_checks

PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


def bridge_checks(store: BridgeStore, providers: Mapping[str, RelyingParty]) -> dict[str, Check]:
    async def store_answers() -> str | None:
        store.session_bridge("readyz", time.time())  # one indexed read
        return None

    def discovery(rp: RelyingParty) -> Check:
        async def check() -> str | None:
            try:
                await rp.metadata()
            except OidcError as exc:
                return exc.reason
            return None

        return check

    checks: dict[str, Check] = {"store": store_answers}
    checks.update({f"provider:{name}": discovery(rp) for name, rp in sorted(providers.items())})
    return checks


def with_health(app: ASGIApp, checks: Mapping[str, Check]) -> ASGIApp:
    """``app`` with the three endpoints in front of it."""

    async def metrics(request: Request) -> Response:
        body, content_type = await metrics_response()
        return Response(body, headers={"Content-Type": content_type})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready, results = await run_checks(checks)
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    health = Starlette(
        routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)]
    )

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PATHS:
            await health(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch

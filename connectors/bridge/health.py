"""The bridge's ``/metrics``, ``/healthz`` and ``/readyz``, on its own HTTP port.

They are answered before the bridge's pages (no session, no security headers: no cookie is
read or set). Ready: the store answers, and every configured provider's discovery document was
read (once read it is kept: a provider outage later does not take the bridge out of its
Service; its pages then say the sign-in service is unavailable), and no provider has refused
the bridge's client credentials.
"""

from __future__ import annotations

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


OK = "ok"


async def _store_fact(store: BridgeStore) -> str:
    try:
        store.ping()
    except Exception as exc:  # the driver's own errors: whatever they are, not ready
        return type(exc).__name__
    return OK


async def _provider_fact(rp: RelyingParty) -> str:
    """A provider refused the bridge's client credentials (a wrong secret found at a parent's
    callback, after a start-up check that could not reach it), or its discovery failed."""
    if rp.client_refused:
        return "client-refused"
    try:
        await rp.metadata()
    except OidcError as exc:
        return exc.reason
    return OK


async def readiness(store: BridgeStore, providers: Mapping[str, RelyingParty]) -> dict[str, str]:
    """``ok`` or a short reason (no secret, no URL) for ``store`` and each provider."""
    facts = {"store": await _store_fact(store)}
    for name, rp in sorted(providers.items()):
        facts[name] = await _provider_fact(rp)
    return facts


def ready(facts: Mapping[str, str]) -> bool:
    return all(value == OK for value in facts.values())


def bridge_checks(store: BridgeStore, providers: Mapping[str, RelyingParty]) -> dict[str, Check]:
    """The same facts as :func:`readiness`, as ``/readyz`` checks (None: ok)."""

    async def store_answers() -> str | None:
        fact = await _store_fact(store)
        return None if fact == OK else fact

    def provider(rp: RelyingParty) -> Check:
        async def check() -> str | None:
            fact = await _provider_fact(rp)
            return None if fact == OK else fact

        return check

    checks: dict[str, Check] = {"store": store_answers}
    checks.update({f"provider:{name}": provider(rp) for name, rp in sorted(providers.items())})
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

"""What the bridge's readiness check reports: its store answers, each provider's discovery
answered, and no provider has refused the bridge's client credentials (a wrong secret found
at a parent's callback, after a start-up check that could not reach the provider)."""

from __future__ import annotations

from connectors.bridge.oidc import OidcError, RelyingParty
from connectors.bridge.store import BridgeStore
from schemas.bridge import Provider

OK = "ok"


async def readiness(store: BridgeStore, providers: dict[Provider, RelyingParty]) -> dict[str, str]:
    """``ok`` or a short reason (no secret, no URL) for ``store`` and each provider."""
    facts: dict[str, str] = {}
    try:
        store.ping()
        facts["store"] = OK
    except Exception as exc:  # the driver's own errors: whatever they are, not ready
        facts["store"] = type(exc).__name__
    for name, rp in sorted(providers.items()):
        if rp.client_refused:
            facts[name] = "client-refused"
            continue
        try:
            await rp.metadata()
            facts[name] = OK
        except OidcError as exc:
            facts[name] = exc.reason
    return facts


def ready(facts: dict[str, str]) -> bool:
    return all(value == OK for value in facts.values())

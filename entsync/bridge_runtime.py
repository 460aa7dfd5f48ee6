"""Assemble the bridge from settings: store, directory, events, providers; run it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
import uvicorn

from connectors.bridge.events import EventSink
from connectors.bridge.health import bridge_checks, with_health
from connectors.bridge.oidc import OidcError, ProviderConfig, RelyingParty
from connectors.bridge.service import BridgeService
from connectors.bridge.store import DEFAULT_FILE, BridgeStore, open_bridge_store
from connectors.bridge.web import WebConfig, build_app
from connectors.monitoring.metrics import set_build_info
from connectors.sqldb import StoreUrlError, redact
from connectors.stream.clients import KafkaParams
from entsync.audit_key import audit_digest_key
from entsync.ldap_clients import ldap_params
from entsync.settings import ConfigurationError, Settings
from schemas.bridge import Provider
from sync.educonnect import next_run

log = structlog.get_logger(__name__)
MIN_SECRET_LENGTH = 32


def bridge_secret(settings: Settings) -> str:
    secret = settings.bridge_secret.get_secret_value() if settings.bridge_secret else ""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"ENTSYNC_BRIDGE_SECRET must be set to at least {MIN_SECRET_LENGTH} random characters"
        )
    return secret


def provider_configs(settings: Settings) -> dict[Provider, ProviderConfig]:
    """The configured identity providers (an issuer without client id/secret is an error)."""
    base = settings.bridge_public_url.rstrip("/")
    found: dict[Provider, ProviderConfig] = {}
    for name in ("educonnect", "franceconnect"):
        provider: Provider = name
        issuer = getattr(settings, f"bridge_{name}_issuer")
        if not issuer:
            continue
        client_id = getattr(settings, f"bridge_{name}_client_id")
        secret = getattr(settings, f"bridge_{name}_client_secret")
        if not client_id or secret is None:
            upper = name.upper()
            raise ConfigurationError(
                f"ENTSYNC_BRIDGE_{upper}_ISSUER is set: set ENTSYNC_BRIDGE_{upper}_CLIENT_ID "
                f"and ENTSYNC_BRIDGE_{upper}_CLIENT_SECRET too"
            )
        fc = name == "franceconnect"
        found[provider] = ProviderConfig(
            name=provider,
            issuer=issuer,
            client_id=client_id,
            client_secret=secret.get_secret_value(),
            redirect_uri=f"{base}/retour/{name}",
            scope=getattr(settings, f"bridge_{name}_scope"),
            acr_values=settings.bridge_franceconnect_acr if fc else None,
            signed_userinfo=fc,
            token_endpoint_auth_method="client_secret_post" if fc else "client_secret_basic",
            leeway_seconds=settings.bridge_oidc_leeway_seconds,
        )
    return found


def store_path(settings: Settings) -> BridgeStore:
    """The bridge's store: ENTSYNC_BRIDGE_STORE_URL, or the SQLite file ENTSYNC_BRIDGE_STORE."""
    url = settings.bridge_store_url.get_secret_value() if settings.bridge_store_url else None
    if url and settings.bridge_store:
        raise ConfigurationError(
            "set ENTSYNC_BRIDGE_STORE_URL or ENTSYNC_BRIDGE_STORE (an SQLite file), not both"
        )
    default = settings.bridge_store or settings.state_dir / DEFAULT_FILE
    try:
        return open_bridge_store(url, default)
    except StoreUrlError as exc:
        raise ConfigurationError(f"ENTSYNC_BRIDGE_STORE_URL: {exc}") from exc
    except Exception as exc:  # the driver's own errors: unreachable server, bad credentials
        where = redact(url) if url else str(default)
        raise ConfigurationError(
            f"cannot open the bridge store {where}: {type(exc).__name__}"
        ) from exc


@contextlib.asynccontextmanager
async def open_service(settings: Settings, kafka: KafkaParams) -> AsyncIterator[BridgeService]:
    """The bridge's service, with its store and event producer open."""
    secret = bridge_secret(settings)
    store = store_path(settings)
    try:
        async with EventSink(kafka, settings.topic_partitions) as sink:
            yield BridgeService(
                store=store,
                ldap=ldap_params(settings),
                base_dn=settings.ldap_base_dn,
                sink=sink,
                digest_key=hashlib.sha256(f"subject-digest\x1f{secret}".encode()).digest(),
                audit_key=audit_digest_key(settings),
                disable_ent_login=settings.bridge_disable_ent_login,
                franceconnect_name_only=settings.bridge_franceconnect_name_only_match,
            )
    finally:
        store.close()


async def check_clients(providers: dict[Provider, RelyingParty]) -> None:
    """Refuse to start with a client id or secret a provider refuses (rather than failing every
    parent's sign-in); a provider unreachable now is only logged: it may come back."""
    for name, rp in providers.items():
        try:
            accepted = await rp.check_client()
        except OidcError as exc:
            log.warning("bridge.client_check_skipped", provider=name, reason=exc.reason)
            continue
        if not accepted:
            upper = name.upper()
            raise ConfigurationError(
                f"{name} refuses the bridge's client credentials: check "
                f"ENTSYNC_BRIDGE_{upper}_CLIENT_ID and ENTSYNC_BRIDGE_{upper}_CLIENT_SECRET"
            )
        log.info("bridge.client_accepted", provider=name)


def server_config(settings: Settings, app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.bridge_host,
        port=settings.bridge_port,
        log_config=None,
        access_log=False,
        # X-Forwarded-For only from the proxies named (rate limits count client IPs).
        proxy_headers=bool(settings.bridge_trusted_proxies),
        forwarded_allow_ips=settings.bridge_trusted_proxies or None,
    )


def claim_run(store: BridgeStore, due: datetime) -> bool:
    """Whether this process makes the J+1 run due at ``due``: replicas on one store all wake
    up for it, the first to claim it runs it (a single-use mark, like a used response)."""
    mark = hashlib.sha256(f"educonnect-run\x1f{due.astimezone(UTC).isoformat()}".encode())
    return store.use_once(mark.hexdigest(), due)


async def nightly(service: BridgeService, hour: int) -> None:
    """Run the J+1 sync every day at ``hour`` (Europe/Paris), forever (one replica of many)."""
    while True:
        now = datetime.now(UTC)
        due = next_run(now, hour)
        log.info("educonnect.sync_scheduled", at=due.isoformat())
        await asyncio.sleep(max(0.0, (due - now).total_seconds()))
        # Used responses are refused by age before they are looked up: a day is plenty.
        service.store.purge_used(due - timedelta(days=1))
        if not claim_run(service.store, due):
            log.info("educonnect.sync_claimed_elsewhere", at=due.isoformat())
            continue
        try:
            await service.sync_now()
        except Exception as exc:  # one failed night must not stop the service
            log.error("educonnect.sync_failed", error=type(exc).__name__)


async def serve(settings: Settings, kafka: KafkaParams) -> None:
    """``entsync bridge serve``: the web service and, if enabled, the nightly J+1 loop."""
    configs = provider_configs(settings)
    if not configs:
        raise ConfigurationError(
            "no identity provider: set ENTSYNC_BRIDGE_EDUCONNECT_ISSUER and/or "
            "ENTSYNC_BRIDGE_FRANCECONNECT_ISSUER"
        )
    web = WebConfig(
        public_url=settings.bridge_public_url,
        session_secret=bridge_secret(settings),
        cookie_secure=settings.bridge_cookie_secure,
        ent_login_url=settings.bridge_ent_login_url,
        source_keys_claim=settings.bridge_educonnect_source_keys_claim,
        origin_claim=settings.bridge_educonnect_origin_claim,
        login_limit=settings.bridge_login_limit,
        attempt_limit=settings.bridge_attempt_limit,
        window_seconds=settings.bridge_rate_window_seconds,
    )
    async with httpx.AsyncClient(timeout=15.0) as http, contextlib.AsyncExitStack() as stack:
        providers = {name: RelyingParty(config, http) for name, config in configs.items()}
        await check_clients(providers)
        service = await stack.enter_async_context(open_service(settings, kafka))
        app = build_app(service, providers, web)
        set_build_info("bridge")
        checks = bridge_checks(service.store, {str(name): rp for name, rp in providers.items()})
        server = uvicorn.Server(server_config(settings, with_health(app, checks)))
        loop_task = (
            asyncio.create_task(nightly(service, settings.bridge_sync_hour))
            if settings.bridge_sync_enabled
            else None
        )
        log.info("bridge.serving", port=settings.bridge_port, providers=sorted(providers))
        try:
            await server.serve()
        finally:
            if loop_task is not None:
                loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task

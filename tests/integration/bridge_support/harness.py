"""Drive the bridge (in process, over ASGI) through real providers, as a browser would."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.bridge.events import EventSink
from connectors.bridge.oidc import ProviderConfig, RelyingParty
from connectors.bridge.service import BridgeService
from connectors.bridge.store import open_bridge_store
from connectors.bridge.web import WebConfig, build_app
from connectors.ldap.connection import LdapParams
from connectors.stream.clients import KafkaParams
from schemas.bridge import Provider

BRIDGE_URL = "http://bridge.test"
CLIENT_ID = "ent-bridge"
CLIENT_SECRET = "client-secret-for-tests-only"


def provider_config(
    name: Provider, issuer: str, *, discovery_url: str | None = None
) -> ProviderConfig:
    fc = name == "franceconnect"
    return ProviderConfig(
        name=name,
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"{BRIDGE_URL}/retour/{name}",
        scope="openid given_name family_name birthdate" if fc else "openid profile",
        acr_values="eidas1" if fc else None,
        signed_userinfo=fc,
        token_endpoint_auth_method="client_secret_post" if fc else "client_secret_basic",
        discovery_url=discovery_url,
    )


@dataclass
class Bridge:
    service: BridgeService
    client: httpx.AsyncClient
    sink: EventSink
    http: httpx.AsyncClient
    providers: dict[Provider, RelyingParty]
    authorize_urls: list[str] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        """A second, independent browser on the same bridge."""
        return httpx.AsyncClient(transport=self.client._transport, base_url=BRIDGE_URL)

    async def start(self, provider: str, client: httpx.AsyncClient | None = None) -> str:
        response = await (client or self.client).get(f"/connexion/{provider}")
        assert response.status_code == 303, response.text
        url = response.headers["location"]
        self.authorize_urls.append(url)
        return url

    async def authorize(self, authorize_url: str, sub: str) -> str:
        """Sign in at the real provider's own pages; the callback URL it sends the browser to."""
        async with httpx.AsyncClient() as provider_browser:
            response = await provider_browser.get(authorize_url)
            for _ in range(12):
                if response.is_redirect:
                    location = str(response.url.join(response.headers["location"]))
                    if location.startswith(BRIDGE_URL):
                        return location
                    response = await provider_browser.get(location)
                elif 'name="sub"' in response.text:  # oidc-provider-mock's sign-in form
                    response = await provider_browser.post(str(response.url), data={"sub": sub})
                elif 'name="login"' in response.text:  # the Node provider's sign-in page
                    response = await provider_browser.post(str(response.url), data={"login": sub})
                else:
                    break
        raise AssertionError(f"the provider did not redirect back: {response.status_code}")

    async def callback(self, url: str, client: httpx.AsyncClient | None = None) -> httpx.Response:
        return await (client or self.client).get(url.removeprefix(BRIDGE_URL))

    async def sign_in(
        self, provider: str, sub: str, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        url = await self.authorize(await self.start(provider, client), sub)
        return await self.callback(url, client)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@contextlib.asynccontextmanager
async def running_bridge(
    *,
    ldap: LdapParams,
    base_dn: str,
    bootstrap: str,
    store_file: Path | str,
    providers: dict[Provider, ProviderConfig],
) -> AsyncIterator[Bridge]:
    """``store_file``: an SQLite file, or a store URL (``postgresql://…``)."""
    store = open_bridge_store(str(store_file), Path("unused.sqlite3"))
    try:
        async with EventSink(KafkaParams(bootstrap)) as sink, httpx.AsyncClient(timeout=15) as http:
            service = BridgeService(
                store=store,
                ldap=ldap,
                base_dn=base_dn,
                sink=sink,
                digest_key=hashlib.sha256(b"test digest key").digest(),
                audit_key=b"audit digest key for the bridge tests",
            )
            await service.sync_now()
            web = WebConfig(
                public_url=BRIDGE_URL,
                session_secret="session-secret-for-tests-only-0123456789",
                cookie_secure=False,
                ent_login_url="/ent",
                source_keys_claim="FrEduCtSourceKeys",
                origin_claim="FrEduCtAccountOrigin",
                login_limit=50,
                attempt_limit=5,
                window_seconds=600,
            )
            rps = {name: RelyingParty(cfg, http) for name, cfg in providers.items()}
            app = build_app(service, rps, web)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL) as client:
                yield Bridge(service=service, client=client, sink=sink, http=http, providers=rps)
    finally:
        store.close()

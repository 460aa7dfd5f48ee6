"""The bridge facing a provider that refuses the code exchange, and a client it does not accept.

The provider is Node's certified ``oidc-provider`` configured like FranceConnect v2
(``bridge_support/provider.mjs``): unlike ``oidc-provider-mock`` it really refuses a code
already redeemed, an expired code, and a wrong client secret (a code injected into another
login fails PKCE there: ``test_bridge_oidc.py``). Each refusal must give the parent the refusal
page (HTTP 400, never 500) and the log ``bridge.callback_refused`` with its reason; a wrong
secret must also stop ``entsync bridge serve`` at start, with a message naming the setting and
not the secret. The expired code is also shown to a parent in headless Chromium, through
``entsync bridge serve`` run as in production.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.bridge.health import readiness, ready
from connectors.bridge.oidc import ProviderConfig, RelyingParty
from connectors.ldap.connection import LdapParams
from tests.integration import test_bridge_oidc as oidc_tests
from tests.integration.bridge_support.harness import (
    BRIDGE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    Bridge,
    provider_config,
    query,
    running_bridge,
)
from tests.integration.bridge_support.providers import FranceConnect, franceconnect
from tests.integration.bridge_support.world import World
from tests.integration.conftest import LocalServices
from tests.integration.test_bridge_oidc import JEAN, bridge_attrs, refusal_reasons

# The seeded directory and the module's Node provider, as in the bridge's OIDC tests.
world = oidc_tests.world
fc = oidc_tests.fc

pytestmark = pytest.mark.integration

WRONG_SECRET = "not-the-secret-the-provider-knows"
ENTSYNC = str(Path(sys.executable).parent / "entsync")


def _bridge(
    services: LocalServices, tmp: Path, config: ProviderConfig
) -> contextlib.AbstractAsyncContextManager[Bridge]:
    return running_bridge(
        ldap=services.ldap_params,
        base_dn=services.base_dn,
        bootstrap=services.kafka_bootstrap,
        store_file=tmp / "bridge.sqlite3",
        providers={"franceconnect": config},
    )


@pytest.fixture
async def bridge(
    local_services: LocalServices, world: World, fc: FranceConnect, tmp_path: Path
) -> AsyncIterator[Bridge]:
    config = provider_config("franceconnect", fc.issuer)
    async with _bridge(local_services, tmp_path, config) as running:
        yield running


def _session(client: httpx.AsyncClient) -> dict[str, object]:
    """The bridge's session cookie read as a browser could (it is signed, not encrypted)."""
    value = client.cookies["entsync_bridge"]
    body = value.split(".", 1)[0]
    return dict(json.loads(base64.b64decode(body + "=" * (-len(body) % 4))))


def _refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and "pas abouti" in response.text


async def test_a_code_redeemed_before_the_bridge_is_refused_by_the_provider(
    bridge: Bridge, fc: FranceConnect, world: World, ldap_params: LdapParams
) -> None:
    """Someone who got the code (and the verifier) redeems it first; the provider refuses the
    bridge's exchange of it (``invalid_grant``), which the bridge has never seen: its own
    single-use check cannot catch it."""
    fc.set_user("fc-jean", JEAN)
    callback = await bridge.authorize(await bridge.start("franceconnect"), "fc-jean")
    verifier = _session(bridge.client)["pending"]["verifier"]  # type: ignore[index]
    meta = await bridge.http.get(f"{fc.issuer}/.well-known/openid-configuration")
    first = await bridge.http.post(
        meta.json()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query(callback)["code"],
            "redirect_uri": f"{BRIDGE_URL}/retour/franceconnect",
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert first.status_code == 200, first.text
    with capture_logs() as logs:
        response = await bridge.callback(callback)
    assert _refused(response), response.status_code
    assert refusal_reasons(logs) == ["code-refused"]
    assert "entsyncBridgeId" not in bridge_attrs(ldap_params, world.dn("re-fc"))


@pytest.fixture
def quick_fc(tmp_path: Path) -> Iterator[FranceConnect]:
    """A second Node provider whose codes may be redeemed for one second only."""
    with franceconnect(
        tmp_path,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        bridge_url=BRIDGE_URL,
        code_ttl=1,
    ) as provider:
        yield provider


async def test_an_expired_code_is_refused_by_the_provider(
    local_services: LocalServices, world: World, quick_fc: FranceConnect, tmp_path: Path
) -> None:
    quick_fc.set_user("fc-jean", JEAN)
    config = provider_config("franceconnect", quick_fc.issuer)
    async with _bridge(local_services, tmp_path, config) as bridge:
        callback = await bridge.authorize(await bridge.start("franceconnect"), "fc-jean")
        time.sleep(2.5)  # the browser was slow: the code expired at the provider
        with capture_logs() as logs:
            response = await bridge.callback(callback)
        assert _refused(response), response.status_code
        assert refusal_reasons(logs) == ["code-refused"]
        # A new login, in time, goes through.
        response = await bridge.sign_in("franceconnect", "fc-jean")
        assert response.headers.get("location") == "/rattachement", response.text


async def test_a_wrong_client_secret_is_found_by_the_check_and_refused_at_callback(
    local_services: LocalServices, world: World, fc: FranceConnect, tmp_path: Path
) -> None:
    right = provider_config("franceconnect", fc.issuer)
    wrong = replace(right, client_secret=WRONG_SECRET)
    async with httpx.AsyncClient() as http:
        assert await RelyingParty(right, http).check_client() is True
        checked = RelyingParty(wrong, http)
        assert await checked.check_client() is False and checked.client_refused
    fc.set_user("fc-jean", JEAN)
    async with _bridge(local_services, tmp_path, wrong) as bridge:
        with capture_logs() as logs:
            response = await bridge.sign_in("franceconnect", "fc-jean")
        assert _refused(response), response.status_code
        assert refusal_reasons(logs) == ["client-refused"]
        assert [e["provider"] for e in logs if e["event"] == "bridge.client_refused_by_provider"]
        assert WRONG_SECRET not in json.dumps(logs, default=str)
        # The readiness check says so from now on (the service is not ready).
        facts = await readiness(bridge.service.store, bridge.providers)
        assert facts == {"store": "ok", "franceconnect": "client-refused"} and not ready(facts)


def test_serve_does_not_start_with_a_secret_the_provider_refuses(
    local_services: LocalServices, fc: FranceConnect, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ENTSYNC_STATE_DIR": str(local_services.state_dir),
        "ENTSYNC_BRIDGE_STORE": str(tmp_path / "bridge.sqlite3"),
        "ENTSYNC_BRIDGE_SECRET": "refusal-secret-0123456789-0123456789-abc",
        "ENTSYNC_BRIDGE_PORT": "0",
        "ENTSYNC_BRIDGE_PUBLIC_URL": BRIDGE_URL,
        "ENTSYNC_BRIDGE_SYNC_ENABLED": "false",
        "ENTSYNC_BRIDGE_FRANCECONNECT_ISSUER": fc.issuer,
        "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_ID": CLIENT_ID,
        "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_SECRET": WRONG_SECRET,
    }
    done = subprocess.run(
        [ENTSYNC, "bridge", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # EXIT_CONFIG
    out = done.stdout + done.stderr
    assert "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_SECRET" in out, out
    assert WRONG_SECRET not in out


def test_a_parent_whose_code_expired_sees_the_refusal_page_in_chromium(
    local_services: LocalServices, tmp_path: Path
) -> None:
    """``entsync bridge serve`` as in production, headless Chromium as the parent's browser;
    the way back to the bridge takes three seconds, past the code's one-second life."""
    from playwright.sync_api import sync_playwright

    from tests.integration.bridge_support.providers import SlowLink, free_port
    from tests.integration.test_bridge_e2e import CHROMIUM, FLAGS, bridge_server

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium is needed: ./dev setup installs it")
    port = free_port()
    link = SlowLink(port, delay=3)
    public = f"http://127.0.0.1:{link.port}"
    with (
        franceconnect(
            tmp_path,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            bridge_url=public,
            code_ttl=1,
        ) as provider,
        link,
    ):
        provider.set_user("fc-jean", JEAN)
        env = {
            **os.environ,
            "ENTSYNC_STATE_DIR": str(local_services.state_dir),
            "ENTSYNC_BRIDGE_STORE": str(tmp_path / "bridge.sqlite3"),
            "ENTSYNC_BRIDGE_SECRET": "refusal-secret-0123456789-0123456789-abc",
            "ENTSYNC_BRIDGE_PORT": str(port),
            "ENTSYNC_BRIDGE_PUBLIC_URL": public,
            "ENTSYNC_BRIDGE_COOKIE_SECURE": "false",  # plain http on localhost, tests only
            "ENTSYNC_BRIDGE_SYNC_ENABLED": "false",
            "ENTSYNC_BRIDGE_FRANCECONNECT_ISSUER": provider.issuer,
            "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_ID": CLIENT_ID,
            "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_SECRET": CLIENT_SECRET,
            "ENTSYNC_LOG_FORMAT": "json",
        }

        with bridge_server(env, tmp_path) as url:
            playwright = sync_playwright().start()
            try:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=FLAGS, headless=True
                )
                try:
                    page = browser.new_page(java_script_enabled=False)
                    page.goto(url + "/")
                    page.get_by_role("link", name="S'identifier avec FranceConnect").click()
                    page.fill("input[name=login]", "fc-jean")
                    page.get_by_role("button", name="Se connecter").click()
                    page.wait_for_url(f"{url}/retour/**")
                    assert "La connexion n'a pas abouti" in page.inner_text("main")
                finally:
                    browser.close()
            finally:
                playwright.stop()
        served = (tmp_path / "serve.log").read_text()
    refusals = [
        json.loads(line)
        for line in served.splitlines()
        if line.startswith("{") and "bridge.callback_refused" in line
    ]
    assert [r["reason"] for r in refusals] == ["code-refused"], served[-3000:]
    assert "Traceback" not in served and "fc-jean" not in served

"""The bridge's store on a real PostgreSQL server: the store's contract (the unit tests, run
again here), and two bridge replicas on one store serving one parent in turn, as behind a load
balancer without sticky sessions: what one records, the other sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.ldap.connection import LdapParams
from entsync.bridge_runtime import store_path
from entsync.settings import ConfigurationError, Settings
from tests.integration import test_bridge_oidc as oidc_tests
from tests.integration.bridge_support.harness import BRIDGE_URL, provider_config, running_bridge
from tests.integration.bridge_support.providers import EduConnect, educonnect
from tests.integration.bridge_support.world import World
from tests.integration.conftest import LocalServices
from tests.integration.postgres_support import PostgresServer
from tests.unit.test_bridge_store import (  # noqa: F401  (the same contract, run on PostgreSQL)
    opener,
    test_a_run_saved_by_another_process_is_seen,
    test_a_session_ends_at_logout_or_expiry_wherever_it_was_opened,
    test_one_replica_of_many_claims_each_nightly_run,
    test_rate_windows_count_the_attempts_of_every_connection,
    test_responses_are_used_once_and_the_first_answer_wins_across_connections,
    test_the_sign_in_index_follows_the_last_run_and_bridges_are_read_by_id,
    test_the_snapshot_is_parsed_once_per_run,
)

pytestmark = pytest.mark.integration

world = oidc_tests.world


@pytest.fixture
def bridge_store_url(postgres: PostgresServer) -> str:
    """Each test gets a database of its own on the session's server."""
    return postgres.create_database("bridge")


@pytest.fixture
def ec() -> Iterator[EduConnect]:
    with educonnect() as provider:
        yield provider


def test_the_setting_opens_postgresql_and_never_shows_the_password(
    bridge_store_url: str, postgres: PostgresServer
) -> None:
    store = store_path(Settings(bridge_store_url=bridge_store_url))
    try:
        assert store.kind == "postgresql"
        store.ping()
    finally:
        store.close()
    wrong = bridge_store_url.replace(postgres.password, "not-the-password")
    with pytest.raises(ConfigurationError) as refused:
        store_path(Settings(bridge_store_url=wrong))
    assert "not-the-password" not in str(refused.value) and ":***@" in str(refused.value)


async def test_two_replicas_on_one_store_serve_one_parent_in_turn(
    local_services: LocalServices,
    world: World,
    ec: EduConnect,
    bridge_store_url: str,
    ldap_params: LdapParams,
) -> None:
    ec.set_user("ec-mother", oidc_tests.MOTHER)
    providers = {"educonnect": provider_config("educonnect", ec.issuer)}
    common = {
        "ldap": local_services.ldap_params,
        "base_dn": local_services.base_dn,
        "bootstrap": local_services.kafka_bootstrap,
        "store_file": bridge_store_url,
        "providers": providers,
    }
    async with running_bridge(**common) as one, running_bridge(**common) as two:  # type: ignore[arg-type]
        # The login starts on one replica and comes back to the other: its state is the
        # session cookie's, its single use the shared store's.
        callback = await one.authorize(await one.start("educonnect"), "ec-mother")
        browser = httpx.AsyncClient(
            transport=two.client._transport, base_url=BRIDGE_URL, cookies=one.client.cookies
        )
        async with browser:
            signed_in = await two.callback(callback, browser)
            assert signed_in.headers.get("location") == "/rattachement", signed_in.text
            with capture_logs() as logs:
                replayed = await one.callback(callback)  # the same response, on the other
            assert replayed.status_code == 400
            assert oidc_tests.refusal_reasons(logs) == ["state-replayed"]

            # Signed in through two, the parent answers on one: the session is known there.
            one.client.cookies = browser.cookies
            page = await one.client.get("/rattachement")
            assert page.status_code == 200 and "Léa" in page.text
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            answered = await one.client.post(
                "/rattachement", data={"csrf": token.group(1), "naissance-el-lea": "14/03/2017"}
            )
            assert answered.status_code == 303
            bridge_id = one.service.store.bridge_of_guardian("re-mere")
            assert bridge_id is not None
            assert two.service.store.attachments(bridge_id)["el-lea"].status == "attached"
            attrs = oidc_tests.bridge_attrs(ldap_params, world.dn("re-mere"))
            assert attrs["entsyncAttachedChild"] == (world.dn("el-lea"),)
            # Léa is no longer proposed on two either.
            again = await browser.get("/rattachement")
            assert 'name="naissance-el-lea"' not in again.text

            # A logout on one ends the session on two (the copy of the cookie is worthless).
            logout = await one.client.post("/deconnexion", data={"csrf": token.group(1)})
            assert logout.status_code == 303
            after = await browser.get("/rattachement")
            assert after.status_code == 303 and after.headers["location"] == "/"

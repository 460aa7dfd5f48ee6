"""The parent bridge against real OpenID providers, real slapd and the real broker.

EduConnect is ``oidc-provider-mock``; FranceConnect v2 is Node's certified ``oidc-provider``
(PKCE, ``acr_values=eidas1``, signed userinfo JWT). The refusals are provoked honestly: a
replayed callback, a changed ``state``, a code obtained for another login (its ID token
carries another nonce), a provider that issues already-expired ID tokens, and a
man-in-the-middle that re-signs the real ID token with a foreign key.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.ldap.connection import LdapParams
from connectors.ldap.directory import read_entry
from schemas.audit import DirectoryChanged
from schemas.bridge import BridgeEventMessage, IdentityUnresolved, SessionsRevoked
from tests.integration.bridge_support.harness import (
    BRIDGE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    Bridge,
    provider_config,
    query,
    running_bridge,
)
from tests.integration.bridge_support.providers import (
    EduConnect,
    FranceConnect,
    TamperingProxy,
    educonnect,
    franceconnect,
    node_available,
)
from tests.integration.bridge_support.world import World, seed
from tests.integration.conftest import LocalServices

pytestmark = pytest.mark.integration

MOTHER = {
    "FrEduCtSourceKeys": ["ONDE$G-MERE", "ONDE$G-MERE-2"],
    "FrEduCtAccountOrigin": "responsable",
}


@pytest.fixture
def world(local_services: LocalServices, clean_directory: LdapParams) -> World:
    return seed(clean_directory, local_services.base_dn)


@pytest.fixture
def ec() -> Iterator[EduConnect]:
    with educonnect() as provider:
        yield provider


@pytest.fixture(scope="module")
def fc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FranceConnect]:
    if not node_available():
        pytest.fail(
            "node and tests/integration/bridge_support/node_modules are needed: ./dev setup"
        )
    with franceconnect(
        tmp_path_factory.mktemp("fc"),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        bridge_url=BRIDGE_URL,
    ) as provider:
        yield provider


@pytest.fixture
async def bridge(
    local_services: LocalServices, world: World, ec: EduConnect, fc: FranceConnect, tmp_path: Path
) -> AsyncIterator[Bridge]:
    async with running_bridge(
        ldap=local_services.ldap_params,
        base_dn=local_services.base_dn,
        bootstrap=local_services.kafka_bootstrap,
        store_file=tmp_path / "bridge.sqlite3",
        providers={
            "educonnect": provider_config("educonnect", ec.issuer),
            "franceconnect": provider_config("franceconnect", fc.issuer),
        },
    ) as running:
        yield running


def bridge_attrs(params: LdapParams, dn: str) -> dict[str, tuple[str, ...]]:
    entry = read_entry(params, dn)
    assert entry is not None
    names = (
        "entsyncBridgeId",
        "entsyncAccountOrigin",
        "entsyncAttachedChild",
        "entsyncAttachmentBlocked",
        "entsyncEntLoginDisabled",
    )
    return {n: entry.get(n) for n in names if entry.get(n)}


def refusal_reasons(logs: list[MutableMapping[str, Any]]) -> list[object]:
    return [e["reason"] for e in logs if e.get("event") == "bridge.callback_refused"]


async def test_educonnect_links_every_guardian_record_of_the_person(
    bridge: Bridge, ec: EduConnect, world: World, ldap_params: LdapParams
) -> None:
    ec.set_user("ec-mother", MOTHER)
    url = await bridge.start("educonnect")
    assert len(query(url)["nonce"]) >= 22 and len(query(url)["state"]) >= 22
    response = await bridge.callback(await bridge.authorize(url, "ec-mother"))
    assert response.status_code == 303 and response.headers["location"] == "/rattachement"
    shown = await bridge.client.get("/rattachement")
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert shown.headers["x-frame-options"] == "DENY"
    page = shown.text
    for child, school in (("Léa", "Jean Jaurès"), ("Hugo", "Jean Jaurès"), ("Zoé", "Tilleuls")):
        assert child in page and school in page
    assert "2017" not in page and "14/03" not in page  # never the birth date
    first, second = (
        bridge_attrs(ldap_params, world.dn("re-mere")),
        bridge_attrs(ldap_params, world.dn("re-mere-2")),
    )
    assert first["entsyncBridgeId"] == second["entsyncBridgeId"]
    assert first["entsyncAccountOrigin"] == ("Responsable",)
    assert first["entsyncEntLoginDisabled"] == ("TRUE",)
    audits = [v for t, v in bridge.sink.sent if isinstance(v, DirectoryChanged)]
    assert {a.entity_id for a in audits} == {"re-mere", "re-mere-2"}
    assert {a.cause.rule for a in audits} == {"bridge.identity-bridged"}
    revoked = [v for t, v in bridge.sink.sent if isinstance(v, SessionsRevoked)]
    assert len(revoked) == 1 and set(revoked[0].guardian_ids) == {"re-mere", "re-mere-2"}
    # signing in again: the existing bridge wins, nothing is revoked twice
    again = await bridge.sign_in("educonnect", "ec-mother")
    assert again.headers["location"] == "/rattachement"
    assert len([v for t, v in bridge.sink.sent if isinstance(v, SessionsRevoked)]) == 1
    # A record of hers EduConnect now knows of joins the bridge: its sessions end too.
    keys = [*MOTHER["FrEduCtSourceKeys"], "ONDE$G-SD"]
    ec.set_user("ec-mother", {**MOTHER, "FrEduCtSourceKeys": keys})
    await bridge.sign_in("educonnect", "ec-mother")
    revoked = [v for t, v in bridge.sink.sent if isinstance(v, SessionsRevoked)]
    assert len(revoked) == 2 and revoked[1].guardian_ids == ("re-sans-date",)
    joined = bridge_attrs(ldap_params, world.dn("re-sans-date"))
    assert joined["entsyncBridgeId"] == first["entsyncBridgeId"]
    assert joined["entsyncEntLoginDisabled"] == ("TRUE",)


async def test_a_directory_write_lost_after_the_store_s_is_made_again_at_the_next_sign_in(
    bridge: Bridge, ec: EduConnect, world: World, ldap_params: LdapParams
) -> None:
    from ldap3 import MODIFY_DELETE

    from connectors.ldap.connection import connection

    ec.set_user("ec-mother", MOTHER)
    assert (await bridge.sign_in("educonnect", "ec-mother")).status_code == 303
    bridged = bridge_attrs(ldap_params, world.dn("re-mere-2"))
    # As if the directory had been down when the bridge wrote this record's attributes.
    with connection(ldap_params) as conn:
        assert conn.modify(
            world.dn("re-mere-2"),
            {
                "entsyncBridgeId": [(MODIFY_DELETE, [])],
                "entsyncAccountOrigin": [(MODIFY_DELETE, [])],
            },
        )
    before = len(bridge.sink.sent)
    second = bridge.browser()
    assert (await bridge.sign_in("educonnect", "ec-mother", second)).status_code == 303
    assert bridge_attrs(ldap_params, world.dn("re-mere-2")) == bridged
    repairs = [v for _, v in bridge.sink.sent[before:] if isinstance(v, DirectoryChanged)]
    assert [(a.entity_id, a.cause.rule) for a in repairs] == [("re-mere-2", "bridge.repair")]
    # Nothing to repair: nothing written, nothing audited.
    before = len(bridge.sink.sent)
    assert (await bridge.sign_in("educonnect", "ec-mother", bridge.browser())).status_code == 303
    assert not [v for _, v in bridge.sink.sent[before:] if isinstance(v, DirectoryChanged)]


async def test_franceconnect_pkce_acr_signed_userinfo_and_exactly_one_match(
    bridge: Bridge, fc: FranceConnect, world: World, ldap_params: LdapParams
) -> None:
    fc.set_user(
        "fc-jean",
        {"given_name": "Jean Pierre", "family_name": "LEFEVRE DURAND", "birthdate": "1979-05-04"},
    )
    url = await bridge.start("franceconnect")
    params = query(url)
    assert params["acr_values"] == "eidas1" and params["code_challenge_method"] == "S256"
    response = await bridge.callback(await bridge.authorize(url, "fc-jean"))
    assert response.headers.get("location") == "/rattachement", response.text
    attrs = bridge_attrs(ldap_params, world.dn("re-fc"))
    assert attrs["entsyncAccountOrigin"] == ("FranceConnect",)


JEAN = {"given_name": "Jean Pierre", "family_name": "LEFEVRE DURAND", "birthdate": "1979-05-04"}


@pytest.mark.parametrize(
    ("switch", "reason"),
    [
        ({"_acr": "eidas0"}, "id-token-acr-too-low"),  # weaker than the eidas1 asked for
        ({"_forge_userinfo": True}, "userinfo-bad-signature"),  # not signed by the provider
    ],
)
async def test_franceconnect_low_acr_and_forged_userinfo_are_refused(
    bridge: Bridge,
    fc: FranceConnect,
    world: World,
    ldap_params: LdapParams,
    switch: dict[str, object],
    reason: str,
) -> None:
    fc.set_user("fc-jean", {**JEAN, **switch})
    with capture_logs() as logs:
        response = await bridge.sign_in("franceconnect", "fc-jean")
    assert response.status_code == 400 and "pas abouti" in response.text
    assert refusal_reasons(logs) == [reason]
    assert "entsyncBridgeId" not in bridge_attrs(ldap_params, world.dn("re-fc"))
    # The same person, signed in as the provider should: linked.
    fc.set_user("fc-jean", JEAN)
    assert (await bridge.sign_in("franceconnect", "fc-jean")).headers["location"] == "/rattachement"


async def test_logout_ends_the_franceconnect_session_with_the_id_token_as_hint(
    bridge: Bridge, fc: FranceConnect
) -> None:
    fc.set_user(
        "fc-jean",
        {"given_name": "Jean Pierre", "family_name": "LEFEVRE DURAND", "birthdate": "1979-05-04"},
    )
    assert (await bridge.sign_in("franceconnect", "fc-jean")).headers["location"] == "/rattachement"
    page = await bridge.client.get("/rattachement")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    copied = dict(bridge.client.cookies)  # e.g. taken from a shared computer
    response = await bridge.client.post("/deconnexion", data={"csrf": csrf.group(1)})
    assert response.status_code == 303
    target = response.headers["location"]
    assert target.startswith(fc.issuer) and "session/end" in target
    params = query(target)
    assert params["post_logout_redirect_uri"] == f"{BRIDGE_URL}/" and params["id_token_hint"]
    assert "client_id" not in params
    # The real provider accepts the hint (a wrong one is an error page).
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(target)).status_code == 200
        forged = target.replace(params["id_token_hint"], params["id_token_hint"][:-4] + "AAAA")
        assert (await browser.get(forged)).status_code >= 400
    # The bridge's session is gone, for a copy of its cookie too.
    assert (await bridge.client.get("/rattachement")).status_code != 200
    replayed = await bridge.client.get("/rattachement", cookies=copied)
    assert replayed.status_code == 303 and replayed.headers["location"] == "/"


async def test_franceconnect_homonyms_and_strangers_get_no_link(
    bridge: Bridge, fc: FranceConnect, ldap_params: LdapParams, world: World
) -> None:
    fc.set_user(
        "fc-paul", {"given_name": "Paul", "family_name": "Petit", "birthdate": "1980-01-01"}
    )
    fc.set_user("fc-nobody", {"given_name": "Ann", "family_name": "Nobody"})
    fc.set_user(
        "fc-marc", {"given_name": "Marc", "family_name": "DURAND", "birthdate": "1975-02-03"}
    )
    for sub in ("fc-paul", "fc-nobody", "fc-marc"):
        page = await bridge.browser().get("/")  # warm a fresh browser
        assert page.status_code == 200
        response = await bridge.sign_in("franceconnect", sub)
        assert response.status_code == 200 and "Contactez l'école" in response.text
    unresolved = [
        v.root
        for t, v in bridge.sink.sent
        if isinstance(v, BridgeEventMessage) and isinstance(v.root, IdentityUnresolved)
    ]
    # Marc Durand's record has no birth date: names alone never link (a namesake would).
    assert [u.reason for u in unresolved] == ["several-candidates", "no-candidate", "no-candidate"]
    assert "entsyncBridgeId" not in bridge_attrs(ldap_params, world.dn("re-sans-date"))
    assert set(unresolved[0].candidate_ids) == {"re-homo-1", "re-homo-2"}
    assert unresolved[0].school_dns  # the school sees it
    assert "entsyncBridgeId" not in bridge_attrs(ldap_params, world.dn("re-homo-1"))


async def test_the_school_bridges_a_parent_the_bridge_could_not_resolve(
    bridge: Bridge, fc: FranceConnect, ldap_params: LdapParams, world: World
) -> None:
    from connectors.bridge.service import AdminError

    fc.set_user(
        "fc-paul", {"given_name": "Paul", "family_name": "Petit", "birthdate": "1980-01-01"}
    )
    response = await bridge.sign_in("franceconnect", "fc-paul")
    assert "Contactez l'école" in response.text
    (unresolved,) = [
        v.root
        for _, v in bridge.sink.sent
        if isinstance(v, BridgeEventMessage) and isinstance(v.root, IdentityUnresolved)
    ]
    digest = unresolved.subject_digest
    service = bridge.service
    with pytest.raises(AdminError, match="manual account"):
        await service.bridge_by_hand("franceconnect", digest, ("re-accueil",))
    with pytest.raises(AdminError, match="not a guardian"):
        await service.bridge_by_hand("franceconnect", digest, ("re-nobody",))
    with pytest.raises(AdminError, match="not a subject digest"):
        await service.bridge_by_hand("franceconnect", "Paul Petit", ("re-homo-1",))
    # The school checked who the parent is: one of the two namesakes.
    bridge_id = await service.bridge_by_hand("franceconnect", digest, ("re-homo-1",))
    attrs = bridge_attrs(ldap_params, world.dn("re-homo-1"))
    assert attrs["entsyncBridgeId"] == (bridge_id,)
    assert "entsyncBridgeId" not in bridge_attrs(ldap_params, world.dn("re-homo-2"))
    with pytest.raises(AdminError, match="already bridged"):
        await service.bridge_by_hand("franceconnect", digest, ("re-homo-1",))
    # The parent's next sign-in is that bridge, and reaches the attachment page.
    response = await bridge.sign_in("franceconnect", "fc-paul")
    assert response.headers["location"] == "/rattachement"
    assert bridge.service.store.bridge_for("franceconnect", digest) == bridge_id


async def test_manual_accounts_are_never_bridged(
    bridge: Bridge, fc: FranceConnect, ldap_params: LdapParams, world: World
) -> None:
    fc.set_user(
        "fc-sophie",
        {"given_name": "Sophie", "family_name": "Bernard", "birthdate": "1985-08-07"},
    )
    response = await bridge.sign_in("franceconnect", "fc-sophie")
    assert "identifiants ENT" in response.text and 'href="/ent"' in response.text
    assert bridge_attrs(ldap_params, world.dn("re-accueil")) == {}


async def test_replayed_callback_and_wrong_state_are_refused(
    bridge: Bridge, ec: EduConnect
) -> None:
    ec.set_user("ec-mother", MOTHER)
    url = await bridge.start("educonnect")
    callback = await bridge.authorize(url, "ec-mother")
    stolen_cookies = dict(bridge.client.cookies)
    with capture_logs() as logs:
        wrong_state = callback.replace(query(callback)["state"], "x" * 43)
        assert (await bridge.callback(wrong_state)).status_code == 400
    assert refusal_reasons(logs) == ["state-mismatch"]
    # the refused attempt consumed the pending login: start again, then replay
    url = await bridge.start("educonnect")
    callback = await bridge.authorize(url, "ec-mother")
    stolen_cookies = dict(bridge.client.cookies)
    assert (await bridge.callback(callback)).status_code == 303
    with capture_logs() as logs:
        assert (await bridge.callback(callback)).status_code == 400  # same browser
        other = bridge.browser()
        other.cookies.update(stolen_cookies)  # a browser holding the pre-callback cookie
        assert (await bridge.callback(callback, other)).status_code == 400
    assert refusal_reasons(logs) == ["no-pending-login", "state-replayed"]


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        # oidc-provider-mock (no PKCE) exchanges the code: the ID token's nonce is another's
        ("educonnect", "id-token-wrong-nonce"),
        # the Node provider refuses the exchange: the victim's PKCE verifier is not the one
        ("franceconnect", "code-refused"),
    ],
)
async def test_a_code_issued_for_another_login_is_refused(
    bridge: Bridge, ec: EduConnect, fc: FranceConnect, provider: str, reason: str
) -> None:
    ec.set_user("ec-mother", MOTHER)
    fc.set_user("ec-mother", JEAN)
    victim_url = await bridge.start(provider)
    attacker = bridge.browser()
    attacker_callback = await bridge.authorize(await bridge.start(provider, attacker), "ec-mother")
    injected = attacker_callback.replace(
        query(attacker_callback)["state"], query(victim_url)["state"]
    )
    with capture_logs() as logs:
        response = await bridge.callback(injected)
    assert response.status_code == 400 and "pas abouti" in response.text
    assert refusal_reasons(logs) == [reason]


async def test_expired_id_token_is_refused(
    local_services: LocalServices, world: World, tmp_path: Path
) -> None:
    # A real provider configured to issue tokens that expired two minutes ago (beyond leeway).
    with educonnect(max_age=timedelta(seconds=-120)) as stale:
        stale.set_user("ec-mother", MOTHER)
        async with running_bridge(
            ldap=local_services.ldap_params,
            base_dn=local_services.base_dn,
            bootstrap=local_services.kafka_bootstrap,
            store_file=tmp_path / "b.sqlite3",
            providers={"educonnect": provider_config("educonnect", stale.issuer)},
        ) as bridge:
            with capture_logs() as logs:
                response = await bridge.sign_in("educonnect", "ec-mother")
    assert response.status_code == 400
    assert refusal_reasons(logs) == ["id-token-expired"]


async def test_id_token_with_a_bad_signature_is_refused(
    local_services: LocalServices, world: World, ec: EduConnect, tmp_path: Path
) -> None:
    ec.set_user("ec-mother", MOTHER)
    with TamperingProxy(ec.issuer) as proxy:
        config = provider_config(
            "educonnect",
            ec.issuer,
            discovery_url=f"{proxy.url}/.well-known/openid-configuration",
        )
        async with running_bridge(
            ldap=local_services.ldap_params,
            base_dn=local_services.base_dn,
            bootstrap=local_services.kafka_bootstrap,
            store_file=tmp_path / "b.sqlite3",
            providers={"educonnect": config},
        ) as bridge:
            with capture_logs() as logs:
                response = await bridge.sign_in("educonnect", "ec-mother")
    assert response.status_code == 400
    assert refusal_reasons(logs) == ["id-token-bad-signature"]


async def test_session_cookie_csrf_unknown_children_and_answer_rate_limit(
    bridge: Bridge, ec: EduConnect, world: World, ldap_params: LdapParams
) -> None:
    ec.set_user("ec-mother", MOTHER)
    signed_in = await bridge.sign_in("educonnect", "ec-mother")
    (cookie,) = [c for c in signed_in.headers.get_list("set-cookie") if "entsync_bridge" in c]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    page = await bridge.client.get("/rattachement")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    lea = "naissance-el-lea"
    # A form without the session's token is refused and changes nothing.
    forged = await bridge.client.post("/rattachement", data={"csrf": "forged", lea: "01/01/2010"})
    assert forged.status_code == 403
    assert "entsyncAttachmentBlocked" not in bridge_attrs(ldap_params, world.dn("re-mere"))
    # A child who is not this parent's is ignored like an empty field: no block, no hint.
    stranger = {"csrf": token.group(1), "naissance-el-other": "01/01/2010"}
    answered = await bridge.client.post("/rattachement", data=stranger)
    assert answered.status_code == 303
    for guardian in ("re-mere", "re-mere-2", "re-fc"):
        attrs = bridge_attrs(ldap_params, world.dn(guardian))
        assert "entsyncAttachmentBlocked" not in attrs and "entsyncAttachedChild" not in attrs
    # Answers are limited per bridge (5 a window in these tests): then 429, nothing recorded.
    for _ in range(4):
        assert (await bridge.client.post("/rattachement", data=stranger)).status_code == 303
    limited = await bridge.client.post("/rattachement", data={**stranger, lea: "14/03/2017"})
    assert limited.status_code == 429 and "Trop de tentatives" in limited.text
    assert "entsyncAttachedChild" not in bridge_attrs(ldap_params, world.dn("re-mere"))

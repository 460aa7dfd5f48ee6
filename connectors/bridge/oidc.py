"""OpenID Connect relying party for EduConnect and FranceConnect v2 (authlib + joserfc).

Discovery gives the endpoints; the authorization-code flow carries a ``state`` and a ``nonce``
of 43 URL-safe characters (256 bits, above FranceConnect's 22-character minimum), PKCE (S256)
whenever the provider announces it, and ``acr_values`` when configured (``eidas1`` for
FranceConnect). The ID token is checked here, not trusted: signature against the provider's
JWKS (fetched again once for an unknown key id), an asymmetric algorithm, issuer, audience
(and ``azp`` when there are several), expiry and issue time (with a small leeway), nonce, and the
``acr`` level when one was requested. A userinfo answered as a signed JWT (FranceConnect) is
checked the same way and its ``sub`` must be the ID token's.

Errors are :class:`OidcError` with a short machine reason, never a token or a claim value. A
token endpoint that refuses the exchange answers an OAuth error code (RFC 6749 §5.2): a code
that is expired, replayed, issued to another client or failing PKCE is ``invalid_grant``
(reason ``code-refused``); a client id or secret the provider does not accept is
``invalid_client`` (reason ``client-refused``), which :meth:`RelyingParty.check_client` also
finds at start-up by presenting the client's credentials with a code that cannot exist.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from schemas.bridge import Provider

ALLOWED_ALGS = ("RS256", "PS256", "ES256")
EIDAS_LEVELS = {"eidas1": 1, "eidas2": 2, "eidas3": 3}
# The token endpoint's error codes (RFC 6749 §5.2) and the reason each is logged and counted as;
# any other code is the provider's own: only the generic reason, never its text.
TOKEN_ERRORS = {
    "invalid_grant": "code-refused",
    "invalid_client": "client-refused",
    "unauthorized_client": "client-refused",
    "invalid_request": "token-request-invalid",
    "unsupported_grant_type": "token-request-invalid",
    "invalid_scope": "token-request-invalid",
}


class OidcError(Exception):
    """A sign-in refused; ``reason`` is safe to log and to count."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_error_reason(exc: Exception) -> str:
    """The reason of a failed code exchange: the provider's error code mapped, or its absence."""
    if isinstance(exc, AuthlibBaseError):
        return TOKEN_ERRORS.get(str(exc.error), "token-exchange-refused")
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
        # 401 is how RFC 6749 §5.2 answers a failed client authentication
        return "client-refused" if exc.response.status_code == 401 else "token-exchange-refused"
    if isinstance(exc, ValueError):  # a success status without a JSON object
        return "token-response-invalid"
    return "token-endpoint-unavailable"


@dataclass(frozen=True)
class ProviderConfig:
    name: Provider
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scope: str
    acr_values: str | None = None
    signed_userinfo: bool = False
    token_endpoint_auth_method: str = "client_secret_basic"
    leeway_seconds: int = 30
    discovery_url: str | None = None
    """default ``<issuer>/.well-known/openid-configuration``"""


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    pkce: bool


@dataclass(frozen=True)
class LoginRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str | None


@dataclass(frozen=True)
class VerifiedLogin:
    subject: str
    claims: dict[str, Any]
    id_token: str


def new_secret() -> str:
    """43 URL-safe characters from 32 random bytes."""
    return secrets.token_urlsafe(32)


class RelyingParty:
    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self._http = http
        self._metadata: Metadata | None = None
        self._keys: KeySet | None = None
        self.client_refused = False
        """set once the provider refused this client's credentials (a readiness fact)"""

    async def _json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("provider-unreachable") from exc
        if not isinstance(data, dict):
            raise OidcError("provider-bad-document")
        return data

    async def metadata(self) -> Metadata:
        if self._metadata is None:
            issuer = self.config.issuer.rstrip("/")
            url = self.config.discovery_url or f"{issuer}/.well-known/openid-configuration"
            doc = await self._json(url)
            if str(doc.get("issuer", "")).rstrip("/") != issuer:
                raise OidcError("discovery-issuer-mismatch")
            try:
                self._metadata = Metadata(
                    issuer=str(doc["issuer"]),
                    authorization_endpoint=str(doc["authorization_endpoint"]),
                    token_endpoint=str(doc["token_endpoint"]),
                    jwks_uri=str(doc["jwks_uri"]),
                    userinfo_endpoint=doc.get("userinfo_endpoint"),
                    end_session_endpoint=doc.get("end_session_endpoint"),
                    pkce="S256" in (doc.get("code_challenge_methods_supported") or ()),
                )
            except KeyError as exc:
                raise OidcError("discovery-incomplete") from exc
        return self._metadata

    async def _keyset(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._json(meta.jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcError("jwks-invalid") from exc
        return self._keys

    def _client(self, meta: Metadata) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scope,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256" if meta.pkce else None,
            token_endpoint_auth_method=self.config.token_endpoint_auth_method,
            timeout=15.0,
        )

    async def begin(self) -> LoginRequest:
        meta = await self.metadata()
        state, nonce = new_secret(), new_secret()
        verifier = secrets.token_urlsafe(64) if meta.pkce else None
        extra: dict[str, str] = {"nonce": nonce}
        if self.config.acr_values:
            extra["acr_values"] = self.config.acr_values
        async with self._client(meta) as client:
            url, _ = client.create_authorization_url(
                meta.authorization_endpoint, state=state, code_verifier=verifier, **extra
            )
        return LoginRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def check_client(self) -> bool:
        """Whether the token endpoint accepts this client's id and secret.

        The client authenticates as for a real exchange, with a random code no login issued:
        a provider authenticates the client before it looks at the code (RFC 6749 §5.2), so
        ``invalid_client`` means wrong credentials and any other refusal means right ones.
        """
        meta = await self.metadata()
        verifier = secrets.token_urlsafe(64) if meta.pkce else None
        async with self._client(meta) as client:
            try:
                await client.fetch_token(
                    meta.token_endpoint, code=new_secret(), code_verifier=verifier
                )
            except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
                reason = token_error_reason(exc)
                if reason in ("token-endpoint-unavailable", "token-response-invalid"):
                    raise OidcError(reason) from exc
                self.client_refused = reason == "client-refused"
                return not self.client_refused
        raise OidcError("token-endpoint-accepted-a-random-code")

    async def _decode(self, token: str, *, what: str) -> dict[str, Any]:
        for refresh in (False, True):
            keys = await self._keyset(refresh)
            try:
                return dict(jwt.decode(token, keys, algorithms=list(ALLOWED_ALGS)).claims)
            except JoseError as exc:
                if refresh or "kid" not in str(exc).lower():
                    raise OidcError(f"{what}-bad-signature") from exc
        raise AssertionError("unreachable")

    def _check_claims(self, claims: dict[str, Any], *, what: str, now: float) -> None:
        meta_issuer = self.config.issuer.rstrip("/")
        if str(claims.get("iss", "")).rstrip("/") != meta_issuer:
            raise OidcError(f"{what}-wrong-issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.config.client_id not in audiences:
            raise OidcError(f"{what}-wrong-audience")
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError(f"{what}-wrong-azp")
        leeway = self.config.leeway_seconds
        exp, iat = claims.get("exp"), claims.get("iat")
        checks_exp = what == "id-token" or exp is not None
        if checks_exp and (not isinstance(exp, int | float) or exp + leeway < now):
            raise OidcError(f"{what}-expired")
        if what == "id-token" and (not isinstance(iat, int | float) or iat - leeway > now):
            raise OidcError(f"{what}-bad-iat")

    async def finish(
        self, code: str, *, nonce: str, code_verifier: str | None, now: float | None = None
    ) -> VerifiedLogin:
        """Exchange ``code``, check the ID token (and the signed userinfo), return the claims."""
        meta = await self.metadata()
        async with self._client(meta) as client:
            try:
                token = await client.fetch_token(
                    meta.token_endpoint, code=code, code_verifier=code_verifier
                )
            except (AuthlibBaseError, httpx.HTTPError, ValueError) as exc:
                reason = token_error_reason(exc)
                self.client_refused = reason == "client-refused"
                raise OidcError(reason) from exc
        self.client_refused = False
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("no-id-token")
        claims = await self._decode(id_token, what="id-token")
        moment = time.time() if now is None else now
        self._check_claims(claims, what="id-token", now=moment)
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("id-token-wrong-nonce")
        if self.config.acr_values:
            wanted = EIDAS_LEVELS.get(self.config.acr_values, 0)
            if EIDAS_LEVELS.get(str(claims.get("acr", "")), -1) < wanted:
                raise OidcError("id-token-acr-too-low")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise OidcError("id-token-no-subject")
        merged = dict(claims)
        if meta.userinfo_endpoint:
            access_token = token.get("access_token")
            if not isinstance(access_token, str):
                raise OidcError("no-access-token")
            merged.update(await self._userinfo(meta, access_token, subject, moment))
        return VerifiedLogin(subject=subject, claims=merged, id_token=id_token)

    async def _userinfo(
        self, meta: Metadata, access_token: str, subject: str, now: float
    ) -> dict[str, Any]:
        assert meta.userinfo_endpoint is not None
        try:
            response = await self._http.get(
                meta.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise OidcError("userinfo-refused") from exc
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/jwt":
            info = await self._decode(response.text.strip(), what="userinfo")
            self._check_claims(info, what="userinfo", now=now)
        elif self.config.signed_userinfo:
            raise OidcError("userinfo-not-signed")
        else:
            try:
                info = response.json()
            except ValueError as exc:
                raise OidcError("userinfo-invalid") from exc
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise OidcError("userinfo-subject-mismatch")
        return info

    async def logout_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        meta = await self.metadata()
        if not meta.end_session_endpoint:
            return None
        params = {"post_logout_redirect_uri": post_logout_redirect_uri, "state": new_secret()}
        if id_token:
            params["id_token_hint"] = id_token
        else:
            params["client_id"] = self.config.client_id
        return str(httpx.URL(meta.end_session_endpoint, params=params))

"""``entsync bridge serve``: the parent bridge's web pages (Starlette), in French, no JavaScript.

Routes: ``/`` (choose EduConnect or FranceConnect), ``/connexion/{provider}`` (start the
authorization-code flow), ``/retour/{provider}`` (the redirect URI), ``/rattachement`` (the
first-login attachment page: GET lists, POST answers), ``/deconnexion`` (POST, then the
provider's logout). Sessions are signed cookies (``HttpOnly``, ``SameSite=Lax`` so that the
provider's redirect carries them, ``Secure`` unless configured off for http://localhost) whose
session is also kept in the store, so that a logout ends every copy of the cookie;
every form carries a per-session CSRF token; logins and date answers are rate-limited per IP
and per bridged identity. A refused callback (by the bridge's checks or by the provider's token
endpoint) says only that the sign-in failed; its reason is logged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import date
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from connectors.bridge.oidc import OidcError, RelyingParty
from connectors.bridge.service import BridgeService
from connectors.monitoring.metrics import BRIDGE_SIGN_INS, reason_label
from schemas.bridge import AccountOrigin, Provider
from sync import bridge as rules

log = structlog.get_logger(__name__)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LOGIN_MAX_AGE_SECONDS = 600
ORIGINS: dict[str, AccountOrigin] = {
    "franceconnect": "FranceConnect",
    "responsable": "Responsable",
    "etablissement": "Etablissement",
}


SESSION_SECONDS = 8 * 3600


class WebConfig:
    def __init__(
        self,
        *,
        public_url: str,
        session_secret: str,
        cookie_secure: bool,
        ent_login_url: str,
        source_keys_claim: str,
        origin_claim: str,
        login_limit: int,
        attempt_limit: int,
        window_seconds: int,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.session_secret = session_secret
        self.cookie_secure = cookie_secure
        self.ent_login_url = ent_login_url
        self.source_keys_claim = source_keys_claim
        self.origin_claim = origin_claim
        self.login_limit = login_limit
        self.attempt_limit = attempt_limit
        self.window_seconds = window_seconds


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x1f{value}".encode()).hexdigest()


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("csrf", request.session.get("csrf", ""))
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


def _message(request: Request, title: str, body: str, status: int = 200, **extra: Any) -> Response:
    return _page(request, "message.html", status, title=title, body=body, **extra)


SECURITY_HEADERS = {
    # no Referer: the callback URL carries the authorization code
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and secrets.compare_digest(expected, submitted)
    )


def identity_from(
    provider: Provider, claims: dict[str, Any], digest: str, config: WebConfig
) -> tuple[rules.Identity, AccountOrigin | None]:
    """What the bridge keeps of a verified sign-in, and the account's origin."""
    if provider == "franceconnect":
        birth = claims.get("birthdate")
        try:
            birth_date = date.fromisoformat(birth) if isinstance(birth, str) else None
        except ValueError:
            birth_date = None
        identity = rules.Identity(
            provider=provider,
            subject_digest=digest,
            family_name=str(claims.get("family_name") or "") or None,
            given_name=str(claims.get("given_name") or "") or None,
            birth_date=birth_date,
        )
        return identity, "FranceConnect"
    raw = claims.get(config.source_keys_claim) or ()
    keys = [raw] if isinstance(raw, str) else [str(k) for k in raw if k]
    origin = ORIGINS.get(str(claims.get(config.origin_claim) or "").lower())
    identity = rules.Identity(provider=provider, subject_digest=digest, source_keys=frozenset(keys))
    return identity, origin


def build_app(
    service: BridgeService, providers: dict[Provider, RelyingParty], config: WebConfig
) -> Starlette:
    """The bridge's ASGI application (the caller owns the service's resources)."""
    by_name: dict[str, RelyingParty] = {str(name): rp for name, rp in providers.items()}

    def limited(key: str, limit: int) -> bool:
        return not service.store.hit(key, time.time(), limit=limit, seconds=config.window_seconds)

    def too_many(request: Request) -> Response:
        return _message(
            request,
            "Trop de tentatives",
            "Trop de tentatives ont été faites. Veuillez réessayer plus tard.",
            429,
        )

    def refused(request: Request, provider: str, reason: str) -> Response:
        log.warning("bridge.callback_refused", provider=provider, reason=reason)
        if provider in by_name:  # not a made-up provider name in the URL
            BRIDGE_SIGN_INS.labels(provider, "refused", reason_label(reason)).inc()
        return _message(
            request,
            "La connexion n'a pas abouti",
            "La connexion n'a pas pu être vérifiée. Veuillez recommencer depuis l'accueil.",
            400,
        )

    async def home(request: Request) -> Response:
        request.session.setdefault("csrf", secrets.token_urlsafe(32))
        return _page(
            request, "accueil.html", providers=sorted(providers), ent_login_url=config.ent_login_url
        )

    async def login(request: Request) -> Response:
        provider = request.path_params["provider"]
        rp = by_name.get(provider)
        if rp is None:
            return _message(request, "Page introuvable", "Ce fournisseur n'existe pas.", 404)
        if limited(f"login:ip:{_client_ip(request)}", config.login_limit):
            return too_many(request)
        try:
            start = await rp.begin()
        except OidcError as exc:
            log.warning("bridge.provider_unavailable", provider=provider, reason=exc.reason)
            return _message(
                request, "Service indisponible", "Le service de connexion ne répond pas.", 503
            )
        request.session["pending"] = {
            "provider": provider,
            "state": start.state,
            "nonce": start.nonce,
            "verifier": start.code_verifier,
            "at": time.time(),
        }
        return RedirectResponse(start.url, status_code=303)

    async def callback(request: Request) -> Response:
        provider = request.path_params["provider"]
        rp = by_name.get(provider)
        if rp is None:
            return _message(request, "Page introuvable", "Ce fournisseur n'existe pas.", 404)
        pending = request.session.pop("pending", None)
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        if request.query_params.get("error"):
            return refused(request, provider, "provider-error")
        if not isinstance(pending, dict) or pending.get("provider") != provider:
            return refused(request, provider, "no-pending-login")
        if not state or not secrets.compare_digest(str(pending.get("state", "")), state):
            return refused(request, provider, "state-mismatch")
        if time.time() - float(pending.get("at", 0)) > LOGIN_MAX_AGE_SECONDS:
            return refused(request, provider, "login-too-old")
        now = service.clock()
        if not code or not service.store.use_once(_digest("state", state), now):
            return refused(request, provider, "state-replayed")
        if not service.store.use_once(_digest("code", code), now):
            return refused(request, provider, "code-replayed")
        try:
            verified = await rp.finish(
                code, nonce=str(pending["nonce"]), code_verifier=pending.get("verifier")
            )
        except OidcError as exc:
            if exc.reason == "client-refused":
                # Not the parent's doing: the operator's client id or secret is wrong.
                log.error("bridge.client_refused_by_provider", provider=provider)
            return refused(request, provider, exc.reason)
        name = rp.config.name
        digest = rules.subject_digest(service.digest_key, name, verified.subject)
        identity, origin = identity_from(name, verified.claims, digest, config)
        outcome = await service.sign_in(identity, origin)
        request.session.clear()
        request.session["csrf"] = secrets.token_urlsafe(32)
        if outcome.bridge_id is None:
            if outcome.unresolved == "manual-account":
                return _page(request, "compte_manuel.html", ent_login_url=config.ent_login_url)
            return _page(request, "contacter_ecole.html")
        # The cookie is signed, not secret: the session also lives in the store, so a logout
        # (or its expiry) ends it even for a copy of the cookie.
        session_id = secrets.token_urlsafe(32)
        service.store.open_session(
            _digest("session", session_id), outcome.bridge_id, time.time() + SESSION_SECONDS
        )
        request.session["sid"] = session_id
        request.session["bridge"] = outcome.bridge_id
        request.session["provider"] = provider
        # The provider's logout wants it back as id_token_hint (FranceConnect requires it).
        request.session["id_token"] = verified.id_token
        return RedirectResponse("/rattachement", status_code=303)

    def signed_in(request: Request) -> str | None:
        """The session's bridge, if its session is still open in the store."""
        bridge_id, session_id = request.session.get("bridge"), request.session.get("sid")
        if not isinstance(bridge_id, str) or not isinstance(session_id, str):
            return None
        if service.store.session_bridge(_digest("session", session_id), time.time()) != bridge_id:
            request.session.clear()
            return None
        return bridge_id

    async def attachment_page(request: Request) -> Response:
        bridge_id = signed_in(request)
        if bridge_id is None:
            return RedirectResponse("/", status_code=303)
        results = request.session.pop("results", {})
        errors = request.session.pop("errors", {})
        return _page(
            request,
            "rattachement.html",
            proposals=service.proposals(bridge_id),
            results=results,
            errors=errors,
        )

    async def attachment_submit(request: Request) -> Response:
        bridge_id = signed_in(request)
        if bridge_id is None:
            return RedirectResponse("/", status_code=303)
        form = await request.form()
        if not _csrf_ok(request, form.get("csrf")):
            return _message(request, "Formulaire expiré", "Veuillez recharger la page.", 403)
        answers = {
            key.removeprefix("naissance-"): str(value).strip()
            for key, value in form.items()
            if key.startswith("naissance-") and str(value).strip()
        }
        if answers and (
            limited(f"attempt:ip:{_client_ip(request)}", config.attempt_limit)
            or limited(f"attempt:bridge:{bridge_id}", config.attempt_limit)
        ):
            return too_many(request)
        results: dict[str, str] = {}
        errors: dict[str, str] = {}
        pending = {p.child_id for p in service.proposals(bridge_id) if p.status == "pending"}
        for child_id, text in sorted(answers.items()):
            if child_id not in pending:
                continue  # not proposed to this parent: ignored like an empty field
            given = rules.parse_birth_date(text)
            if given is None:
                errors[child_id] = "format"
                continue
            results[child_id] = await service.answer(bridge_id, child_id, given)
        request.session["results"] = results
        request.session["errors"] = errors
        return RedirectResponse("/rattachement", status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form.get("csrf")):
            return _message(request, "Formulaire expiré", "Veuillez recharger la page.", 403)
        provider = request.session.get("provider")
        id_token = request.session.get("id_token")
        session_id = request.session.get("sid")
        if isinstance(session_id, str):
            service.store.close_session(_digest("session", session_id))
        request.session.clear()
        rp = by_name.get(provider) if isinstance(provider, str) else None
        target = None
        if rp is not None:
            try:
                hint = id_token if isinstance(id_token, str) else None
                target = await rp.logout_url(hint, f"{config.public_url}/")
            except OidcError:
                target = None
        return RedirectResponse(target or "/", status_code=303)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/connexion/{provider}", login),
            Route("/retour/{provider}", callback),
            Route("/rattachement", attachment_page, methods=["GET"]),
            Route("/rattachement", attachment_submit, methods=["POST"]),
            Route("/deconnexion", logout, methods=["POST"]),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=config.session_secret,
                session_cookie="entsync_bridge",
                max_age=SESSION_SECONDS,
                same_site="lax",
                https_only=config.cookie_secure,
            ),
        ],
    )

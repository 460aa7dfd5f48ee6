"""The reasons a refused code exchange is logged and counted as (no provider text in them)."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.oauth2 import OAuth2Error

from connectors.bridge.oidc import token_error_reason


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://provider.test/token")
    response = httpx.Response(code, request=request)
    return httpx.HTTPStatusError("refused", request=request, response=response)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OAuthError("invalid_grant", "PKCE verification failed"), "code-refused"),
        (OAuthError("invalid_client", "client authentication failed"), "client-refused"),
        (OAuthError("unauthorized_client"), "client-refused"),
        (OAuth2Error(error="invalid_request"), "token-request-invalid"),
        (OAuthError("something_the_provider_made_up", "Jean Dupont"), "token-exchange-refused"),
        (_status(403), "token-exchange-refused"),
        (_status(401), "client-refused"),
        (_status(502), "token-endpoint-unavailable"),
        (httpx.ConnectError("down"), "token-endpoint-unavailable"),
        (ValueError("not JSON"), "token-response-invalid"),
    ],
)
def test_each_refusal_has_a_fixed_reason(error: Exception, reason: str) -> None:
    assert token_error_reason(error) == reason

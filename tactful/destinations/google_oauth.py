"""What both Google destinations share: OAuth access tokens from a refresh token, and a
failed call carrying the outcome for everything it was for.

``POST https://oauth2.googleapis.com/token`` with ``grant_type=refresh_token`` (form-encoded
``client_id``, ``client_secret``, ``refresh_token``) answers ``access_token`` and
``expires_in`` (https://developers.google.com/identity/protocols/oauth2/web-server#offline).
The token is cached until a minute before it expires. ``invalid_grant`` (a revoked or expired
refresh token) and ``invalid_client`` are permanent: they reject with what to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import httpx
from pydantic import Field

from tactful.destinations.base import Outcome, classify_status, parse_retry_after
from tactful.destinations.spec import DestinationConfig, Secret, Text

TOKEN_URL = "https://oauth2.googleapis.com/token"
TOKEN_SKEW = 60.0  # refresh this long before the token expires


class CallFailed(Exception):
    """A call failed: ``outcome`` applies to everything the call was for."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class AccessToken:
    """A cached OAuth access token, refreshed through ``client`` when due."""

    def __init__(
        self,
        client: httpx.Client,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._url = token_url
        self._form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (access token, expires at)

    def forget(self) -> None:
        """Drop the cached token (a 401: expired or revoked early)."""
        self._token = None

    def get(self) -> str:
        now = self._clock()
        if self._token is not None and now < self._token[1] - TOKEN_SKEW:
            return self._token[0]
        try:
            response = self._client.post(self._url, data=self._form)
        except httpx.TransportError as e:
            raise CallFailed(
                Outcome("retry", f"OAuth token refresh: {type(e).__name__}: {e}")
            ) from e
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        token = data.get("access_token")
        if response.is_success and isinstance(token, str) and token:
            expires_in = data.get("expires_in")
            ttl = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
            self._token = (token, now + ttl)
            return token
        code, why = str(data.get("error", "")), str(data.get("error_description", ""))
        detail = f" ({code}: {why})" if why else f" ({code})" if code else ""
        status = response.status_code
        if code == "invalid_grant":
            error = f"refresh_token rejected: re-authorize{detail}"
            raise CallFailed(Outcome("reject", error, None, status))
        if code in ("invalid_client", "unauthorized_client"):
            error = f"OAuth client rejected: check client_id and client_secret{detail}"
            raise CallFailed(Outcome("reject", error, None, status))
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = f"OAuth token refresh: HTTP {status}{detail}"
        if response.is_success:
            raise CallFailed(Outcome("retry", f"{error}: no access_token in the answer"))
        raise CallFailed(classify_status(status, retry_after, error))


class OAuthKeys(NamedTuple):
    client_id: str
    client_secret: str
    refresh_token: str


class GoogleOAuthConfig(DestinationConfig):
    """The keys both Google destinations sign in with."""

    client_id: Text = Field(description="OAuth client id")
    client_secret: Secret = Field(description="OAuth client secret")
    refresh_token: Secret = Field(description="OAuth refresh token")


def signed_in(
    base_url: str | None,
    transport: httpx.BaseTransport | None,
    timeout: httpx.Timeout,
    keys: OAuthKeys,
    clock: Callable[[], float],
) -> tuple[httpx.Client, AccessToken]:
    """An HTTP client and the access token its calls carry, refreshed at Google's token
    endpoint (or ``base_url``/token: a fake's)."""
    client = httpx.Client(transport=transport, timeout=timeout)
    token_url = f"{base_url.rstrip('/')}/token" if base_url else TOKEN_URL
    token = AccessToken(
        client,
        token_url,
        client_id=keys.client_id,
        client_secret=keys.client_secret,
        refresh_token=keys.refresh_token,
        clock=clock,
    )
    return client, token

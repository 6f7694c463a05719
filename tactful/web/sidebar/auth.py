"""Zendesk signed URLs: verify the RS256 JWT that Zendesk posts as the form field ``token``.

The key is ``[zendesk] app_public_key`` (a PEM file path or the PEM itself). Checked: the
signature (RS256 only), ``exp`` (required, at most ``MAX_TOKEN_SECONDS`` ahead and after
``iat``), ``iss`` = the account's host (``{subdomain}.zendesk.com``, or the host of
``base_url``), ``aud`` (required) = ``[zendesk] app_audience``, by default the app's URL
(``public_url`` + ``/app/sidebar``), and a non-empty ``sub`` (the agent). A token is good
for one page: its ``jti`` (or, without one, its hash) is remembered until it expires
(``remember_once``), so a captured token cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from tactful.clock import epoch_seconds
from tactful.store.base import Store

LEEWAY_SECONDS = 30
MAX_TOKEN_SECONDS = 600  # Zendesk's signed-URL tokens live a few minutes
# Zendesk's tokens are a few hundred bytes; a huge one is an attack (a deeply nested header
# makes PyJWT's JSON parsing raise RecursionError, not a PyJWTError).
MAX_TOKEN_BYTES = 8 * 1024
USED_PREFIX = "sidebar_token_used:"


class AuthError(Exception):
    """The token is missing, forged, expired or for someone else (HTTP 401)."""


class NotConfigured(Exception):
    """The sidebar cannot verify tokens: no public key or account host configured (503)."""


@dataclass(frozen=True)
class Agent:
    sub: str
    account: str
    ticket: int | None = None  # the ticket the page was opened on, once it said so


@dataclass(frozen=True)
class Grant:
    """A verified signed-URL token: the agent, the token's id and its expiry (epoch s)."""

    agent: Agent
    token_id: str
    expires: float


def load_public_key(value: str) -> str:
    """The PEM text of ``app_public_key``: the PEM itself, or a path to a file holding it."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text
    path = Path(text).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise NotConfigured(f"[zendesk] app_public_key: cannot read {path}: {exc}") from exc


def account_host(zendesk: Any) -> str | None:
    """The ``iss`` Zendesk puts in its tokens: the account's host."""
    if zendesk.subdomain:
        return f"{zendesk.subdomain}.zendesk.com"
    if zendesk.base_url:
        return urlsplit(zendesk.base_url).netloc or None
    return None


def app_audience(zendesk: Any) -> str | None:
    """The ``aud`` tokens must carry: ``app_audience``, else the app's URL."""
    if zendesk.app_audience:
        return str(zendesk.app_audience)
    if zendesk.public_url:
        return f"{str(zendesk.public_url).rstrip('/')}/app/sidebar"
    return None


def remember_once(store: Store, grant: Grant, now: float | None = None) -> bool:
    """Record that ``grant``'s token was used; False when it had been used before (a
    replay). Entries are kept until the token expires, then pruned."""
    at = epoch_seconds() if now is None else now
    mine = f"{grant.expires + LEEWAY_SECONDS:020.3f}:{secrets.token_hex(8)}"
    with store.transaction() as tx:
        tx.prune_meta(USED_PREFIX, f"{at:020.3f}")
        return tx.setdefault_meta(USED_PREFIX + grant.token_id, mine) == mine


@dataclass(frozen=True)
class Verifier:
    public_key: str
    issuer: str
    audience: str

    @classmethod
    def from_settings(cls, zendesk: Any) -> Verifier:
        if not zendesk.app_public_key:
            raise NotConfigured("[zendesk] app_public_key is not set")
        issuer = account_host(zendesk)
        if issuer is None:
            raise NotConfigured("[zendesk] subdomain (or base_url) is not set")
        audience = app_audience(zendesk)
        if audience is None:
            raise NotConfigured("[zendesk] public_url (or app_audience) is not set: tokens' aud")
        return cls(load_public_key(zendesk.app_public_key), issuer, audience)

    def verify(self, token: str | None) -> Agent:
        return self.grant(token).agent

    def grant(self, token: str | None) -> Grant:
        if not token:
            raise AuthError("missing token")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(f"invalid token: longer than {MAX_TOKEN_BYTES} bytes")
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token is for another account (iss)") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token is for another app (aud)") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {type(exc).__name__}") from exc
        sub = claims.get("sub")
        if sub is None or str(sub).strip() == "":
            raise AuthError("token has no agent (sub)")
        expires, issued = float(claims["exp"]), claims.get("iat")
        lifetime = expires - (float(issued) if isinstance(issued, int | float) else epoch_seconds())
        if lifetime > MAX_TOKEN_SECONDS + LEEWAY_SECONDS:
            raise AuthError(f"token lifetime over {MAX_TOKEN_SECONDS} s")
        jti = claims.get("jti")
        token_id = (
            f"jti:{jti}"[:200]
            if isinstance(jti, str) and jti
            else "sha256:" + hashlib.sha256(token.encode()).hexdigest()
        )
        return Grant(Agent(str(sub), self.issuer), token_id, expires)

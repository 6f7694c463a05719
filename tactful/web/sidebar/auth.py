"""Zendesk signed URLs: verify the RS256 JWT that Zendesk posts as the form field ``token``.

The key is ``[zendesk] app_public_key`` (a PEM file path or the PEM itself). Checked: the
signature (RS256 only), ``exp`` (required), ``iss`` = the account's host
(``{subdomain}.zendesk.com``, or the host of ``base_url``), ``aud`` when
``[zendesk] app_audience`` is set, and a non-empty ``sub`` (the agent).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

LEEWAY_SECONDS = 30


class AuthError(Exception):
    """The token is missing, forged, expired or for someone else (HTTP 401)."""


class NotConfigured(Exception):
    """The sidebar cannot verify tokens: no public key or account host configured (503)."""


@dataclass(frozen=True)
class Agent:
    sub: str
    account: str


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


@dataclass(frozen=True)
class Verifier:
    public_key: str
    issuer: str
    audience: str | None = None

    @classmethod
    def from_settings(cls, zendesk: Any) -> Verifier:
        if not zendesk.app_public_key:
            raise NotConfigured("[zendesk] app_public_key is not set")
        issuer = account_host(zendesk)
        if issuer is None:
            raise NotConfigured("[zendesk] subdomain (or base_url) is not set")
        return cls(load_public_key(zendesk.app_public_key), issuer, zendesk.app_audience)

    def verify(self, token: str | None) -> Agent:
        if not token:
            raise AuthError("missing token")
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": self.audience is not None,
                },
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
        return Agent(str(sub), self.issuer)

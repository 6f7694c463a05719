"""Signed-URL token verification and the page's own session."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tactful.web.sidebar.auth import Agent, AuthError, NotConfigured, Verifier, account_host
from tactful.web.sidebar.session import Sessions
from tests.sidebar.helpers import AUD, ISSUER, OTHER_PRIVATE, PUBLIC_PEM, token


def verifier(audience: str = AUD) -> Verifier:
    return Verifier(PUBLIC_PEM, ISSUER, audience)


def test_valid_token_gives_the_agent() -> None:
    assert verifier().verify(token(sub="7")) == Agent("7", ISSUER)
    assert verifier("https://app").verify(token(aud="https://app")).sub == "agent-42"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (lambda: token(key=OTHER_PRIVATE), "invalid token"),
        (lambda: token(exp_in=-120), "expired"),
        (lambda: token(iss="evil.zendesk.com"), "iss"),
        (lambda: "", "missing"),
        (lambda: "not-a-jwt", "invalid token"),
        (lambda: token(sub=""), "sub"),
    ],
)
def test_bad_tokens_are_refused(given, why) -> None:
    with pytest.raises(AuthError, match=why):
        verifier().verify(given())


def test_audience_is_checked() -> None:
    with pytest.raises(AuthError, match="aud"):
        verifier("https://mine").verify(token(aud="https://other"))
    with pytest.raises(AuthError):
        verifier().verify(token(aud=None))  # no aud at all


def test_hs256_with_the_public_key_is_refused() -> None:
    import base64
    import hashlib
    import hmac
    import json

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "x", "iss": ISSUER, "aud": AUD, "exp": int(time.time()) + 60}
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(PUBLIC_PEM.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(AuthError):
        verifier().verify(f"{head}.{body}.{sig}")


def test_key_from_a_file_and_account_host(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(PUBLIC_PEM)
    z = SimpleNamespace(
        app_public_key=str(path),
        subdomain="glowlab",
        base_url=None,
        app_audience=None,
        public_url="https://tactful.example.com/",
    )
    assert Verifier.from_settings(z).verify(token()).sub == "agent-42"
    assert account_host(SimpleNamespace(subdomain=None, base_url="http://127.0.0.1:9")) == (
        "127.0.0.1:9"
    )
    with pytest.raises(NotConfigured):
        Verifier.from_settings(SimpleNamespace(app_public_key=None, subdomain="x"))


def test_sessions_expire_and_cannot_be_forged() -> None:
    now = [1000.0]
    sessions = Sessions(lifetime=900, clock=lambda: now[0])
    session = sessions.issue(Agent("7", ISSUER))
    assert sessions.verify(session) == Agent("7", ISSUER)
    assert sessions.from_header(f"Bearer {session}").sub == "7"
    with pytest.raises(AuthError):
        Sessions(clock=lambda: now[0]).verify(session)  # another secret
    body, sig = session.split(".")
    with pytest.raises(AuthError):
        sessions.verify(body[:-2] + "AA." + sig)
    now[0] += 901
    with pytest.raises(AuthError, match="expired"):
        sessions.verify(session)

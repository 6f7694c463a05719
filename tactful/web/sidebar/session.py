"""The page's own short-lived session: an HMAC-SHA256 signed token (agent ``sub``, account,
expiry, and once the page has said which ticket it is on, that ticket) that the sidebar page
sends back as ``Authorization: Bearer`` on its follow-ups.

``tactful serve`` gives it a secret kept in the store, so sessions survive restarts and are
valid on every server process of one database; without one, the secret is random per
process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from tactful.web.sidebar.auth import Agent, AuthError

SESSION_SECONDS = 15 * 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(
        self,
        secret: bytes | None = None,
        *,
        lifetime: float = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime = lifetime
        self.clock = clock

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, agent: Agent, *, expires: float | None = None) -> str:
        exp = self.clock() + self.lifetime if expires is None else expires
        claims: dict[str, object] = {"sub": agent.sub, "acct": agent.account, "exp": exp}
        if agent.ticket is not None:
            claims["tkt"] = agent.ticket
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None) -> Agent:
        if not token or token.count(".") != 1:
            raise AuthError("missing session")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise AuthError("invalid session")
        try:
            claims = json.loads(_unb64(body))
            sub, account, exp = str(claims["sub"]), str(claims["acct"]), float(claims["exp"])
            ticket = claims.get("tkt")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthError("invalid session") from exc
        if self.clock() >= exp:
            raise AuthError("session expired: reopen the sidebar")
        return Agent(sub, account, ticket if type(ticket) is int else None)

    def expiry(self, token: str) -> float:
        """The expiry of a session ``verify`` accepted (a bound copy keeps it)."""
        return float(json.loads(_unb64(token.split(".")[0]))["exp"])

    def from_header(self, authorization: str | None) -> Agent:
        value = (authorization or "").strip()
        if not value.lower().startswith("bearer "):
            raise AuthError("missing session")
        return self.verify(value[7:].strip())

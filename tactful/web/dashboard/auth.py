"""Dashboard login: the ``[api] token`` or ``[api] dashboard_password``, compared in constant
time; an HMAC-SHA256 signed session cookie (HttpOnly, SameSite=Lax); a CSRF token per session.

Neither configured: no login (``tactful serve`` then binds loopback only, like the API); a
cookie-only session is still issued so that POSTs carry a CSRF token.

The signing key mixes the store's random secret with the configured credentials, so
changing the token or the password ends every session. Logging out revokes the session on
the server (``Revocations``: a row per logged-out session until it would have expired), so
a copied cookie stops working too. Every comparison is of bytes: a cookie or CSRF value
with non-ASCII characters is simply wrong, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tactful.store.base import Store

COOKIE = "tactful_dashboard"
SESSION_SECONDS = 12 * 3600
SECRET_META_KEY = "dashboard_session_secret"
REVOKED_PREFIX = "dashboard_revoked:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires: float
    logged_in: bool
    role: str = ""  # which credential logged in ("token", "password"); "" without login


class Revocations:
    """Logged-out sessions, kept in the store's ``meta`` table (shared by every server
    process) until they would have expired anyway; expired rows are pruned at each logout."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def revoke(self, session: Session, now: float) -> None:
        with self.store.transaction() as tx:
            tx.set_meta(REVOKED_PREFIX + session.sid, f"{session.expires:020.3f}")
            tx.prune_meta(REVOKED_PREFIX, f"{now:020.3f}")

    def revoked(self, sid: str) -> bool:
        with self.store.reader() as reader:
            return reader.get_meta(REVOKED_PREFIX + sid) is not None


class DashboardAuth:
    def __init__(
        self,
        secret: bytes,
        credentials: Sequence[str] | Mapping[str, str],
        *,
        lifetime: float = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
        revocations: Revocations | None = None,
    ) -> None:
        self.revocations = revocations
        pairs = (
            credentials.items()
            if isinstance(credentials, Mapping)
            else [("", c) for c in credentials]
        )
        self._credentials = [(role, c) for role, c in pairs if c]  # role -> credential
        mixed = b"\0".join(c.encode() for _, c in self._credentials)
        self._key = hmac.new(secret, b"dashboard\0" + mixed, hashlib.sha256).digest()
        self.lifetime = lifetime
        self.clock = clock

    @property
    def login_required(self) -> bool:
        return bool(self._credentials)

    def check(self, given: str) -> bool:
        """Whether ``given`` is one of the credentials; every comparison runs."""
        return self.role_of(given) is not None

    def role_of(self, given: str) -> str | None:
        """The role of the credential ``given`` is (None: none); every comparison runs."""
        found: str | None = None
        for role, credential in self._credentials:
            if hmac.compare_digest(given.encode(), credential.encode()) and found is None:
                found = role
        return found if given else None

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, *, logged_in: bool, role: str = "") -> tuple[Session, str]:
        session = Session(secrets.token_hex(16), self.clock() + self.lifetime, logged_in, role)
        claims = {"sid": session.sid, "exp": session.expires, "in": logged_in, "role": role}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return session, f"{body}.{self._sign(body)}"

    def verify(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            claims = json.loads(_unb64(body))
            session = Session(
                str(claims["sid"]),
                float(claims["exp"]),
                bool(claims["in"]),
                str(claims.get("role", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if self.clock() >= session.expires:
            return None
        if self.login_required and not session.logged_in:
            return None
        if self.revocations is not None and self.revocations.revoked(session.sid):
            return None
        return session

    def revoke(self, session: Session) -> None:
        """Log ``session`` out everywhere (its cookie is refused from now on)."""
        if self.revocations is not None:
            self.revocations.revoke(session, self.clock())

    def csrf(self, session: Session) -> str:
        return self._sign(f"csrf\0{session.sid}")

    def csrf_ok(self, session: Session | None, given: str) -> bool:
        if session is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf(session).encode())


def safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

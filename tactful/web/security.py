"""Response headers every surface sends, and the Host check that stands in for the token.

- Every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  a ``Content-Security-Policy`` unless the route set its own: JSON and text get
  ``default-src 'none'``; HTML gets the dashboard's policy (stylesheets from the site's own
  ``/static`` files only, no script, nothing inline, ``frame-ancestors 'none'``). Both also
  send ``X-Frame-Options: DENY``.
- The sidebar page sets its own policy: scripts and styles from the site's static files and
  Zendesk's SDK host, nothing inline, and ``frame-ancestors`` limited to the Zendesk account
  (``sidebar_csp``).
- Without ``[api] token`` (loopback only), a DNS-rebinding page could reach the API under
  its own name: ``host_allowed`` lets only loopback names and the host of
  ``[zendesk] public_url`` through.
"""

from __future__ import annotations

import hashlib
import logging
import math
from urllib.parse import urlsplit

from starlette.types import Scope

from tactful.config.models import ZendeskSettings
from tactful.web.context import WebContext
from tactful.web.sidebar import page

log = logging.getLogger("tactful.web")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _policy(**directives: str) -> str:
    return "; ".join(f"{name.replace('_', '-')} {value}" for name, value in directives.items())


API_CSP = _policy(default_src="'none'", frame_ancestors="'none'")
DASHBOARD_CSP = _policy(
    default_src="'none'",
    style_src="'self'",
    img_src="'self' data:",
    form_action="'self'",
    base_uri="'none'",
    frame_ancestors="'none'",
)


def zendesk_origins(zendesk: ZendeskSettings) -> list[str]:
    """Origins allowed to frame the sidebar: the account (and ``base_url``, when set)."""
    origins = [f"https://{zendesk.subdomain}.zendesk.com"] if zendesk.subdomain else []
    if zendesk.base_url:
        parts = urlsplit(zendesk.base_url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def sidebar_csp(zendesk: ZendeskSettings) -> str:
    sdk = urlsplit(page.ZAF_SDK_URL)
    return _policy(
        default_src="'none'",
        script_src=f"'self' {sdk.scheme}://{sdk.netloc}",
        style_src="'self'",
        connect_src="'self'",
        img_src="'self' data:",
        form_action="'self'",
        base_uri="'none'",
        frame_ancestors=" ".join(zendesk_origins(zendesk)) or "'none'",
    )


def default_headers(content_type: str) -> list[tuple[bytes, bytes]]:
    """Headers added to a response that does not set them itself."""
    csp = DASHBOARD_CSP if content_type.startswith("text/html") else API_CSP
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]


def host_name(host_header: str) -> str:
    """``Host`` without its port, lower case (``[::1]:8000`` → ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str, public_url: str | None) -> bool:
    """Loopback names, or the host Tactful is published under (``[zendesk] public_url``)."""
    name = host_name(host_header)
    if name in LOOPBACK_HOSTS:
        return True
    return bool(public_url) and name == (urlsplit(public_url).hostname or "")


def client_key(scope: Scope) -> str:
    """Who is asking, for rate limits: the peer address (uvicorn puts the client of a trusted
    proxy's ``X-Forwarded-For`` there: ``tactful serve --forwarded-allow-ips``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _hashed(client: str) -> str:
    """Logs stay free of personal data: a client address is logged as a short hash."""
    return hashlib.sha256(client.encode()).hexdigest()[:12]


def throttled(ctx: WebContext, surface: str, client: str) -> str | None:
    """``Retry-After`` seconds when ``client`` must wait before trying to authenticate again
    (counted and logged), else None. Asked *before* the credential is checked."""
    wait = ctx.throttle.retry_after(client)
    if wait is None:
        return None
    ctx.metrics.auth_throttled.labels(surface).inc()
    log.warning("%s: too many failed attempts, refused (client %s)", surface, _hashed(client))
    return str(max(1, math.ceil(wait)))


def auth_failed(ctx: WebContext, surface: str, client: str) -> None:
    """Count and log a failed authentication, and feed it to the throttle."""
    failures = ctx.throttle.failed(client)
    ctx.metrics.auth_failures.labels(surface).inc()
    log.warning(
        "%s: authentication failed (client %s, %d recent)", surface, _hashed(client), failures
    )

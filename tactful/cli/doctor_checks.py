"""``tactful doctor``'s destination checks: each type's own probe (``SPEC.probe``, one
authenticated, side-effect-free call per vendor; ``tactful.destinations.probe``), else
whether the destination's host answers, the detail saying that its credentials are only
checked by sending.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.spec import Verdict

TIMEOUT = 5.0


def reachable(url: str, client: httpx.Client) -> Verdict:
    parts = urlsplit(url)
    response = client.get(f"{parts.scheme}://{parts.netloc}/")
    return True, f"{parts.netloc} answered HTTP {response.status_code}", ""


def check_destination(
    config: DestinationSettings, transport: httpx.BaseTransport | None = None
) -> Verdict:
    """Build the destination (its settings are complete), then ask what its type's ``SPEC``
    says to ask (its ``probe``), else whether its host answers."""
    registry.create(config).close()
    with httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False) as client:
        probe = registry.spec(config.type).probe
        if probe is not None:
            return probe(config, client)
        url = config.base_url or config.setting("url")
        unchecked = "credentials are checked only by sending (no side-effect-free call)"
        if url and url.startswith(("http://", "https://")):
            ok, detail, fix = reachable(url, client)
            return ok, f"{detail}; {unchecked}", fix
        return True, f"{config.type}: configured; {unchecked}", ""

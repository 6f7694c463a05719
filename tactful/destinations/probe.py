"""What ``tactful doctor`` asks a destination type: one authenticated, side-effect-free call,
the one its vendor documents for reading what the credentials can see (each module's
``probe``, declared in its ``SPEC``; the pages are cited there). A ``401``/``403`` names the
credential settings to fix, a ``404`` the id or URL setting. Types without such a call
(Standard Webhooks, Segment, Amplitude, Mixpanel accept anything until data is sent) have
no probe: ``doctor`` checks their host and says the credentials are only checked by sending.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tactful.destinations.spec import Probed as Probed
from tactful.destinations.spec import Verdict as Verdict


def where(config: Probed, *keys: str) -> str:
    """The fix: which settings of which entry to check."""
    names = " and ".join(f"`{k}`" for k in keys)
    return f"check {names} of [[destinations]] {config.name!r}"


def by_status(
    config: Probed, response: httpx.Response, creds: tuple[str, ...], ids: tuple[str, ...]
) -> Verdict:
    """The verdict of the HTTP status alone (ok: nothing to say yet)."""
    code = response.status_code
    detail = f"HTTP {code} from {response.request.url.host}"
    if code in (401, 403):
        return False, f"{detail}: credentials refused", where(config, *creds)
    if code == 404:
        return False, f"{detail}: not found", where(config, *ids)
    if not response.is_success:
        return False, f"{detail}: {response.text[:200].strip()}", "retry later, or check base_url"
    return True, "", ""


def body_of(response: httpx.Response) -> Any:
    """The JSON body, or ``{}`` when it is not JSON."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}

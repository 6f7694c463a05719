"""``tactful doctor``'s destination checks: one authenticated, side-effect-free call per
vendor, the one its documentation gives for reading what the credentials can see.

- Customer.io: ``GET /api/v1/accounts/region`` on the Track API with the ``site_id:api_key``
  basic auth ("returns the region and URL for your Track API credentials"; ``401`` for wrong
  ones). https://docs.customer.io/integrations/api/track/tag/trackregion/getRegion/
- Klaviyo: ``GET /api/accounts`` ("test if a private API key belongs to the correct
  account"), ``Authorization: Klaviyo-API-Key``, ``revision`` header.
  https://developers.klaviyo.com/en/reference/get_accounts
- Meta: ``GET /{audience_id}?fields=id,name`` (reading a custom audience); Graph errors
  ``190`` (token) and ``100``/``803`` (no such object).
  https://developers.facebook.com/docs/marketing-api/reference/custom-audience#Reading
- TikTok: ``GET /dmp/custom_audience/get/?advertiser_id=…&custom_audience_ids=[…]`` with the
  ``Access-Token`` header; ``code`` 40102/40104/40105 (token), 40001 (permission).
  https://business-api.tiktok.com/portal/docs/get-audience-details/v1.3
- Sailthru: a signed ``GET /list`` ("a GET … will only return information").
  https://getstarted.meetmarigold.com/engagebysailthru/Content/developers/api-basics/technical.html

A ``401``/``403`` names the credential settings to fix, a ``404`` the id or URL setting.
Other types have no side-effect-free authenticated call (Standard Webhooks, Segment,
Amplitude, Mixpanel accept anything until data is sent): their host is checked, and the
detail says the credentials are only checked by sending.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tactful.http.auth import basic_auth_header

Probe = tuple[bool, str, str]  # ok, detail, fix
TIMEOUT = 5.0


def _where(config: Any, *keys: str) -> str:
    names = " and ".join(f"`{k}`" for k in keys)
    return f"check {names} of [[destinations]] {config.name!r}"


def _status(
    config: Any, response: httpx.Response, creds: tuple[str, ...], ids: tuple[str, ...]
) -> Probe:
    code = response.status_code
    detail = f"HTTP {code} from {response.request.url.host}"
    if code in (401, 403):
        return False, f"{detail}: credentials refused", _where(config, *creds)
    if code == 404:
        return False, f"{detail}: not found", _where(config, *ids)
    if not response.is_success:
        return False, f"{detail}: {response.text[:200].strip()}", "retry later, or check base_url"
    return True, "", ""


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}


def customerio(config: Any, client: httpx.Client) -> Probe:
    from tactful.destinations.customerio import TRACK_HOSTS

    region = (config.setting("region") or "us").lower()
    base = (config.base_url or TRACK_HOSTS.get(region, TRACK_HOSTS["us"])).rstrip("/")
    response = client.get(
        f"{base}/api/v1/accounts/region",
        headers={
            "authorization": basic_auth_header(
                config.setting("site_id") or "", config.setting("api_key") or ""
            )
        },
    )
    verdict = _status(config, response, ("site_id", "api_key"), ("region", "base_url"))
    if not verdict[0]:
        return verdict
    found = str(_json(response).get("region", "?"))
    if found.lower() != region and not config.base_url:
        return False, f"the workspace is in region {found!r}", _where(config, "region")
    return True, f"Track API credentials valid (region {found})", ""


def klaviyo(config: Any, client: httpx.Client) -> Probe:
    from tactful.destinations.klaviyo import BASE_URL, REVISION

    base = (config.base_url or BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/api/accounts",
        headers={
            "Authorization": f"Klaviyo-API-Key {config.setting('api_key') or ''}",
            "revision": config.setting("revision") or REVISION,
            "accept": "application/vnd.api+json",
        },
    )
    verdict = _status(config, response, ("api_key",), ("base_url",))
    if not verdict[0]:
        if response.status_code == 403:
            return False, verdict[1], verdict[2] + " (the key needs the accounts:read scope)"
        return verdict
    accounts = _json(response).get("data") or [{}]
    return True, f"API key valid (account {accounts[0].get('id', '?')})", ""


def meta(config: Any, client: httpx.Client) -> Probe:
    from tactful.destinations.meta import DEFAULT_BASE_URL

    base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/{config.setting('audience_id')}",
        params={"fields": "id,name", "access_token": config.setting("access_token") or ""},
    )
    error = _json(response).get("error") or {}
    code = error.get("code")
    if code == 190 or response.status_code == 401:
        return (
            False,
            f"Meta refused the token: {error.get('message', '')}",
            _where(config, "access_token"),
        )
    if code in (100, 803) or response.status_code == 404:
        return False, f"no such audience: {error.get('message', '')}", _where(config, "audience_id")
    if code in (10, 200, 294) or response.status_code == 403:
        return (
            False,
            f"no permission: {error.get('message', '')}",
            _where(config, "access_token") + " (ads_management on the audience's ad account)",
        )
    verdict = _status(config, response, ("access_token",), ("audience_id",))
    if not verdict[0]:
        return verdict
    return True, f"audience {_json(response).get('name', '?')!r} readable", ""


def tiktok(config: Any, client: httpx.Client) -> Probe:
    from tactful.destinations.tiktok import DEFAULT_BASE_URL, PERMISSION_CODES, TOKEN_CODES

    base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/dmp/custom_audience/get/",
        params={
            "advertiser_id": config.setting("advertiser_id") or "",
            "custom_audience_ids": orjson.dumps([config.setting("audience_id") or ""]).decode(),
        },
        headers={"Access-Token": config.setting("access_token") or ""},
    )
    verdict = _status(config, response, ("access_token",), ("audience_id",))
    if not verdict[0]:
        return verdict
    body = _json(response)
    code, message = body.get("code", -1), body.get("message", "")
    if code in TOKEN_CODES:
        return (
            False,
            f"TikTok refused the token ({code}: {message})",
            _where(config, "access_token"),
        )
    if code in PERMISSION_CODES:
        return (
            False,
            f"no permission ({code}: {message})",
            _where(config, "advertiser_id", "access_token"),
        )
    if code != 0:
        return False, f"TikTok error {code}: {message}", _where(config, "audience_id")
    found = (body.get("data") or {}).get("list") or []
    if not found:
        return False, "the advertiser has no such audience", _where(config, "audience_id")
    return True, "audience readable", ""


def sailthru(config: Any, client: httpx.Client) -> Probe:
    from tactful.destinations.sailthru import BASE_URL, signed_params

    base = (config.base_url or BASE_URL).rstrip("/")
    key, secret = config.setting("api_key") or "", config.setting("api_secret") or ""
    response = client.get(f"{base}/list", params=signed_params(key, secret, {}))
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if error in (2, 3) or response.status_code in (401, 403):
        return (
            False,
            f"Sailthru refused the request: {body.get('errormsg', '')}",
            _where(config, "api_key", "api_secret"),
        )
    verdict = _status(config, response, ("api_key", "api_secret"), ("base_url",))
    if not verdict[0]:
        return verdict
    return True, "API key and secret valid", ""


CHECKS: dict[str, Callable[[Any, httpx.Client], Probe]] = {
    "customerio": customerio,
    "klaviyo": klaviyo,
    "meta_audience": meta,
    "tiktok_audience": tiktok,
    "sailthru": sailthru,
}


def reachable(url: str, client: httpx.Client) -> Probe:
    parts = urlsplit(url)
    response = client.get(f"{parts.scheme}://{parts.netloc}/")
    return True, f"{parts.netloc} answered HTTP {response.status_code}", ""


def check_destination(config: Any, transport: httpx.BaseTransport | None = None) -> Probe:
    """Build the destination (its settings are complete), then its vendor check."""
    from tactful.destinations import registry

    registry.create(config).close()
    with httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False) as client:
        check = CHECKS.get(config.type)
        if check is not None:
            return check(config, client)
        url = config.base_url or config.setting("url")
        unchecked = "credentials are checked only by sending (no side-effect-free call)"
        if url and url.startswith(("http://", "https://")):
            ok, detail, fix = reachable(url, client)
            return ok, f"{detail}; {unchecked}", fix
        return True, f"{config.type}: configured; {unchecked}", ""

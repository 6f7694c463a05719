"""Sailthru (Marigold Engage): profiles, events and erasure, plus the sidebar.

Every call carries the parameters ``api_key``, ``format=json``, ``json=<payload>`` and
``sig``: the MD5 hex digest of the API secret followed by the sorted values of the other
parameters (the official clients' algorithm). POSTs send them form-encoded, GET and DELETE
in the query string.

- ``profile`` → ``POST /user`` ``{"id": email, "key": "email", "vars": {…}}`` (times as
  ISO 8601 text), with the vars Sailthru's own Zendesk integration documents besides the
  ``zendesk_*`` profile ones: ``zendesk_sync`` ("whether the user is actively syncing with
  Zendesk": true while Tactful syncs the profile, false after an unsubscribe) and
  ``zendesk_active`` ("whether the user is currently active in Zendesk": the person has a
  Zendesk user; deleted Zendesk users are erased, not synced).
- A person is addressed by the first identifier in ``identify_by`` the item has (default
  ``["email", "external_id"]``): an email with ``key: email``, any other kind (external id,
  Zendesk user id, person id) with ``key: extid``.
- ``event`` → ``POST /event`` ``{"id", "key", "event", "vars"}``. Sailthru has no event id
  to deduplicate on, so a redelivered event is recorded again.
- ``erase`` → ``DELETE /user`` ``{"id", "key"}``; an already missing user counts as erased.
- ``unsubscribe`` (email consent withdrawn) → ``POST /user`` ``{"id", "key",
  "optout_email": "all", "vars": {"zendesk_sync": false}}``: "the user will not receive any
  emails" apart from transactional ones (Sailthru API reference, ``user`` POST,
  ``optout_email``; products.zetaglobal.com/sailthru).

Errors come back as ``{"error": <code>, "errormsg": …}``; a rate limit is HTTP 429 with
error 43 and ``X-Rate-Limit-Reset`` (epoch seconds), which becomes ``retry_after``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field

from tactful.clock import epoch_seconds
from tactful.config.models import DestinationSettings
from tactful.destinations.base import Capabilities, Item, Outcome, Purpose, classify_status
from tactful.destinations.identify import ESP_IDENTIFY_BY, identify_by_of, pick
from tactful.destinations.probe import Probed, Verdict, body_of, by_status, where
from tactful.destinations.profiles import (
    ESP_KINDS,
    MarketingProfile,
    ProfileError,
    attributes,
    json_body,
    no_identifier,
    parse_time,
    retry_after_of,
    send_in_order,
    transport_failure,
)
from tactful.destinations.spec import ESP, DestinationConfig, DestinationSpec, Secret

BASE_URL = "https://api.sailthru.com"
MAX_BATCH = 50
RATE_LIMITED = 43
PROFILE_FIELDS = {
    "keys": 1,
    "vars": 1,
    "lists": 1,
    "optout_email": 1,
    "engagement": 1,
    "activity": 1,
}


def signature(params: Mapping[str, str], secret: str) -> str:
    """MD5 of the secret plus the sorted parameter values (``sig`` itself excluded)."""
    values = sorted(str(v) for k, v in params.items() if k != "sig")
    return hashlib.md5((secret + "".join(values)).encode()).hexdigest()


def signed_params(api_key: str, secret: str, payload: Mapping[str, Any]) -> dict[str, str]:
    params = {
        "api_key": api_key,
        "format": "json",
        "json": json.dumps(payload, separators=(",", ":")),
    }
    return {**params, "sig": signature(params, secret)}


class SailthruDestination:
    type = "sailthru"

    def __init__(
        self,
        *,
        name: str,
        api_key: str,
        api_secret: str,
        purpose: Purpose = "email",
        segments: Sequence[str] | None = None,
        base_url: str | None = None,
        identify_by: Sequence[str] = ESP_IDENTIFY_BY.default,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.purpose, self.segments = name, purpose, segments
        self.identify_by = tuple(identify_by)
        self.capabilities = Capabilities(MAX_BATCH, ESP_KINDS)
        self.base_url = (base_url or BASE_URL).rstrip("/")
        self._key, self._secret = api_key, api_secret
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, action: str, payload: Mapping[str, Any]) -> httpx.Response:
        params = signed_params(self._key, self._secret, payload)
        if method == "POST":
            return self._http.post(f"/{action}", data=params)
        return self._http.request(method, f"/{action}", params=params)

    # -- delivery --------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return send_in_order(items, self._send_one)

    def _send_one(self, item: Item) -> Outcome:
        picked = pick(item, self.identify_by)
        if picked is None:
            return no_identifier("Sailthru")
        who = {"id": picked[1], "key": "email" if picked[0] == "email" else "extid"}
        try:
            if item.kind == "profile":
                vars_ = attributes(item.properties, "iso")
                vars_["zendesk_sync"] = True  # Tactful keeps this profile in sync
                vars_["zendesk_active"] = bool(vars_.get("zendesk_id"))
                return _outcome(self.request("POST", "user", {**who, "vars": vars_}))
            if item.kind == "event":
                if not item.name:
                    return Outcome("reject", "event without a name")
                payload = {**who, "event": item.name, "vars": attributes(item.properties, "iso")}
                return _outcome(self.request("POST", "event", payload))
            if item.kind == "unsubscribe":  # and no more syncing: consent was withdrawn
                payload = {**who, "optout_email": "all", "vars": {"zendesk_sync": False}}
                return _outcome(self.request("POST", "user", payload))
            if item.kind == "erase":
                response = self.request("DELETE", "user", who)
                return Outcome.ok() if _not_found(response) else _outcome(response)
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        return Outcome("reject", f"Sailthru does not take {item.kind!r} items")

    # -- sidebar -------------------------------------------------------------------------------

    def read_profile(self, email: str) -> MarketingProfile | None:
        response = self._call("GET", {"id": email, "key": "email", "fields": PROFILE_FIELDS})
        if _not_found(response):
            return None
        body = _checked(response)
        activity = body.get("activity") or {}
        optout = body.get("optout_email")
        lists = body.get("lists") or {}
        return MarketingProfile(
            email=str((body.get("keys") or {}).get("email") or email),
            lists=sorted(lists) if isinstance(lists, dict) else [],
            opted_out=None if optout is None else optout != "none",
            signup_at=parse_time(activity.get("signup_time") or activity.get("create_time")),
            last_open_at=parse_time(activity.get("open_time")),
            last_click_at=parse_time(activity.get("click_time")),
            last_pageview_at=parse_time(activity.get("pageview_time") or activity.get("view_time")),
            raw=body,
        )

    def set_optout(self, email: str, opted_out: bool) -> None:
        """``optout_email``: ``all`` opts out of every email, ``none`` restores delivery."""
        payload = {"id": email, "key": "email", "optout_email": "all" if opted_out else "none"}
        _checked(self._call("POST", payload))

    def remove_from_list(self, email: str, list_id: str) -> None:
        """``list_id`` is the list's name (Sailthru lists are keyed by name)."""
        _checked(self._call("POST", {"id": email, "key": "email", "lists": {list_id: 0}}))

    def change_email(self, old_email: str, new_email: str) -> None:
        """Set the ``email`` key of the existing profile: vars, lists and history stay."""
        _checked(
            self._call("POST", {"id": old_email, "key": "email", "keys": {"email": new_email}})
        )

    def _call(self, method: str, payload: Mapping[str, Any]) -> httpx.Response:
        try:
            return self.request(method, "user", payload)
        except httpx.HTTPError as exc:
            raise ProfileError(f"Sailthru unreachable: {type(exc).__name__}: {exc}") from exc


def _error(response: httpx.Response) -> tuple[int | None, str]:
    body = json_body(response)
    code = body.get("error")
    message = body.get("errormsg") or response.text[:300] or response.reason_phrase
    return (code if isinstance(code, int) else None), f"Sailthru error {code}: {message}"


def _retry_after(response: httpx.Response) -> float | None:
    seconds = retry_after_of(response)
    reset = response.headers.get("X-Rate-Limit-Reset", "")
    if seconds is None and reset.isdigit():
        seconds = max(0.0, int(reset) - epoch_seconds())
    return seconds


def _outcome(response: httpx.Response) -> Outcome:
    code, message = _error(response)
    if 200 <= response.status_code < 300 and code is None:
        return Outcome.ok()
    if code == RATE_LIMITED or response.status_code == 429:
        return Outcome("retry", message, _retry_after(response), 429)
    if 200 <= response.status_code < 300:  # an error reported with 200
        return Outcome("retry" if code == 9 else "reject", message, None, response.status_code)
    return classify_status(response.status_code, _retry_after(response), message)


def _not_found(response: httpx.Response) -> bool:
    _, message = _error(response)
    return response.status_code == 404 or (
        response.status_code == 400 and "not found" in message.lower()
    )


def _checked(response: httpx.Response) -> dict[str, Any]:
    outcome = _outcome(response)
    if outcome.kind != "ok":
        raise ProfileError(outcome.error, response.status_code, outcome.retry_after)
    return json_body(response)


class SailthruConfig(DestinationConfig):
    api_key: Secret = Field(description="API key")
    api_secret: Secret = Field(description="API secret (signs requests)")


def probe(config: Probed, client: httpx.Client) -> Verdict:
    """Sailthru: a signed ``GET /list`` ("a GET … will only return information").
    https://getstarted.meetmarigold.com/engagebysailthru/Content/developers/api-basics/technical.html"""
    base = (config.base_url or BASE_URL).rstrip("/")
    key, secret = config.setting("api_key") or "", config.setting("api_secret") or ""
    response = client.get(f"{base}/list", params=signed_params(key, secret, {}))
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    if error in (2, 3) or response.status_code in (401, 403):
        return (
            False,
            f"Sailthru refused the request: {body.get('errormsg', '')}",
            where(config, "api_key", "api_secret"),
        )
    verdict = by_status(config, response, ("api_key", "api_secret"), ("base_url",))
    if not verdict[0]:
        return verdict
    return True, "API key and secret valid", ""


SPEC = DestinationSpec(
    type=SailthruDestination.type,
    purpose="email",
    vendor="Sailthru",
    summary="Sailthru (Marigold Engage) user vars, lists, opt-outs and events",
    identify_by=ESP_IDENTIFY_BY,
    config=SailthruConfig,
    roles=ESP,
    probe=probe,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> SailthruDestination:
    keys = SailthruConfig.of(config)
    return SailthruDestination(
        name=config.name,
        api_key=keys.api_key,
        api_secret=keys.api_secret,
        purpose=config.purpose,
        segments=config.segments,
        base_url=config.base_url,
        identify_by=identify_by_of(config, ESP_IDENTIFY_BY),
        transport=transport,
    )

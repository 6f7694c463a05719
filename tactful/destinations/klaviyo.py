"""Klaviyo: profiles, events and erasure, plus the sidebar, on the JSON:API at
``https://a.klaviyo.com`` (``Authorization: Klaviyo-API-Key …``, a ``revision`` header,
``application/vnd.api+json`` bodies).

- ``profile`` → ``POST /api/profile-import`` (create-or-update; ≤ 100 kB) with the state
  and Zendesk fields under ``attributes.properties`` (times as ISO 8601).
- ``event`` → ``POST /api/events`` with the metric name, ``time`` and ``unique_id`` = the
  item key: Klaviyo records only the first event per (profile, metric, unique_id).
- ``erase`` → ``POST /api/data-privacy-deletion-jobs`` by email (by profile id after a
  lookup when the person is addressed by another identifier).
- ``unsubscribe`` (email consent withdrawn) → "Bulk Unsubscribe Profiles",
  ``POST /api/profile-subscription-bulk-delete-jobs`` with the email and marketing consent
  ``UNSUBSCRIBED``, no list: a global unsubscribe
  (https://developers.klaviyo.com/en/reference/bulk_unsubscribe_profiles). Klaviyo
  unsubscribes by email, so a person addressed by another identifier is looked up first
  (nobody found, or no email: nothing to unsubscribe).

A person is addressed by the first identifier in ``identify_by`` the item has (default
``["email", "external_id"]``): ``email``, ``phone`` (``phone_number``), or any other kind
(external id, Zendesk user id, person id) as the profile's ``external_id``.

One request per item; a 409 (identifier conflict) is permanent here, not a retry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field

from tactful.config.models import DestinationSettings
from tactful.destinations.base import Capabilities, Item, Outcome, Purpose
from tactful.destinations.identify import IdentifyBy, identify_by_of, pick
from tactful.destinations.probe import Probed, Verdict, body_of, by_status
from tactful.destinations.profiles import (
    ESP_KINDS,
    MarketingProfile,
    ProfileError,
    attributes,
    iso,
    json_body,
    json_size,
    newest_tickets_within,
    no_identifier,
    outcome_of,
    parse_time,
    retry_after_of,
    send_in_order,
    transport_failure,
)
from tactful.destinations.spec import ESP, DestinationConfig, DestinationSpec, Secret, Text

BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-10-15"
PROFILE_BYTES = 100_000  # "The maximum allowed payload size is 100KB."
MAX_BATCH = 50
OPTED_OUT_REASONS = {"UNSUBSCRIBE", "USER_SUPPRESSED", "SPAM_COMPLAINT"}
JSONAPI = "application/vnd.api+json"
FIELDS = {"email": "email", "phone": "phone_number"}  # identify_by kind -> profile field
# Klaviyo also addresses a profile by its phone number.
IDENTIFY = IdentifyBy(
    ("email", "phone", "external_id", "zendesk_user_id", "person_id"), ("email", "external_id")
)


class KlaviyoDestination:
    type = "klaviyo"

    def __init__(
        self,
        *,
        name: str,
        api_key: str,
        purpose: Purpose = "email",
        segments: Sequence[str] | None = None,
        base_url: str | None = None,
        revision: str = REVISION,
        identify_by: Sequence[str] = IDENTIFY.default,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.purpose, self.segments = name, purpose, segments
        self.identify_by = tuple(identify_by)
        self.capabilities = Capabilities(MAX_BATCH, ESP_KINDS, PROFILE_BYTES)
        self.base_url = (base_url or BASE_URL).rstrip("/")
        headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "Accept": JSONAPI,
        }
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    # -- delivery --------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return send_in_order(items, self._send_one)

    def _send_one(self, item: Item) -> Outcome:
        who = pick(item, self.identify_by)
        if who is None:
            return no_identifier("Klaviyo")
        field, value = FIELDS.get(who[0], "external_id"), who[1]
        identity = {field: value}
        try:
            if item.kind == "profile":
                body = _profile_body(identity, item)
                if json_size(body) > PROFILE_BYTES:
                    return Outcome("reject", "profile larger than Klaviyo's 100 kB payload limit")
                return _outcome(self._write("POST", "/api/profile-import", body))
            if item.kind == "event":
                if not item.name:
                    return Outcome("reject", "event without a name")
                return _outcome(self._write("POST", "/api/events", _event_body(identity, item)))
            if item.kind in ("erase", "unsubscribe"):
                found = self._lookup(field, value)
                if isinstance(found, Outcome):
                    return found
                return self._erase(found) if item.kind == "erase" else self._unsubscribe(found)
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        return Outcome("reject", f"Klaviyo does not take {item.kind!r} items")

    def _lookup(self, field: str, value: str) -> dict[str, Any] | Outcome | None:
        """The profile to act on: by email directly; by another identifier, the profile
        Klaviyo holds under it (None: nobody), or the failed lookup's outcome."""
        if field == "email":
            return {"type": "profile", "attributes": {"email": value}}
        found = self._http.get("/api/profiles", params=_filter(field, value))
        if found.status_code != 200:
            return _outcome(found)
        data = json_body(found).get("data") or []
        if not data or not isinstance(data[0], dict):
            return None
        email = (data[0].get("attributes") or {}).get("email")
        attributes = {"email": email} if email else {}
        return {"type": "profile", "id": data[0]["id"], "attributes": attributes}

    def _erase(self, profile: dict[str, Any] | None) -> Outcome:
        if profile is None:
            return Outcome.ok()  # nobody to delete
        if "id" in profile:  # one identifier a deletion job: the profile id
            profile = {"type": "profile", "id": profile["id"], "attributes": {}}
        body = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": profile}},
            }
        }
        return _outcome(self._write("POST", "/api/data-privacy-deletion-jobs", body))

    def _unsubscribe(self, profile: dict[str, Any] | None) -> Outcome:
        email = (profile or {}).get("attributes", {}).get("email")
        if not email:
            return Outcome.ok()  # no email at Klaviyo: nothing it could market to
        job = _subscription_job(str(email), opted_out=True)
        return _outcome(self._write("POST", "/api/profile-subscription-bulk-delete-jobs", job))

    def _write(self, method: str, path: str, body: Any) -> httpx.Response:
        content = json.dumps(body, separators=(",", ":")).encode()
        return self._http.request(method, path, content=content, headers={"Content-Type": JSONAPI})

    # -- sidebar -------------------------------------------------------------------------------

    def read_profile(self, email: str) -> MarketingProfile | None:
        profile = self._find(email, subscriptions=True)
        if profile is None:
            return None
        attrs = profile.get("attributes") or {}
        lists = _checked(
            self._call(
                "GET", f"/api/profiles/{profile['id']}/lists", None, {"fields[list]": "name"}
            )
        )
        entries = [x for x in json_body(lists).get("data") or [] if isinstance(x, dict)]
        marketing = ((attrs.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        consent = marketing.get("consent")
        suppressed = {
            s.get("reason") for s in marketing.get("suppression") or [] if isinstance(s, dict)
        }
        return MarketingProfile(
            email=str(attrs.get("email") or email),
            lists=[str(x.get("id")) for x in entries],
            opted_out=None
            if consent is None
            else consent == "UNSUBSCRIBED" or bool(suppressed & OPTED_OUT_REASONS),
            signup_at=parse_time(attrs.get("created")),
            raw={
                **profile,
                "list_names": {
                    str(x.get("id")): (x.get("attributes") or {}).get("name") for x in entries
                },
            },
        )

    def set_optout(self, email: str, opted_out: bool) -> None:
        """Unsubscribe (globally: no list given) or subscribe the email to marketing."""
        body = _subscription_job(email, opted_out=opted_out)
        _checked(self._call("POST", f"/api/{body['data']['type']}s", body))

    def change_email(self, old_email: str, new_email: str) -> None:
        pid = self._profile_id(old_email)
        body = {"data": {"type": "profile", "id": pid, "attributes": {"email": new_email}}}
        _checked(self._call("PATCH", f"/api/profiles/{pid}", body))

    def remove_from_list(self, email: str, list_id: str) -> None:
        """Leaves the consent status alone (Klaviyo's "Remove Profiles from List")."""
        body = {"data": [{"type": "profile", "id": self._profile_id(email)}]}
        _checked(
            self._call(
                "DELETE", f"/api/lists/{quote(list_id, safe='')}/relationships/profiles", body
            )
        )

    def _profile_id(self, email: str) -> str:
        profile = self._find(email)
        if profile is None:
            raise ProfileError("no Klaviyo profile with that email", 404)
        return str(profile["id"])

    def _find(self, email: str, *, subscriptions: bool = False) -> dict[str, Any] | None:
        params = _filter("email", email)
        if subscriptions:
            params["additional-fields[profile]"] = "subscriptions"
        data = (
            json_body(_checked(self._call("GET", "/api/profiles", None, params))).get("data") or []
        )
        return data[0] if data and isinstance(data[0], dict) else None

    def _call(
        self, method: str, path: str, body: Any, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            if body is None:
                return self._http.request(method, path, params=params)
            return self._write(method, path, body)
        except httpx.HTTPError as exc:
            raise ProfileError(f"Klaviyo unreachable: {type(exc).__name__}: {exc}") from exc


def _profile_body(identity: dict[str, Any], item: Item) -> dict[str, Any]:
    properties = attributes(item.properties, "iso")
    body = {"data": {"type": "profile", "attributes": {**identity, "properties": properties}}}
    if json_size(body) > PROFILE_BYTES and "zendesk_tickets" in properties:
        room = PROFILE_BYTES - json_size(body) + json_size(properties["zendesk_tickets"])
        properties["zendesk_tickets"] = newest_tickets_within(
            properties["zendesk_tickets"], max(0, room)
        )
    return body


def _subscription_job(email: str, *, opted_out: bool) -> dict[str, Any]:
    """A bulk unsubscribe (``opted_out``) or subscribe job for one email, no list given."""
    job = (
        "profile-subscription-bulk-delete-job"
        if opted_out
        else "profile-subscription-bulk-create-job"
    )
    consent = "UNSUBSCRIBED" if opted_out else "SUBSCRIBED"
    person = {
        "type": "profile",
        "attributes": {
            "email": email,
            "subscriptions": {"email": {"marketing": {"consent": consent}}},
        },
    }
    return {"data": {"type": job, "attributes": {"profiles": {"data": [person]}}}}


def _event_body(identity: dict[str, Any], item: Item) -> dict[str, Any]:
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": attributes(item.properties, "iso"),
                "time": iso(item.at),
                "unique_id": item.key,
                "metric": {"data": {"type": "metric", "attributes": {"name": item.name}}},
                "profile": {"data": {"type": "profile", "attributes": identity}},
            },
        }
    }


def _filter(field: str, value: str) -> dict[str, str]:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return {"filter": f'equals({field},"{escaped}")'}


def _outcome(response: httpx.Response) -> Outcome:
    text = _error_text(response)
    if response.status_code == 409:  # identifier already used by another profile
        return Outcome("reject", text, None, 409)
    return outcome_of(response, text)


def _checked(response: httpx.Response) -> httpx.Response:
    if not 200 <= response.status_code < 300:
        raise ProfileError(_error_text(response), response.status_code, retry_after_of(response))
    return response


def _error_text(response: httpx.Response) -> str:
    errors = json_body(response).get("errors")
    if isinstance(errors, list) and errors:
        parts = []
        for error in errors:
            if isinstance(error, dict):
                pointer = (error.get("source") or {}).get("pointer")
                detail = error.get("detail") or error.get("title") or error.get("code")
                parts.append(f"{detail} ({pointer})" if pointer else str(detail))
        return f"Klaviyo HTTP {response.status_code}: " + "; ".join(parts)
    return f"Klaviyo HTTP {response.status_code}: {response.text[:300] or response.reason_phrase}"


class KlaviyoConfig(DestinationConfig):
    api_key: Secret = Field(description="a private API key")
    revision: Text | None = Field(
        default=None, description=f"the API revision header (default `{REVISION}`)"
    )


def probe(config: Probed, client: httpx.Client) -> Verdict:
    """Klaviyo: ``GET /api/accounts`` ("test if a private API key belongs to the correct
    account"), ``Authorization: Klaviyo-API-Key``, ``revision`` header.
    https://developers.klaviyo.com/en/reference/get_accounts"""
    base = (config.base_url or BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/api/accounts",
        headers={
            "Authorization": f"Klaviyo-API-Key {config.setting('api_key') or ''}",
            "revision": config.setting("revision") or REVISION,
            "accept": "application/vnd.api+json",
        },
    )
    verdict = by_status(config, response, ("api_key",), ("base_url",))
    if not verdict[0]:
        if response.status_code == 403:
            return False, verdict[1], verdict[2] + " (the key needs the accounts:read scope)"
        return verdict
    accounts = body_of(response).get("data") or [{}]
    return True, f"API key valid (account {accounts[0].get('id', '?')})", ""


SPEC = DestinationSpec(
    type=KlaviyoDestination.type,
    purpose="email",
    vendor="Klaviyo",
    summary="Klaviyo profiles, events and deletion jobs",
    identify_by=IDENTIFY,
    config=KlaviyoConfig,
    roles=ESP,
    probe=probe,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> KlaviyoDestination:
    keys = KlaviyoConfig.of(config)
    return KlaviyoDestination(
        name=config.name,
        api_key=keys.api_key,
        purpose=config.purpose,
        segments=config.segments,
        base_url=config.base_url,
        revision=keys.revision or REVISION,
        identify_by=identify_by_of(config, IDENTIFY),
        transport=transport,
    )

"""Customer.io: profiles, events and erasure through the Track API, the sidebar through the
App API.

Delivery uses ``POST /api/v2/batch`` (basic auth ``site_id:api_key``; at most 500 kB a
request and 32 kB an entry; ``207`` lists the entries it refused by ``batch_index``):

- ``profile`` → ``{"type": "person", "identifiers": {"email": …}, "action": "identify",
  "timestamp": <unix>, "attributes": {…}}``. Times are unix seconds (Customer.io's
  convention); ``timestamp`` orders attribute updates that arrive close together.
- ``event`` → ``"action": "event"`` with ``name``, ``attributes`` and ``id``: a ULID derived
  from the item key, which Customer.io deduplicates on, so a redelivery is harmless.
- ``erase`` → ``"action": "delete"`` (or ``"suppress"`` with ``erase_action = "suppress"``,
  which also blocks the identifier from being re-added).
- ``unsubscribe`` (email consent withdrawn) → ``PUT /api/v1/customers/{id}`` with the
  reserved ``unsubscribed`` attribute set to true ("the person is unsubscribed from all
  non-transactional messages", https://docs.customer.io/messaging/people/reserved-attributes/)
  and ``_update: true``, which updates a known person and never creates one.

A person is addressed by the first identifier in ``identify_by`` the item has (default
``["email", "external_id"]``): an email as ``email``, any other kind (external id, Zendesk
user id, person id) as ``id``. Hosts follow ``region``
(``track[-eu].customer.io`` / ``api[-eu].customer.io``); ``base_url`` overrides both.
The sidebar (``read_profile``, ``set_optout``, ``change_email``, ``remove_from_list``) needs
the optional ``app_api_key`` (App API bearer key) for its reads: lists are subscription
topics (``GET /v1/subscription_topics``; removal sets the topic to false in
``cio_subscription_preferences``), engagement is the last open and click of the messages
sent to the person (``GET /v1/customers/{id}/messages``, ``metrics``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from tactful.config.models import DestinationSettings
from tactful.core.platform import PlatformReport
from tactful.destinations.base import (
    Capabilities,
    Item,
    Outcome,
    Purpose,
    Sent,
)
from tactful.destinations.identify import ESP_IDENTIFY_BY, identify_by_of, pick
from tactful.destinations.probe import Probed, Verdict, body_of, by_status, where
from tactful.destinations.profiles import (
    ESP_KINDS,
    MarketingProfile,
    OrderGuard,
    ProfileError,
    attributes,
    json_body,
    json_size,
    newest_tickets_within,
    no_identifier,
    outcome_of,
    parse_time,
    retry_after_of,
    transport_failure,
    ulid_for,
    unix,
)
from tactful.destinations.spec import ESP, DestinationConfig, DestinationSpec, Secret, Text
from tactful.http.auth import basic_auth_header

TRACK_HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
APP_HOSTS = {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"}
BATCH_BYTES = 500_000  # "/batch is limited to requests 500kb or smaller"
ENTRY_BYTES = 32_000  # "each of the requests within a batch must also be 32kb or smaller"
VALUE_BYTES = 1000  # "Attribute Value | 1000 bytes | Max length of attribute values"
MAX_BATCH = 500
_Entry = tuple[int, Item, dict[str, Any]]


class CustomerIODestination:
    type = "customerio"

    def __init__(
        self,
        *,
        name: str,
        site_id: str,
        api_key: str,
        region: str = "us",
        purpose: Purpose = "email",
        segments: Sequence[str] | None = None,
        base_url: str | None = None,
        app_api_key: str | None = None,
        erase_action: str = "delete",
        identify_by: Sequence[str] = ESP_IDENTIFY_BY.default,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        if region not in TRACK_HOSTS:
            raise ValueError(f"region must be 'us' or 'eu', got {region!r}")
        if erase_action not in ("delete", "suppress"):
            raise ValueError(f"erase_action must be 'delete' or 'suppress', got {erase_action!r}")
        self.name, self.purpose, self.segments = name, purpose, segments
        self.erase_action = erase_action
        self.identify_by = tuple(identify_by)
        self.capabilities = Capabilities(MAX_BATCH, ESP_KINDS, BATCH_BYTES)
        self.track_url = (base_url or TRACK_HOSTS[region]).rstrip("/")
        self.app_url = (base_url or APP_HOSTS[region]).rstrip("/")
        self._app_key = app_api_key
        self._track = httpx.Client(
            base_url=self.track_url,
            headers={"authorization": basic_auth_header(site_id, api_key)},
            transport=transport,
            timeout=timeout,
        )
        self._app = httpx.Client(base_url=self.app_url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._track.close()
        self._app.close()

    # -- delivery --------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> Sent:
        """The outcomes, and Customer.io's answer to the batch requests: entries received,
        entries refused (``207``) and the refusals' reasons (``reason`` and ``field``, never
        the ``message``, which may quote the value)."""
        outcomes: list[Outcome | None] = [None] * len(items)
        report: PlatformReport | None = None
        prepared: list[_Entry] = []
        unsubscribes: list[tuple[int, Item]] = []
        for index, item in enumerate(items):
            if item.kind == "unsubscribe":  # a Track API v1 call of its own
                unsubscribes.append((index, item))
                continue
            entry = self._entry(item)
            if isinstance(entry, Outcome):
                outcomes[index] = entry
            elif json_size(entry) > ENTRY_BYTES:
                outcomes[index] = Outcome("reject", "entry larger than Customer.io's 32 kB")
            else:
                prepared.append((index, item, entry))
        guard = OrderGuard()
        for index, item in unsubscribes:
            outcomes[index] = guard.blocked(item) or guard.record(item, self._unsubscribe(item))
        for chunk in _chunks(prepared):
            ready = []
            for index, item, entry in chunk:
                outcomes[index] = guard.blocked(item)
                if outcomes[index] is None:
                    ready.append((index, item, entry))
            posted, answer = self._post(ready)
            for (index, item, _), outcome in zip(ready, posted, strict=True):
                outcomes[index] = guard.record(item, outcome)
            if answer is not None:
                report = answer if report is None else report.merge(answer)
        done = [o if o is not None else Outcome("retry", "not sent") for o in outcomes]
        return Sent(done, report)

    def _entry(self, item: Item) -> dict[str, Any] | Outcome:
        who = pick(item, self.identify_by)
        if who is None:
            return no_identifier("Customer.io")
        identifiers = {"email" if who[0] == "email" else "id": who[1]}
        base: dict[str, Any] = {"type": "person", "identifiers": identifiers}
        if item.kind == "profile":
            attrs = {k: _fit(k, v) for k, v in attributes(item.properties, "unix").items()}
            return {**base, "action": "identify", "timestamp": unix(item.at), "attributes": attrs}
        if item.kind == "event":
            if not item.name:
                return Outcome("reject", "event without a name")
            return {
                **base,
                "action": "event",
                "id": ulid_for(item.key, item.at),
                "name": item.name,
                "timestamp": unix(item.at),
                "attributes": attributes(item.properties, "unix"),
            }
        if item.kind == "erase":
            return {**base, "action": self.erase_action}
        return Outcome("reject", f"Customer.io does not take {item.kind!r} items")

    def _unsubscribe(self, item: Item) -> Outcome:
        who = pick(item, self.identify_by)
        if who is None:
            return no_identifier("Customer.io")
        body = {"unsubscribed": True, "_update": True}
        try:
            response = self._track.put(f"/api/v1/customers/{_path(who[1])}", json=body)
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        return outcome_of(response, _error_text(response))

    def _post(self, chunk: list[_Entry]) -> tuple[list[Outcome], PlatformReport | None]:
        if not chunk:
            return [], None
        body = json.dumps({"batch": [e for _, _, e in chunk]}, separators=(",", ":"))
        try:
            response = self._track.post(
                "/api/v2/batch", content=body.encode(), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return [transport_failure(exc)] * len(chunk), None
        if response.status_code == 207:
            errors = [e for e in json_body(response).get("errors") or [] if isinstance(e, dict)]
            refused = {e.get("batch_index"): e for e in errors}
            reasons = tuple(
                dict.fromkeys(
                    ": ".join(str(e[k]) for k in ("reason", "field") if e.get(k)) or "refused"
                    for e in errors
                )
            )
            report = PlatformReport(len(chunk), len(refused), "207 Multi-Status", reasons)
            outcomes = [
                Outcome("reject", _describe(refused[i]), status=207)
                if i in refused
                else Outcome.ok()
                for i in range(len(chunk))
            ]
            return outcomes, report
        answer = PlatformReport(len(chunk), 0, "200 OK") if response.status_code == 200 else None
        return [outcome_of(response, _error_text(response))] * len(chunk), answer

    # -- sidebar (App API for reads, Track API v1 for writes) --------------------------------

    def read_profile(self, email: str) -> MarketingProfile | None:
        """Lists are the person's subscription topics (``topic_<id>``, what
        ``remove_from_list`` can change); segments are in ``raw["segments"]``; last open and
        click come from the messages Customer.io sent them."""
        customer = self._customer(email)
        if customer is None:
            return None
        attrs = customer.get("attributes") or {}
        segments = self._app_get(f"/v1/customers/{_path(email)}/segments").json()
        segs = [s for s in segments.get("segments") or [] if isinstance(s, dict)]
        topics = [t for t in self._app_get("/v1/subscription_topics").json().get("topics") or []]
        chosen = _topic_choices(attrs.get("cio_subscription_preferences"))
        subscribed = [
            t
            for t in topics
            if isinstance(t, dict)
            and chosen.get(str(t.get("identifier")), t.get("subscribed_by_default"))
        ]
        messages = self._app_get(f"/v1/customers/{_path(email)}/messages").json()
        unsubscribed = customer.get("unsubscribed", attrs.get("unsubscribed"))
        return MarketingProfile(
            email=str(attrs.get("email") or email),
            lists=[str(t.get("identifier")) for t in subscribed],
            opted_out=None if unsubscribed is None else str(unsubscribed).lower() in ("true", "1"),
            signup_at=parse_time(attrs.get("created_at")),
            last_open_at=_last(messages, "opened"),
            last_click_at=_last(messages, "clicked"),
            raw={
                **customer,
                "list_names": {str(t.get("identifier")): t.get("name") for t in subscribed},
                "segments": {str(s.get("id")): s.get("name") for s in segs},
            },
        )

    def set_optout(self, email: str, opted_out: bool) -> None:
        """The global ``unsubscribed`` attribute; ``_update`` never creates a person."""
        self._identify(_path(email), {"unsubscribed": opted_out, "_update": True})

    def change_email(self, old_email: str, new_email: str) -> None:
        """Identifiers change only when the person is addressed by ``cio_id``."""
        customer = self._customer(old_email)
        if customer is None:
            raise ProfileError("no Customer.io person with that email", 404)
        ids = customer.get("identifiers") or {}
        cio_id = ids.get("cio_id") or (customer.get("attributes") or {}).get("cio_id")
        if not cio_id:
            raise ProfileError("Customer.io did not return the person's cio_id")
        self._identify(_path(f"cio_{cio_id}"), {"email": new_email})

    def remove_from_list(self, email: str, list_id: str) -> None:
        """Unsubscribe from one subscription topic (``topic_<id>``): a partial update of the
        ``cio_subscription_preferences`` attribute in JSON dot notation. Segments cannot be
        left by API (manual ones need people's ids; data-driven ones follow their rules)."""
        if not re.fullmatch(r"topic_\d+", list_id):
            raise ProfileError(
                f"{list_id!r} is not a Customer.io subscription topic (topic_<id>); segments "
                "cannot be edited by email through the API"
            )
        key = f"cio_subscription_preferences.topics.{list_id}"
        self._identify(_path(email), {key: False, "_update": True})

    def _customer(self, email: str) -> dict[str, Any] | None:
        response = self._app_get(f"/v1/customers/{_path(email)}/attributes", missing_ok=True)
        if response.status_code == 404:
            return None
        customer = json_body(response).get("customer")
        return customer if isinstance(customer, dict) else None

    def _app_get(self, path: str, *, missing_ok: bool = False) -> httpx.Response:
        if not self._app_key:
            raise ProfileError("app_api_key is not configured for this Customer.io destination")
        headers = {"Authorization": f"Bearer {self._app_key}"}
        response = _call(self._app, "GET", path, params={"id_type": "email"}, headers=headers)
        if not (missing_ok and response.status_code == 404):
            _check(response)
        return response

    def _identify(self, path: str, body: dict[str, Any]) -> None:
        _check(_call(self._track, "PUT", f"/api/v1/customers/{path}", json=body))


def _topic_choices(value: Any) -> dict[str, bool]:
    """``{"topic_4": False, …}`` from the ``cio_subscription_preferences`` attribute (an object,
    or its JSON text as the App API may return it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    topics = value.get("topics") if isinstance(value, dict) else None
    return {str(k): bool(v) for k, v in topics.items()} if isinstance(topics, dict) else {}


def _last(messages: Any, metric: str) -> datetime | None:
    """The latest time a message sent to the person saw ``metric`` (opened, clicked)."""
    rows = messages.get("messages") if isinstance(messages, dict) else None
    times = [
        parse_time((m.get("metrics") or {}).get(metric)) for m in rows or [] if isinstance(m, dict)
    ]
    return max((t for t in times if t is not None), default=None)


def _chunks(entries: list[_Entry]) -> Iterator[list[_Entry]]:
    """Requests within 500 kB; an erase never shares a request with other items of the same
    person, whose order the batch does not guarantee."""
    chunk: list[_Entry] = []
    size, people, erased = len('{"batch":[]}'), set[str](), set[str]()
    for entry in entries:
        person, n = entry[1].person_id, json_size(entry[2]) + 1
        conflict = person in people and (entry[1].kind == "erase" or person in erased)
        if chunk and (size + n > BATCH_BYTES or conflict):
            yield chunk
            chunk, size, people, erased = [], len('{"batch":[]}'), set(), set()
        chunk.append(entry)
        size += n
        people.add(person)
        if entry[1].kind == "erase":
            erased.add(person)
    if chunk:
        yield chunk


def _fit(key: str, value: Any) -> Any:
    """Attribute values within 1000 bytes: newest tickets first, long text cut."""
    if json_size(value) <= VALUE_BYTES:
        return value
    if key == "zendesk_tickets":
        return newest_tickets_within(value, VALUE_BYTES)
    if isinstance(value, str):
        return value.encode()[:VALUE_BYTES].decode(errors="ignore")
    if isinstance(value, list):
        kept: list[Any] = []
        for element in value:
            if json_size([*kept, element]) > VALUE_BYTES:
                break
            kept.append(element)
        return kept
    return value


def _path(identifier: str) -> str:
    return quote(identifier, safe="")


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ProfileError(f"Customer.io unreachable: {type(exc).__name__}: {exc}") from exc


def _check(response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise ProfileError(
            f"Customer.io: {_error_text(response)}", response.status_code, retry_after_of(response)
        )


def _describe(error: dict[str, Any]) -> str:
    parts = [str(error.get(k)) for k in ("reason", "field", "message") if error.get(k)]
    return "Customer.io refused the entry: " + (": ".join(parts) or "no reason given")


def _error_text(response: httpx.Response) -> str:
    data = json_body(response)
    errors = data.get("errors") or (data.get("meta") or {}).get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(_describe(e) if isinstance(e, dict) else str(e) for e in errors)
    single = (data.get("meta") or {}).get("error")
    return f"HTTP {response.status_code}: {single or response.text[:300] or response.reason_phrase}"


class CustomerIOConfig(DestinationConfig):
    site_id: Text = Field(description="Track API site id")
    api_key: Secret = Field(description="Track API key")
    region: Literal["us", "eu"] = Field(
        default="us", description="the account's data center: `us` or `eu`"
    )
    app_api_key: Secret | None = Field(
        default=None, description="App API key: the sidebar's profile reads"
    )
    erase_action: Literal["delete", "suppress"] = Field(
        default="delete",
        description="what erasure does: `delete`, or `suppress` (also blocks re-adding)",
    )


def probe(config: Probed, client: httpx.Client) -> Verdict:
    """Customer.io: ``GET /api/v1/accounts/region`` on the Track API with the
    ``site_id:api_key`` basic auth ("returns the region and URL for your Track API
    credentials"; ``401`` for wrong ones).
    https://docs.customer.io/integrations/api/track/tag/trackregion/getRegion/"""
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
    verdict = by_status(config, response, ("site_id", "api_key"), ("region", "base_url"))
    if not verdict[0]:
        return verdict
    found = str(body_of(response).get("region", "?"))
    if found.lower() != region and not config.base_url:
        return False, f"the workspace is in region {found!r}", where(config, "region")
    return True, f"Track API credentials valid (region {found})", ""


SPEC = DestinationSpec(
    type=CustomerIODestination.type,
    purpose="email",
    vendor="Customer.io",
    summary="Customer.io profiles, events and erasure (Track API); profile reads (App API)",
    identify_by=ESP_IDENTIFY_BY,
    config=CustomerIOConfig,
    roles=ESP,
    probe=probe,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> CustomerIODestination:
    keys = CustomerIOConfig.of(config)
    return CustomerIODestination(
        name=config.name,
        site_id=keys.site_id,
        api_key=keys.api_key,
        region=keys.region,
        purpose=config.purpose,
        segments=config.segments,
        base_url=config.base_url,
        app_api_key=keys.app_api_key,
        erase_action=keys.erase_action,
        identify_by=identify_by_of(config, ESP_IDENTIFY_BY),
        transport=transport,
    )

"""Amplitude destination: events through the HTTP V2 API.

Per Amplitude's HTTP V2 API documentation: ``POST https://api2.amplitude.com/2/httpapi``
(EU residency: ``base_url = "https://api.eu.amplitude.com"``), JSON ``{"api_key", "events",
"options"}``; up to 2,000 events and 1 MB a request (413 beyond). Each ``event`` item
becomes::

    {"user_id": <identify_by>, "event_type": item.name, "time": <ms>,
     "event_properties": item.properties, "insert_id": <from item.key>}

``insert_id`` (Amplitude deduplicates on it for 7 days) is a UUID derived from ``item.key``.
``user_id`` must be at least 5 characters unless ``options.min_id_length`` says otherwise:
shorter ids set ``min_id_length`` for the request.

Responses: 200 ok. A 400 ingests nothing; when it names events (``events_with_invalid_fields``
/ ``events_with_missing_fields`` / ``events_with_invalid_id_lengths`` map fields to the index
of the first bad event; ``silenced_events`` lists indexes), those items are rejected and the
rest are resent at once, as Amplitude's batching guide says, until a request succeeds or
fails as a whole. A 400 naming no event (invalid API key, missing field) rejects them all.
429 (throttled users or devices) is a retry after ``Retry-After``, else the 30 s Amplitude
asks for; 5xx retry; other 4xx reject. Settings: ``api_key``; optional
``identify_by`` (``tactful.destinations.identify``): the user id is the first of these the
item has, default ``["external_id", "person_id"]`` (the brand's own customer id, so events
join its existing profiles; Tactful's ``p_…`` id only as the fallback). An event about no
one (the ``person_erased`` notice) has a ``device_id`` instead, its own ``insert_id``
(user_id or device_id is required: https://amplitude.com/docs/apis/analytics/http-v2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx
import orjson
from pydantic import Field

from tactful.config.models import DestinationSettings
from tactful.destinations.base import (
    Item,
    Outcome,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.http import (
    EventHttpDestination,
    Part,
    dedupe_id,
    dumps,
    epoch_ms,
    error_text,
    pack,
    post,
    send_chunks,
    unsupported,
    user_id_for,
)
from tactful.destinations.identify import ANALYTICS_IDENTIFY_BY, about_no_one, identify_by_of
from tactful.destinations.spec import EVENT_SINK, DestinationConfig, DestinationSpec, Secret

API = "https://api2.amplitude.com"
PATH = "/2/httpapi"
MAX_EVENTS = 2000
MAX_REQUEST_BYTES = 1_000_000
DEFAULT_MIN_ID_LENGTH = 5
THROTTLE_PAUSE = 30.0  # "pause sending events for that user or device for … 30 seconds"
MAX_ROUNDS = 20  # resends of one chunk after per-event 400s
_INDEX_MAPS = (
    "events_with_invalid_fields",
    "events_with_missing_fields",
    "events_with_invalid_id_lengths",
)


def insert_id(key: str) -> str:
    return dedupe_id(key)


def event(item: Item, identify_by: Sequence[str] = ("person_id",)) -> dict[str, Any]:
    # Amplitude needs a user_id or a device_id: an event about no one gets its own insert id
    # as device_id (unrelated to any person, and to any other event).
    who = (
        {"device_id": insert_id(item.key)}
        if about_no_one(item)
        else {"user_id": user_id_for(item, identify_by)}
    )
    return {
        **who,
        "event_type": item.name,
        "time": epoch_ms(item.at),
        "event_properties": dict(item.properties),
        "insert_id": insert_id(item.key),
    }


def bad_events(body: Any) -> dict[int, str]:
    """Index → reason for the events a 400 body names."""
    out: dict[int, str] = {}
    if not isinstance(body, dict):
        return out
    error = str(body.get("error") or "invalid event")
    for name in _INDEX_MAPS:
        fields = body.get(name)
        if isinstance(fields, dict):
            for field, indexes in fields.items():
                for i in indexes if isinstance(indexes, list) else []:
                    if isinstance(i, int):
                        out.setdefault(i, f"{error} ({name}: {field})")
    silenced = body.get("silenced_events")
    for i in silenced if isinstance(silenced, list) else []:
        if isinstance(i, int):
            out.setdefault(i, f"{error} (silenced)")
    return out


class AmplitudeDestination(EventHttpDestination):
    type = "amplitude"

    def __init__(
        self,
        *,
        name: str,
        api_key: str,
        base_url: str | None = None,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        identify_by: Sequence[str] = ANALYTICS_IDENTIFY_BY.default,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            url=(base_url or API).rstrip("/") + PATH,
            max_batch=MAX_EVENTS,
            max_bytes=MAX_REQUEST_BYTES,
            purpose=purpose,
            segments=segments,
            identify_by=identify_by,
            transport=transport,
        )
        self._api_key = api_key

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [unsupported(item, "Amplitude") for item in items]
        events = {
            i: event(item, self._identify_by) for i, item in enumerate(items) if outcomes[i] is None
        }
        for i, e in events.items():
            if not (e.get("user_id") or e.get("device_id")):
                outcomes[i] = Outcome("skip", "no user id")
        parts = [(i, dumps(e)) for i, e in events.items() if outcomes[i] is None]
        user_ids = (events[i].get("user_id") for i, _ in parts)
        shortest = min((len(u) for u in user_ids if u), default=0)
        prefix = b'{"api_key":' + dumps(self._api_key)
        if shortest and shortest < DEFAULT_MIN_ID_LENGTH:
            prefix += b',"options":{"min_id_length":' + str(shortest).encode() + b"}"
        prefix += b',"events":['
        chunks = pack(parts, MAX_EVENTS, MAX_REQUEST_BYTES, len(prefix) + 2)
        return send_chunks(chunks, lambda chunk: self._send_chunk(prefix, chunk), outcomes)

    def _send_chunk(self, prefix: bytes, chunk: list[Part]) -> dict[int, Outcome]:
        result: dict[int, Outcome] = {}
        remaining = chunk
        for _ in range(MAX_ROUNDS):
            body = prefix + b",".join(p for _, p in remaining) + b"]}"
            response = post(self._client, self.url, body, self._headers)
            if isinstance(response, Outcome):
                return result | {i: response for i, _ in remaining}
            named = bad_events(_json(response)) if response.status_code == 400 else {}
            bad = {n: why for n, why in named.items() if 0 <= n < len(remaining)}
            if not bad:
                return result | {i: self._classify(response) for i, _ in remaining}
            for position, reason in bad.items():
                result[remaining[position][0]] = Outcome("reject", reason, None, 400)
            remaining = [part for n, part in enumerate(remaining) if n not in bad]
            if not remaining:
                return result
        again = Outcome("retry", f"events still rejected after {MAX_ROUNDS} resends")
        return result | {i: again for i, _ in remaining}

    def _classify(self, response: httpx.Response) -> Outcome:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if response.status_code == 429 and retry_after is None:
            retry_after = THROTTLE_PAUSE
        return classify_status(response.status_code, retry_after, error_text(response))


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


class AmplitudeConfig(DestinationConfig):
    api_key: Secret = Field(description="the project's API key")
    user_id: Literal["external_id", "person_id"] | None = Field(
        default=None, description="older form of `identify_by`"
    )


SPEC = DestinationSpec(
    type=AmplitudeDestination.type,
    purpose="analytics",
    vendor="Amplitude",
    summary="Amplitude events (HTTP V2 API)",
    identify_by=ANALYTICS_IDENTIFY_BY,
    config=AmplitudeConfig,
    roles=EVENT_SINK,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> AmplitudeDestination:
    keys = AmplitudeConfig.of(config)
    return AmplitudeDestination(
        name=config.name,
        api_key=keys.api_key,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        identify_by=identify_by_of(config, ANALYTICS_IDENTIFY_BY),
        transport=transport,
    )

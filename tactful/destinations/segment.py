"""Segment destination: ``track`` calls through the HTTP Tracking API's ``/v1/batch``.

Per Segment's HTTP API documentation: ``POST https://api.segment.io/v1/batch`` (EU
workspaces: set ``base_url`` to their regional endpoint), HTTP Basic with the source write
key as user name and an empty password, ``Content-Type: application/json``; a batch is at
most 500 KB, each message at most 32 KB and at most 2,500 messages. Each ``event`` item
becomes::

    {"type": "track", "event": item.name, "userId": <identify_by>,
     "properties": item.properties, "timestamp": item.at, "messageId": <from item.key>}

``messageId`` (Segment's dedupe key, < 100 characters) is a UUID derived from ``item.key``,
so a retried item is deduplicated. Segment answers 200 for everything but oversized
requests and invalid JSON (400, the whole request rejected) and rate limiting (429 with
``Retry-After``); it reports no per-message errors. A message over 32 KB is rejected here
without a request. Settings: ``write_key``; optional
``identify_by`` (``tactful.destinations.identify``): the ``userId`` is the first of these the
item has, default ``["external_id", "person_id"]`` (the brand's own customer id, so events
join its existing profiles; Tactful's ``p_…`` id only as the fallback). An event about no
one (the ``person_erased`` notice) has an ``anonymousId`` instead: its own ``messageId``
("a User ID or an Anonymous ID is required":
https://www.twilio.com/docs/segment/connections/sources/catalog/libraries/server/http-api).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import httpx
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
    error_text,
    pack,
    post,
    rfc3339,
    send_chunks,
    unsupported,
    user_id_for,
)
from tactful.destinations.identify import ANALYTICS_IDENTIFY_BY, about_no_one, identify_by_of
from tactful.destinations.spec import EVENT_SINK, DestinationConfig, DestinationSpec, Secret
from tactful.http.auth import basic_auth_header

API = "https://api.segment.io"
PATH = "/v1/batch"
MAX_MESSAGES = 2500
MAX_REQUEST_BYTES = 500_000  # "500KB" (read as 1000-byte KB: the smaller reading)
MAX_MESSAGE_BYTES = 32 * 1000
_PREFIX, _SUFFIX = b'{"batch":[', b"]}"


def message_id(key: str) -> str:
    return dedupe_id(key)


def message(item: Item, identify_by: Sequence[str] = ("person_id",)) -> dict[str, Any]:
    # Segment needs a userId or an anonymousId: an event about no one gets its own message
    # id as anonymousId (unrelated to any person, and to any other event).
    who = (
        {"anonymousId": message_id(item.key)}
        if about_no_one(item)
        else {"userId": user_id_for(item, identify_by)}
    )
    return {
        "type": "track",
        "event": item.name,
        **who,
        "properties": dict(item.properties),
        "timestamp": rfc3339(item.at),
        "messageId": message_id(item.key),
    }


class SegmentDestination(EventHttpDestination):
    type = "segment"

    def __init__(
        self,
        *,
        name: str,
        write_key: str,
        base_url: str | None = None,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        identify_by: Sequence[str] = ANALYTICS_IDENTIFY_BY.default,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            name=name,
            url=(base_url or API).rstrip("/") + PATH,
            max_batch=MAX_MESSAGES,
            max_bytes=MAX_REQUEST_BYTES,
            purpose=purpose,
            segments=segments,
            identify_by=identify_by,
            headers={"authorization": basic_auth_header(write_key, "")},
            transport=transport,
        )

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        parts: list[tuple[int, bytes]] = []
        for i, item in enumerate(items):
            outcomes[i] = unsupported(item, "Segment")
            if outcomes[i] is not None:
                continue
            record = message(item, self._identify_by)
            if not (record.get("userId") or record.get("anonymousId")):
                outcomes[i] = Outcome("reject", "no identifier in identify_by for userId")
                continue
            encoded = dumps(record)
            if len(encoded) > MAX_MESSAGE_BYTES:
                outcomes[i] = Outcome(
                    "reject", f"message is {len(encoded)} bytes: Segment takes at most 32 KB"
                )
            else:
                parts.append((i, encoded))
        overhead = len(_PREFIX) + len(_SUFFIX)
        chunks = pack(parts, MAX_MESSAGES, MAX_REQUEST_BYTES, overhead)
        return send_chunks(chunks, self._send_chunk, outcomes)

    def _send_chunk(self, chunk: list[Part]) -> dict[int, Outcome]:
        outcome = self._post(_PREFIX + b",".join(p for _, p in chunk) + _SUFFIX)
        return {i: outcome for i, _ in chunk}

    def _post(self, body: bytes) -> Outcome:
        response = post(self._client, self.url, body, self._headers)
        if isinstance(response, Outcome):
            return response
        return classify_status(
            response.status_code,
            parse_retry_after(response.headers.get("retry-after")),
            error_text(response),
        )


class SegmentConfig(DestinationConfig):
    write_key: Secret = Field(description="the source's write key")
    user_id: Literal["external_id", "person_id"] | None = Field(
        default=None, description="older form of `identify_by`"
    )


SPEC = DestinationSpec(
    type=SegmentDestination.type,
    purpose="analytics",
    vendor="Segment",
    summary="Segment track calls (HTTP Tracking API)",
    identify_by=ANALYTICS_IDENTIFY_BY,
    config=SegmentConfig,
    roles=EVENT_SINK,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> SegmentDestination:
    keys = SegmentConfig.of(config)
    return SegmentDestination(
        name=config.name,
        write_key=keys.write_key,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        identify_by=identify_by_of(config, ANALYTICS_IDENTIFY_BY),
        transport=transport,
    )

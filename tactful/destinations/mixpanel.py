"""Mixpanel destination: events through the Import API.

Per Mixpanel's Import Events documentation: ``POST https://api.mixpanel.com/import?strict=1
&project_id=…`` (EU/India residency: ``base_url = "https://api-eu.mixpanel.com"`` or
``https://api-in.mixpanel.com``), HTTP Basic with a service account (``service_account_user``
/ ``service_account_secret``), a JSON array of at most 2,000 events and (conservatively)
2 MB uncompressed. Each ``event`` item becomes::

    {"event": item.name, "properties": {**item.properties, "time": <ms>,
     "distinct_id": <person_id or external id>, "$insert_id": <from item.key>}}

``$insert_id`` (36 alphanumerics or ``-``; Mixpanel deduplicates on event, distinct_id,
time and ``$insert_id``) is a UUID derived from ``item.key``. An event over 1 MB is rejected
here without a request.

Responses: 200 ok. With ``strict=1`` a 400 is a partial success: Mixpanel ingested the
valid events and lists the others in ``failed_records`` (``index``, ``insert_id``,
``field``, ``message``): those are rejected and the rest are ok. A 400 without
``failed_records`` (or 401/403/413) rejects the whole request; 429 and 5xx retry (with
``Retry-After``). Settings: ``project_id``, ``service_account_user``,
``service_account_secret``; optional
``identify_by`` (``tactful.destinations.identify``): the ``distinct_id`` is the first of these the
item has, default ``["external_id", "person_id"]`` (the brand's own customer id, so events
join its existing profiles; Tactful's ``p_…`` id only as the fallback). An event about no
one (the ``person_erased`` notice) has the empty ``distinct_id`` Mixpanel documents for
events without a user:
https://docs.mixpanel.com/troubleshooting/errors/server-side-events-without-a-user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlencode

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
from tactful.destinations.spec import EVENT_SINK, DestinationConfig, DestinationSpec, Secret, Text
from tactful.http.auth import basic_auth_header

API = "https://api.mixpanel.com"
PATH = "/import"
MAX_EVENTS = 2000
MAX_REQUEST_BYTES = 2_000_000
MAX_EVENT_BYTES = 1_000_000


def insert_id(key: str) -> str:
    return dedupe_id(key)


def event(item: Item, identify_by: Sequence[str] = ("person_id",)) -> dict[str, Any]:
    properties = dict(item.properties)
    properties.update(
        {
            "time": epoch_ms(item.at),
            # "" for an event about no one, as Mixpanel documents for events that belong to
            # no user (never omitted: Mixpanel would invent one from the sender's address)
            "distinct_id": "" if about_no_one(item) else user_id_for(item, identify_by),
            "$insert_id": insert_id(item.key),
        }
    )
    return {"event": item.name, "properties": properties}


def failed_records(response: httpx.Response) -> dict[int, str]:
    """Index → message for the events a strict 400 lists."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    records = body.get("failed_records") if isinstance(body, dict) else None
    out: dict[int, str] = {}
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and isinstance(record.get("index"), int):
            field = record.get("field") or "event"
            out[record["index"]] = f"{field}: {record.get('message') or 'failed validation'}"
    return out


class MixpanelDestination(EventHttpDestination):
    type = "mixpanel"

    def __init__(
        self,
        *,
        name: str,
        project_id: str,
        service_account_user: str,
        service_account_secret: str,
        base_url: str | None = None,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        identify_by: Sequence[str] = ANALYTICS_IDENTIFY_BY.default,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        query = urlencode({"strict": "1", "project_id": project_id})
        super().__init__(
            name=name,
            url=f"{(base_url or API).rstrip('/')}{PATH}?{query}",
            max_batch=MAX_EVENTS,
            max_bytes=MAX_REQUEST_BYTES,
            purpose=purpose,
            segments=segments,
            identify_by=identify_by,
            headers={
                "authorization": basic_auth_header(service_account_user, service_account_secret)
            },
            transport=transport,
        )

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [unsupported(item, "Mixpanel") for item in items]
        parts: list[tuple[int, bytes]] = []
        for i, item in enumerate(items):
            if outcomes[i] is not None:
                continue
            record = event(item, self._identify_by)
            if not record["properties"]["distinct_id"] and not about_no_one(item):
                outcomes[i] = Outcome("reject", "no identifier in identify_by for distinct_id")
                continue
            encoded = dumps(record)
            if len(encoded) > MAX_EVENT_BYTES:
                outcomes[i] = Outcome(
                    "reject", f"event is {len(encoded)} bytes: Mixpanel takes at most 1 MB"
                )
            else:
                parts.append((i, encoded))
        chunks = pack(parts, MAX_EVENTS, MAX_REQUEST_BYTES, 2)
        return send_chunks(chunks, self._send_chunk, outcomes)

    def _send_chunk(self, chunk: list[Part]) -> dict[int, Outcome]:
        body = b"[" + b",".join(p for _, p in chunk) + b"]"
        response = post(self._client, self.url, body, self._headers)
        if isinstance(response, Outcome):
            return {i: response for i, _ in chunk}
        failed = failed_records(response) if response.status_code == 400 else {}
        if failed:
            return {
                i: Outcome("reject", failed[n], None, 400) if n in failed else Outcome.ok()
                for n, (i, _) in enumerate(chunk)
            }
        outcome = classify_status(
            response.status_code,
            parse_retry_after(response.headers.get("retry-after")),
            error_text(response),
        )
        return {i: outcome for i, _ in chunk}


class MixpanelConfig(DestinationConfig):
    project_id: Text = Field(description="the project id")
    service_account_user: Text = Field(description="service account username")
    service_account_secret: Secret = Field(description="service account secret")
    user_id: Literal["external_id", "person_id"] | None = Field(
        default=None, description="older form of `identify_by`"
    )


SPEC = DestinationSpec(
    type=MixpanelDestination.type,
    purpose="analytics",
    vendor="Mixpanel",
    summary="Mixpanel events (`/import`, service account)",
    identify_by=ANALYTICS_IDENTIFY_BY,
    config=MixpanelConfig,
    roles=EVENT_SINK,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> MixpanelDestination:
    keys = MixpanelConfig.of(config)
    return MixpanelDestination(
        name=config.name,
        project_id=keys.project_id,
        service_account_user=keys.service_account_user,
        service_account_secret=keys.service_account_secret,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        identify_by=identify_by_of(config, ANALYTICS_IDENTIFY_BY),
        transport=transport,
    )

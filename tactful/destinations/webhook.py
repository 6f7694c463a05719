"""Webhook destination: one signed POST per event, per the Standard Webhooks specification.

Consumes ``event`` items (``support_state_changed``, ``segment_membership_changed``). Each
item is one request (the spec has no batch envelope), posted in order; after a transient
failure the rest of the batch is held (``retry``, no request) so that no later item of the
same person overtakes it. The body is the spec's recommended envelope, minified::

    {"type": "support_state_changed", "timestamp": "<item.at, RFC 3339>",
     "data": {"person_id": ..., "identifiers": {...}, "old_state": ..., "new_state": ...,
              "changed": [...], "occurred_at": ...}}

``data`` is ``person_id``, the consented ``identifiers`` (only the non-empty kinds, named as
the HTTP API names them: ``{"email": [...], "phone": [...]}``) and the
item's properties; ``occurred_at`` defaults to ``item.at`` and ``segment`` to
``item.segment``. The body depends only on the item, so retries repeat it byte for byte;
``webhook-id`` is ``msg_`` + a hash of ``item.key`` (same across retries, no ``.``) and
``webhook-timestamp`` is the attempt's time.

Status handling follows the spec's etiquette: 2xx ok; redirects are not followed (the
shared policy rejects them: update the URL); ``410 Gone`` means the receiver wants no more
webhooks, so the item is rejected with "endpoint gone: disabled" and the destination
disables itself (later items are rejected without a request, until it is re-created);
everything else goes through ``classify_status`` with ``Retry-After``.

The small helpers the HTTP analytics destinations (``segment``, ``amplitude``,
``mixpanel``) share with it (JSON encoding, dedupe ids, request packing, POST) live in
``tactful.destinations.http``; they are re-exported here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import Field, field_validator

from tactful.config.models import DestinationSettings, check_http_url
from tactful.destinations import standard_webhooks
from tactful.destinations.base import (
    Capabilities,
    Identifiers,
    Item,
    Outcome,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.http import Part as Part
from tactful.destinations.http import dedupe_id as dedupe_id
from tactful.destinations.http import dumps as dumps
from tactful.destinations.http import epoch_ms as epoch_ms
from tactful.destinations.http import error_text as error_text
from tactful.destinations.http import pack as pack
from tactful.destinations.http import post as post
from tactful.destinations.http import rfc3339 as rfc3339
from tactful.destinations.http import send_chunks as send_chunks
from tactful.destinations.http import unsupported as unsupported
from tactful.destinations.spec import EVENT_SINK, DestinationConfig, DestinationSpec, Secret, Text

# The spec recommends a 15–30 s request timeout for webhooks.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
GONE_ERROR = "endpoint gone: disabled"
MAX_BATCH = 100  # items per send(); each is its own request
PARALLEL = 8  # requests in flight at once, each about another person (one per person)


def webhook_id(key: str) -> str:
    """Stable message id of an item: the receiver's idempotency key across retries."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def identifiers_data(identifiers: Identifiers) -> dict[str, list[str]]:
    """The consented identifiers under the API's names (``GET /api/persons/…`` and the
    ``person`` of ``POST /api/events``): ``email``, ``phone``, ``external_id``,
    ``zendesk_user_id``, each a list."""
    fields = {
        "email": identifiers.emails,
        "phone": identifiers.phones,
        "external_id": identifiers.external_ids,
        "zendesk_user_id": identifiers.zendesk_user_ids,
    }
    return {name: list(values) for name, values in fields.items() if values}


def payload(item: Item) -> dict[str, Any]:
    """The spec's envelope for one event item."""
    data: dict[str, Any] = {
        "person_id": item.person_id,
        "identifiers": identifiers_data(item.identifiers),  # only these (consented) ones
    }
    data.update((k, v) for k, v in item.properties.items() if k not in data)
    data.setdefault("occurred_at", rfc3339(item.at))
    if item.segment is not None:
        data.setdefault("segment", item.segment)
    return {"type": item.name, "timestamp": rfc3339(item.at), "data": data}


class WebhookDestination:
    type = "webhook"

    def __init__(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        standard_webhooks.check_sending_secret(secret)
        self.name = name
        self.url = url
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(
            max_batch=MAX_BATCH, kinds=frozenset({"event"}), parallel=PARALLEL
        )
        self.disabled = False
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False)

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        """In order; after a transient failure (one endpoint: it is down or throttling) the
        rest of the batch is held as ``retry`` without requests, so nothing overtakes it."""
        outcomes: list[Outcome] = []
        held: Outcome | None = None
        for item in items:
            if held is not None:
                outcomes.append(Outcome("retry", f"held: {held.error}", held.retry_after))
                continue
            outcome = self._send_one(item)
            if outcome.kind == "retry":
                held = outcome
            outcomes.append(outcome)
        return outcomes

    def _send_one(self, item: Item) -> Outcome:
        if self.disabled:
            return Outcome("reject", GONE_ERROR, None, 410)
        refused = unsupported(item, "a webhook")
        if refused is not None:
            return refused
        body = dumps(payload(item))
        headers = standard_webhooks.headers(
            self._secret, webhook_id(item.key), int(self._clock()), body
        )
        headers["content-type"] = "application/json"
        response = post(self._client, self.url, body, headers)
        if isinstance(response, Outcome):
            return response
        if response.status_code == 410:
            self.disabled = True
            return Outcome("reject", GONE_ERROR, None, 410)
        if 300 <= response.status_code < 400:
            return Outcome(
                "reject",
                f"HTTP {response.status_code}: redirects are not followed",
                None,
                response.status_code,
            )
        return classify_status(
            response.status_code,
            parse_retry_after(response.headers.get("retry-after")),
            error_text(response),
        )

    def close(self) -> None:
        self._client.close()


class WebhookConfig(DestinationConfig):
    url: Text = Field(description="the endpoint (http:// or https://)")
    secret: Secret = Field(description="the Standard Webhooks signing secret (`whsec_…`)")

    _url = field_validator("url")(check_http_url)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not value.startswith("whsec_"):
            raise ValueError("must start with 'whsec_' (a Standard Webhooks secret)")
        if not value.removeprefix("whsec_"):
            raise ValueError("is empty after 'whsec_'")
        try:
            key = standard_webhooks.decode_secret(value)
        except ValueError:
            raise ValueError("must be 'whsec_' followed by base64") from None
        low, high = standard_webhooks.MIN_SECRET_BYTES, standard_webhooks.MAX_SECRET_BYTES
        if not low <= len(key) <= high:
            got = len(key)
            raise ValueError(f"must decode to {low}–{high} bytes (the spec's length), got {got}")
        return value


SPEC = DestinationSpec(
    type=WebhookDestination.type,
    purpose="analytics",
    vendor="Webhook",
    summary="signed JSON events to an HTTP endpoint (Standard Webhooks)",
    config=WebhookConfig,
    roles=EVENT_SINK,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> WebhookDestination:
    keys = WebhookConfig.of(config)
    return WebhookDestination(
        name=config.name,
        url=keys.url,
        secret=keys.secret,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )

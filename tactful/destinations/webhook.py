"""Webhook destination: one signed POST per event, per the Standard Webhooks specification.

Consumes ``event`` items (``support_state_changed``, ``segment_membership_changed``). Each
item is one request (the spec has no batch envelope), posted in order; after a transient
failure the rest of the batch is held (``retry``, no request) so that no later item of the
same person overtakes it. The body is the spec's recommended envelope, minified::

    {"type": "support_state_changed", "timestamp": "<item.at, RFC 3339>",
     "data": {"person_id": ..., "identifiers": {...}, "old_state": ..., "new_state": ...,
              "changed": [...], "occurred_at": ...}}

``data`` is ``person_id``, the consented ``identifiers`` (only the non-empty kinds) and the
item's properties; ``occurred_at`` defaults to ``item.at`` and ``segment`` to
``item.segment``. The body depends only on the item, so retries repeat it byte for byte;
``webhook-id`` is ``msg_`` + a hash of ``item.key`` (same across retries, no ``.``) and
``webhook-timestamp`` is the attempt's time.

Status handling follows the spec's etiquette: 2xx ok; redirects are not followed (the
shared policy rejects them: update the URL); ``410 Gone`` means the receiver wants no more
webhooks, so the item is rejected with "endpoint gone: disabled" and the destination
disables itself (later items are rejected without a request, until it is re-created);
everything else goes through ``classify_status`` with ``Retry-After``.

The module also holds the small helpers the HTTP analytics destinations (``segment``,
``amplitude``, ``mixpanel``) share: JSON encoding, dedupe ids, request packing, POST.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tactful.config_models import DestinationSettings
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

# The spec recommends a 15–30 s request timeout for webhooks.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
GONE_ERROR = "endpoint gone: disabled"
MAX_BATCH = 100  # items per send(); each is its own request
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Part = tuple[int, bytes]  # (item index, encoded JSON)


def webhook_id(key: str) -> str:
    """Stable message id of an item: the receiver's idempotency key across retries."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


# Shared by the HTTP analytics destinations (segment, amplitude, mixpanel) ---------------


def rfc3339(at: datetime) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Minified JSON; datetimes as RFC 3339 (naive ones taken as UTC)."""
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    )


_DEDUPE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://tactful.dev/destinations/dedupe")


def dedupe_id(key: str) -> str:
    """A vendor dedupe id from ``item.key``: a UUID (36 characters of ``[0-9a-f-]``), which
    fits Segment's ``messageId`` (< 100), Amplitude's ``insert_id`` and Mixpanel's
    ``$insert_id`` (≤ 36 alphanumerics or ``-``)."""
    return str(uuid.uuid5(_DEDUPE_NAMESPACE, key))


def epoch_ms(at: datetime) -> int:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def user_id_for(item: Item, source: str) -> str:
    """``person_id`` (default), or with ``source == "external_id"`` the first consented
    external id (falling back to ``person_id``)."""
    if source == "external_id" and item.identifiers.external_ids:
        return item.identifiers.external_ids[0]
    return item.person_id


def pack(parts: Sequence[Part], max_count: int, max_bytes: int, overhead: int) -> list[list[Part]]:
    """Split encoded ``(index, json)`` parts, in order, into request bodies of at most
    ``max_count`` parts and ``max_bytes`` (``overhead`` + parts + ``,`` separators)."""
    out: list[list[Part]] = []
    current: list[Part] = []
    size = overhead
    for part in parts:
        grown = size + len(part[1]) + (1 if current else 0)
        if current and (len(current) >= max_count or grown > max_bytes):
            out.append(current)
            current, grown = [], overhead + len(part[1])
        current.append(part)
        size = grown
    if current:
        out.append(current)
    return out


def send_chunks(
    chunks: list[list[Part]],
    send_chunk: Callable[[list[Part]], dict[int, Outcome]],
    outcomes: list[Outcome | None],
) -> list[Outcome]:
    """Send request bodies in order and fill in ``outcomes``. After a transient failure the
    later chunks are held (``retry`` without a request), so that no person's later event
    overtakes an earlier one (per-person order)."""
    held: Outcome | None = None
    for chunk in chunks:
        if held is not None:
            for i, _ in chunk:
                outcomes[i] = Outcome("retry", f"held: {held.error}", held.retry_after)
            continue
        results = send_chunk(chunk)
        for i, outcome in results.items():
            outcomes[i] = outcome
        held = next((o for o in results.values() if o.kind == "retry"), None)
    return [o if o is not None else Outcome("retry", "not sent") for o in outcomes]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response | Outcome:
    """POST, or a ``retry`` outcome when the request did not complete."""
    try:
        return client.post(url, content=body, headers=headers)
    except httpx.TransportError as e:
        where = url.split("?", 1)[0]  # the query may hold tokens
        return Outcome("retry", f"request to {where} failed: {type(e).__name__}: {e}")


def error_text(response: httpx.Response) -> str:
    if response.is_success:
        return ""
    snippet = response.text[:300].strip()
    return f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")


def unsupported(item: Item, what: str) -> Outcome | None:
    """A reject for items this destination cannot send (not a named event)."""
    if item.kind != "event":
        return Outcome("reject", f"{what} takes event items, not {item.kind!r}")
    if not item.name:
        return Outcome("reject", "event item without a name")
    return None


# The webhook destination ------------------------------------------------------------------


def identifiers_data(identifiers: Identifiers) -> dict[str, list[str]]:
    fields = {
        "emails": identifiers.emails,
        "phones": identifiers.phones,
        "external_ids": identifiers.external_ids,
        "zendesk_user_ids": identifiers.zendesk_user_ids,
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
        self.capabilities = Capabilities(max_batch=MAX_BATCH, kinds=frozenset({"event"}))
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


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> WebhookDestination:
    url = config.setting("url")
    secret = config.setting("secret")
    if not url or not secret:
        raise ValueError(f"destination {config.name!r}: webhook needs 'url' and 'secret'")
    return WebhookDestination(
        name=config.name,
        url=url,
        secret=secret,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )

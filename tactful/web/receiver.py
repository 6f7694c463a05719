"""``POST /webhooks/zendesk``: signed Zendesk webhooks in, acknowledged only once committed.

Order of checks (each failure changes nothing):
1. body larger than 1 MiB → 413 (read in chunks; never buffered past the limit)
2. signature missing, wrong or timestamp more than 5 minutes off → 401
3. not JSON, or JSON whose records cannot be read (an id past 2^63, ``"tags": 5``, a time
   in year 9999): if a ticket id can be recovered, the body is kept and the ticket is
   queued for a fetch through the API (202); otherwise → 400 and nothing is stored
4. parsed into canonical events (unknown event types: stored and counted, 200); an event
   later than the wall clock plus ``[engine] future_skew`` → 422 ``event_in_future``
4b. events that introduce Zendesk users whose consent fields are not known (and a Zendesk
   API client can fetch them): the body is kept, 202, and applied with the fetched users
4c. a trigger body that repeats a JSON key: kept, not applied, the ticket fetched (202);
   one whose minute-precision time cannot tell it from a stored version of the same minute:
   applied, and the ticket fetched so the authoritative version wins (``zendesk.trust``)
5. raw body + events committed in the writer's next transaction, then 200. While a replay
   holds the store, they are committed to the store's inbox instead (``"queued": true``)
   and applied, in arrival order, as soon as the replay ends (``tactful.engine.writer``).
A signed body never causes a 500 (Zendesk would retry it for hours).
A redelivery (same envelope id, same ticket version, same body) is acknowledged and changes
nothing: events are deduplicated by key and documents by their SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tactful.clock import system_now
from tactful.core.events import Event, TicketVersion
from tactful.engine.engine import Incoming
from tactful.web.context import WebContext
from tactful.web.fetcher import UNTRUSTED_PREFIX, USERS_PREFIX, users_awaiting_consent
from tactful.web.metrics import reason_code
from tactful.zendesk import signing
from tactful.zendesk.parse import Parsed, as_int, parse_object
from tactful.zendesk.trust import duplicate_keys, same_minute_conflicts
from tactful.zendesk.webhooks import minute_precision

MAX_BODY = 1024 * 1024
# A whole JSON number or digit string (``1e999`` and ``123abc`` are not ids), then a delimiter.
_NUMBER = rb'\s*:\s*(?:"(\d{1,19})"|(\d{1,19}))(?=\s*[,}\]])'
_TICKET_ID = re.compile(rb'"ticket"\s*:\s*\{\s*"id"' + _NUMBER)
_ANY_ID = re.compile(rb'"(?:ticket_id|id)"' + _NUMBER)


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def recover_ticket_id(body: bytes) -> int | None:
    """The ticket id named in an unreadable body: exactly one whole number (never a prefix)
    between 1 and 2^63 - 1."""
    match = _TICKET_ID.search(body) or _ANY_ID.search(body)
    if match is None:
        return None
    found = as_int((match.group(1) or match.group(2)).decode())
    return found if found else None


def ticket_of(obj: Any) -> int | None:
    """The ticket a parsed body is about (a ``{"ticket": …}`` or a ``ticket.*`` envelope)."""
    if not isinstance(obj, dict):
        return None
    ticket, kind, detail = obj.get("ticket"), obj.get("type"), obj.get("detail")
    if isinstance(ticket, dict):
        found = as_int(ticket.get("id"))
    elif isinstance(kind, str) and kind.rsplit(":", 1)[-1].startswith("ticket."):
        found = as_int(detail.get("id")) if isinstance(detail, dict) else None
    else:
        return None
    return found if found else None


# Skips that are not failures: event types Tactful does not use (stored, acknowledged).
_NOT_FAILURES = frozenset({"unknown_event_type", "unsupported"})


def _unusable(parsed: Parsed) -> bool:
    """Nothing usable and something unreadable (a record with a bad or missing value)."""
    return not parsed.events and any(
        reason_code(s.reason) not in _NOT_FAILURES for s in parsed.skipped
    )


async def zendesk_webhook(request: Request) -> Response:
    ctx: WebContext = request.app.state.ctx
    metrics = ctx.metrics
    try:
        body = await read_limited(request)
    except BodyTooLarge:
        metrics.webhooks.labels("413").inc()
        return _problem(413, "body_too_large", f"webhook bodies are limited to {MAX_BODY} bytes")
    secret = ctx.settings.zendesk.webhook_secret
    if not secret:
        metrics.webhooks.labels("401").inc()
        return _problem(401, "not_configured", "[zendesk] webhook_secret is not configured")
    try:
        signing.verify(
            secret,
            request.headers.get(signing.SIGNATURE_HEADER),
            request.headers.get(signing.TIMESTAMP_HEADER),
            body,
            system_now(),  # Zendesk signs with the real time
        )
    except signing.SignatureError as exc:
        metrics.webhooks.labels("401").inc()
        metrics.reject("bad_signature")
        return _problem(401, "bad_signature", str(exc))
    invocation = request.headers.get(signing.INVOCATION_HEADER, "")
    try:
        obj: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return await _unparsed(ctx, body, recover_ticket_id(body))
    parsed = parse_object(obj)
    events: list[Event] = parsed.events
    for skipped in parsed.skipped:
        metrics.reject(skipped.reason)
    if _unusable(parsed):
        return await _unparsed(ctx, body, ticket_of(obj), [s.reason for s in parsed.skipped])
    metrics.received.labels("webhook").inc(len(events))
    if parsed.shape == "unknown" and not events:
        metrics.webhooks.labels("200").inc()
        await ctx.commit([Incoming([], body, "webhook:unknown")])
        return JSONResponse({"status": "stored", "events": 0, "shape": parsed.shape})
    future = ctx.engine.future_events(events)
    if future:  # the time guard: refused whole, nothing stored
        metrics.webhooks.labels("422").inc()
        metrics.reject("event_in_future", len(future))
        return JSONResponse({"error": "event_in_future", "detail": future}, status_code=422)
    raw_ticket = obj.get("ticket") if isinstance(obj, dict) else None
    trigger: dict[str, Any] | None = None
    if parsed.shape == "trigger_ticket" and isinstance(raw_ticket, dict):
        trigger = raw_ticket
    if trigger is not None and duplicate_keys(body):
        metrics.reject("duplicate_keys")
        return await _untrusted(ctx, body, events)
    awaiting = users_awaiting_consent(ctx, events)
    if awaiting:
        return await _awaiting_users(ctx, body, awaiting)
    incoming = [Incoming(events, body, f"webhook:{parsed.shape}")]
    refetch = _same_minute(ctx, events) if trigger is not None and minute_precision(trigger) else []
    for ticket_id in refetch:  # applied now, and the authoritative version fetched
        marker = {"fetch_ticket": ticket_id, "same_minute_as": hashlib.sha256(body).hexdigest()}
        incoming.append(Incoming([], orjson.dumps(marker), f"{UNTRUSTED_PREFIX}{ticket_id}"))
    stats = await ctx.commit(incoming)
    ctx.pending_fetches.update(refetch)
    metrics.webhooks.labels("200").inc()
    return JSONResponse(
        {
            "status": "ok",
            "events": len(events),
            "duplicates": None
            if stats.queued or len(events) != stats.received
            else stats.duplicates,
            "skipped": [s.reason for s in parsed.skipped],
            "invocation_id": invocation or None,
            **({"fetching": refetch} if refetch else {}),
            **({"queued": True} if stats.queued else {}),
        }
    )


def _same_minute(ctx: WebContext, events: list[Event]) -> list[int]:
    """Tickets whose trigger body cannot tell whether it is newer than a stored version of
    the same minute (only when a Zendesk API client can fetch them)."""
    versions = [e for e in events if isinstance(e, TicketVersion)]
    if not ctx.zendesk_api or not versions:
        return []
    with ctx.engine.store.reader() as reader:
        return same_minute_conflicts(reader, versions)


async def _untrusted(ctx: WebContext, body: bytes, events: list[Event]) -> Response:
    """A trigger body that repeats a JSON key: which value is meant, nobody can say. Kept,
    not applied; the ticket is fetched through the API."""
    ids = {e.ticket_id for e in events if isinstance(e, TicketVersion)}
    ticket_id = next(iter(ids), None) if len(ids) == 1 else None
    if ticket_id is None:
        ticket_id = recover_ticket_id(body)
    if ticket_id is None:
        ctx.metrics.webhooks.labels("400").inc()
        return _problem(400, "untrusted_body", "duplicate JSON keys and no ticket id")
    await ctx.commit([Incoming([], body, f"{UNTRUSTED_PREFIX}{ticket_id}")])
    ctx.pending_fetches.add(ticket_id)
    ctx.metrics.webhooks.labels("202").inc()
    return JSONResponse(
        {
            "status": "accepted",
            "ticket_id": ticket_id,
            "detail": "duplicate JSON keys: the ticket will be fetched",
        },
        status_code=202,
    )


async def _awaiting_users(ctx: WebContext, body: bytes, users: list[int]) -> Response:
    """Keep a body that introduces users whose consent is not known; the fetcher reads
    them through the API and commits the body's events together with them."""
    source = USERS_PREFIX + ",".join(str(u) for u in users)
    await ctx.commit([Incoming([], body, source)])
    ctx.metrics.webhooks.labels("202").inc()
    return JSONResponse(
        {
            "status": "accepted",
            "awaiting_users": users,
            "detail": "applied once the users' consent is fetched",
        },
        status_code=202,
    )


async def _unparsed(
    ctx: WebContext, body: bytes, ticket_id: int | None, reasons: list[str] | None = None
) -> Response:
    """An unreadable body: 202 + a fetch of the ticket it names, else 400 (nothing stored)."""
    if ticket_id is None:
        ctx.metrics.webhooks.labels("400").inc()
        ctx.metrics.reject("malformed_body")
        if reasons is None:
            return _problem(400, "malformed_body", "body is not JSON and names no ticket id")
        return JSONResponse(
            {
                "error": "unreadable_body",
                "detail": "no usable record and no ticket id",
                "skipped": reasons,
            },
            status_code=400,
        )
    await ctx.commit([Incoming([], body, f"webhook:unparsed:ticket:{ticket_id}")])
    ctx.pending_fetches.add(ticket_id)
    ctx.metrics.webhooks.labels("202").inc()
    return JSONResponse(
        {
            "status": "accepted",
            "ticket_id": ticket_id,
            "detail": "ticket will be fetched",
            "skipped": reasons or [],
        },
        status_code=202,
    )

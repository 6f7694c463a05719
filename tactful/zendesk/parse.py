"""Zendesk API JSON → canonical events (the edge).

``parse_object`` takes one decoded JSON document (an export page, a single object, a webhook
body) and returns the canonical events it holds plus the records it had to skip, each with a
reason. It never raises on bad input: an unknown shape or a broken record is reported in
``Parsed.skipped`` and the rest of the document is still used.

Export pages and single API objects are dispatched here, record by record, to the converters
in ``tactful.zendesk.records`` (re-exported here); webhook bodies (event-subscription
envelopes, trigger bodies) are handled in ``tactful.zendesk.webhooks``; arrays of documents
and saved invocation attempts come back here, one document at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from tactful.core.events import Event
from tactful.exceptions import InvalidInput
from tactful.zendesk import webhooks
from tactful.zendesk.parsed import Parsed as Parsed
from tactful.zendesk.parsed import Skipped as Skipped
from tactful.zendesk.records import BadRecord as BadRecord
from tactful.zendesk.records import Obj as Obj
from tactful.zendesk.records import add_pairs as add_pairs
from tactful.zendesk.records import as_int as as_int
from tactful.zendesk.records import as_text as as_text
from tactful.zendesk.records import in_range as in_range
from tactful.zendesk.records import norm_status as norm_status
from tactful.zendesk.records import parse_time as parse_time
from tactful.zendesk.records import rating_given as rating_given
from tactful.zendesk.records import requester_identifiers as requester_identifiers
from tactful.zendesk.records import status_change as status_change
from tactful.zendesk.records import survey_rating as survey_rating
from tactful.zendesk.records import ticket_version as ticket_version
from tactful.zendesk.records import time_key as time_key
from tactful.zendesk.records import user_seen as user_seen
from tactful.zendesk.texts import comment_child, description_text


class ParseError(InvalidInput):
    """A file could not be read as JSON. ``line`` is 1-based; 0 means the whole file."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message


def _changes(where: str, parent: Obj, key: str, out: list[Event], skipped: list[Skipped]) -> None:
    """Status changes among the children (``key``) of a ticket event or an audit."""
    ticket_id = as_int(parent.get("ticket_id"))
    if ticket_id is None:
        raise BadRecord("event without ticket_id")
    stamp = parent.get("created_at")
    epoch = as_int(parent.get("timestamp"))
    if not isinstance(stamp, str) and epoch is not None:
        try:
            at = in_range(datetime.fromtimestamp(epoch, UTC), "timestamp")
        except (OverflowError, OSError, ValueError):
            raise BadRecord(f"bad timestamp: {epoch!r}") from None
    else:
        at = parse_time(stamp, "created_at")
    children = parent.get(key)
    for j, child in enumerate(children if isinstance(children, list) else ()):
        if isinstance(child, dict):
            try:
                change = status_change(ticket_id, child, at)
            except BadRecord as e:
                skipped.append(Skipped(f"{where}.{key}[{j}] (id {child.get('id')})", e.reason))
                continue
            if change is not None:
                out.append(change)
            text = comment_child(ticket_id, child, at)
            if text is not None:
                out.append(text)


Converter = Callable[[Obj, list[Event], list[Skipped], str], None]


def _each(
    name: str, items: list[Any], convert: Converter, out: list[Event], sk: list[Skipped]
) -> None:
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            sk.append(Skipped(where, "not an object"))
            continue
        try:
            convert(item, out, sk, where)
        except BadRecord as e:
            sk.append(Skipped(f"{where} (id {item.get('id')})", e.reason))


def _one(name: str, item: Obj, convert: Converter, shape: str) -> Parsed:
    out: list[Event] = []
    sk: list[Skipped] = []
    try:
        convert(item, out, sk, name)
    except BadRecord as e:
        sk.append(Skipped(f"{name} (id {item.get('id')})", e.reason))
    return Parsed(out, sk, shape)


def _users(page: Obj, out: list[Event], sk: list[Skipped]) -> None:
    """Users, with identities merged in when the page sideloads them (``include=identities``)."""
    extra: dict[int, tuple[list[str], list[str]]] = {}
    for ident in page.get("identities") or ():
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            slot = extra.setdefault(as_int(ident.get("user_id")) or 0, ([], []))
            kind = ident.get("type")
            if kind in ("email", "phone_number"):
                slot[0 if kind == "email" else 1].append(ident["value"])

    def convert(u: Obj, out: list[Event], sk: list[Skipped], where: str) -> None:
        emails, phones = extra.get(as_int(u.get("id")) or -1, ([], []))
        out.append(user_seen(u, tuple(emails), tuple(phones)))

    _each("users", page["users"], convert, out, sk)


def _ticket(t: Obj, out: list[Event], sk: list[Skipped], where: str) -> None:
    version = ticket_version(t)
    out.append(version)
    text = description_text(t, version)
    if text is not None:
        out.append(text)


_rating: Converter = lambda r, out, sk, where: out.append(rating_given(r))  # noqa: E731
_survey: Converter = lambda r, out, sk, where: out.append(survey_rating(r))  # noqa: E731
_PAGES: tuple[tuple[str, str, Converter | None], ...] = (
    ("tickets", "tickets_page", _ticket),
    ("users", "users_page", None),  # see _users: identities may be sideloaded
    ("satisfaction_ratings", "ratings_page", _rating),
    ("survey_responses", "survey_responses_page", _survey),
    (
        "ticket_events",
        "ticket_events_page",
        lambda e, o, s, w: _changes(w, e, "child_events", o, s),
    ),
    ("audits", "audits_page", lambda a, o, s, w: _changes(w, a, "events", o, s)),
)
_SINGLES: tuple[tuple[str, str, Converter], ...] = (
    ("user", "user", lambda u, out, sk, where: out.append(user_seen(u))),
    ("satisfaction_rating", "rating", _rating),
    ("survey_response", "survey_response", _survey),
    ("audit", "audit", lambda a, o, s, w: _changes(w, a, "events", o, s)),
)


def _unknown(obj: Any) -> Parsed:
    if isinstance(obj, dict):
        keys = sorted(str(k) for k in obj)
        shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
        reason = f"unknown object shape: keys {shown}" if keys else "unknown object shape: empty"
    else:
        reason = f"unknown object shape: {type(obj).__name__}, not an object"
    return Parsed([], [Skipped("document", reason)], "unknown")


def parse_object(obj: Any) -> Parsed:
    """Translate one decoded JSON document into canonical events (never raises on bad data)."""
    if isinstance(obj, list):
        return parse_many(obj)
    if not isinstance(obj, dict):
        return _unknown(obj)
    kind = obj.get("type")
    if isinstance(kind, str) and kind.startswith("zen:event-type"):
        return webhooks.parse_envelope(obj)
    events: list[Event] = []
    skipped: list[Skipped] = []
    shape = ""
    for key, name, convert in _PAGES:
        if isinstance(obj.get(key), list):
            if convert is None:
                _users(obj, events, skipped)
            else:
                _each(key, obj[key], convert, events, skipped)
            shape = shape or name
    if shape:
        return Parsed(events, skipped, shape)
    ticket = obj.get("ticket")
    if isinstance(ticket, dict):
        return webhooks.parse_ticket(ticket)
    for key, name, convert in _SINGLES:
        if isinstance(obj.get(key), dict):
            return _one(key, obj[key], convert, name)
    if isinstance(obj.get("attempts"), list):
        return parse_attempts(obj["attempts"])
    return _unknown(obj)


def parse_many(docs: list[Any]) -> Parsed:
    """A JSON array of documents (e.g. saved webhook bodies): each parsed on its own."""
    events: list[Event] = []
    skipped: list[Skipped] = []
    for i, doc in enumerate(docs):
        part = parse_object(doc)
        events.extend(part.events)
        skipped.extend(Skipped(f"[{i}] {s.where}", s.reason) for s in part.skipped)
    return Parsed(events, skipped, "list")


def parse_attempts(attempts: list[Any]) -> Parsed:
    """Saved invocation attempts: each request payload once (retries carry the same body)."""
    events: list[Event] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for i, attempt in enumerate(attempts):
        request = attempt.get("request") if isinstance(attempt, dict) else None
        payload = request.get("payload") if isinstance(request, dict) else None
        if not isinstance(payload, str) or payload in seen:
            continue  # throttled attempts carry no request
        seen.add(payload)
        try:
            part = parse_object(orjson.loads(payload))
        except orjson.JSONDecodeError as e:
            skipped.append(Skipped(f"attempts[{i}]", f"payload is not valid JSON: {e}"))
            continue
        events.extend(part.events)
        skipped.extend(Skipped(f"attempts[{i}] {s.where}", s.reason) for s in part.skipped)
    return Parsed(events, skipped, "webhook_attempts")

"""Zendesk API JSON → canonical events (the edge).

``parse_object`` takes one decoded JSON document (an export page, a single object, a webhook
body) and returns the canonical events it holds plus the records it had to skip, each with a
reason. It never raises on bad input: an unknown shape or a broken record is reported in
``Parsed.skipped`` and the rest of the document is still used.

Export pages and single API objects are handled here; webhook bodies (event-subscription
envelopes, trigger bodies, saved invocation attempts) in ``tactful.zendesk.webhooks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tactful.core.codec import format_time
from tactful.core.events import (
    KNOWN_STATUSES,
    PRIORITIES,
    Event,
    Identifier,
    IdentifierKind,
    RatingGiven,
    TicketStatusChanged,
    TicketVersion,
    UserSeen,
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that produced no event; ``where`` is e.g. ``tickets[17] (id 42)``."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class Parsed:
    events: list[Event]
    skipped: list[Skipped]
    shape: str  # tickets_page, users_page, ratings_page, ticket_events_page, audits_page, ...


class ParseError(Exception):
    """A file could not be read as JSON. ``line`` is 1-based; 0 means the whole file."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message


class BadRecord(Exception):
    """Internal: one record cannot be translated; ``reason`` goes to ``Skipped``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Obj = dict[str, Any]
_STATUS_ALIASES = {
    "on-hold": "hold",
    "on hold": "hold",
    "archived": "closed",
    "scrubbed": "deleted",
}
_REQUESTER_KINDS: tuple[IdentifierKind, ...] = ("email", "phone", "external_id")


def parse_time(value: Any, what: str) -> datetime:
    """ISO 8601 with an offset → aware UTC; anything else raises ``BadRecord``."""
    if not isinstance(value, str):
        raise BadRecord(f"{what} missing" if value is None else f"{what} is not text: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"bad {what}: {value!r}") from None
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    if tz is None:
        raise BadRecord(f"{what} without a UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def time_key(raw: Any, value: datetime) -> str:
    """The canonical ISO text of a time for keys (the raw text when already canonical)."""
    if isinstance(raw, str) and len(raw) == 20 and raw[19] == "Z" and raw[10] == "T":
        return raw
    return format_time(value)


def as_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_text(value: Any) -> str | None:
    """A field value as text (booleans ``true``/``false``); None for null and objects."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def add_pairs(key: str, value: Any, out: list[tuple[str, str]]) -> None:
    """Append ``(key, text)`` for a value; lists give one pair per element."""
    for item in value if isinstance(value, list) else (value,):
        text = as_text(item)
        if text is not None:
            out.append((key, text))


def norm_status(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRecord("ticket without status")
    status = value.strip().lower()
    if status in KNOWN_STATUSES:
        return status
    alias = _STATUS_ALIASES.get(status)
    if alias is None:
        raise BadRecord(f"unknown ticket status {value!r}")
    return alias


def requester_identifiers(requester: Obj) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for kind in _REQUESTER_KINDS:
        value = requester.get(kind)
        if isinstance(value, str) and value.strip():
            found.append(Identifier(kind, value.strip()))
    return tuple(found)


def ticket_version(t: Obj) -> TicketVersion:
    """One API-shaped ticket object → ``TicketVersion`` (raises ``BadRecord``)."""
    ticket_id = as_int(t.get("id"))
    if ticket_id is None:
        raise BadRecord("ticket without id")
    status = norm_status(t.get("status"))
    updated_raw = t.get("updated_at")
    updated = parse_time(updated_raw, "updated_at")
    created = parse_time(t.get("created_at"), "created_at")
    requester_id = as_int(t.get("requester_id"))
    requester: tuple[Identifier, ...] = ()
    inline = t.get("requester")
    if isinstance(inline, dict):
        requester = requester_identifiers(inline)
        if requester_id is None:
            requester_id = as_int(inline.get("id"))
    if requester_id is None and not requester:
        raise BadRecord("ticket without requester")
    priority = t.get("priority")
    if priority is not None:
        priority = priority.lower() if isinstance(priority, str) else None
        if priority not in PRIORITIES:
            priority = None
    tags = t.get("tags")
    subject = t.get("subject") or t.get("raw_subject") or ""
    via = t.get("via")
    channel = via.get("channel") if isinstance(via, dict) else via
    custom: list[tuple[str, str]] = []
    for field in t.get("custom_fields") or ():
        if isinstance(field, dict) and field.get("id") is not None:
            add_pairs(str(field["id"]), field.get("value"), custom)
    return TicketVersion(
        key=f"zendesk:ticket:{ticket_id}:{time_key(updated_raw, updated)}",
        at=updated,
        ticket_id=ticket_id,
        created_at=created,
        updated_at=updated,
        status=status,
        priority=priority,
        tags=tuple(x.lower() for x in tags if isinstance(x, str)) if tags else (),
        subject=subject if isinstance(subject, str) else str(subject),
        channel=channel if isinstance(channel, str) else "",
        requester_id=requester_id,
        requester=requester,
        custom_fields=tuple(custom),
    )


def _texts(*values: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def user_seen(u: Obj, emails: tuple[str, ...] = (), phones: tuple[str, ...] = ()) -> UserSeen:
    user_id = as_int(u.get("id"))
    if user_id is None:
        raise BadRecord("user without id")
    raw = u.get("updated_at") or u.get("created_at")
    at = parse_time(raw, "updated_at")
    fields: list[tuple[str, str]] = []
    user_fields = u.get("user_fields")
    if isinstance(user_fields, dict):
        for name, value in user_fields.items():
            add_pairs(name, value, fields)
    tags = u.get("tags")
    return UserSeen(
        key=f"zendesk:user:{user_id}:{time_key(raw, at)}",
        at=at,
        zendesk_user_id=user_id,
        emails=tuple(dict.fromkeys(_texts(u.get("email")) + emails)),
        phones=tuple(dict.fromkeys(_texts(u.get("phone")) + phones)),
        external_ids=_texts(as_text(u.get("external_id"))),
        active=u.get("active") is not False,
        tags=tuple(x.lower() for x in tags if isinstance(x, str)) if tags else (),
        fields=tuple(fields),
    )


def rating_given(r: Obj) -> RatingGiven:
    rating_id = as_int(r.get("id"))
    if rating_id is None:
        raise BadRecord("rating without id")
    score: Any = r.get("score")
    if isinstance(score, str):
        score = score.strip().lower().removesuffix("_with_comment")
        if score in ("offered", "unoffered"):
            raise BadRecord(f"rating {score}, not given")
        if score not in ("good", "bad"):
            score = as_int(score) if score.isdigit() else score
    elif as_int(score) is not None:
        score = as_int(score)
    if not (score in ("good", "bad") or (type(score) is int and 1 <= score <= 5)):
        raise BadRecord(f"unknown rating score {r.get('score')!r}")
    raw = r.get("updated_at") or r.get("created_at")
    at = parse_time(raw, "updated_at")
    return RatingGiven(
        key=f"zendesk:rating:{rating_id}:{time_key(raw, at)}",
        at=at,
        rating_id=rating_id,
        ticket_id=as_int(r.get("ticket_id")),
        requester_id=as_int(r.get("requester_id")),
        score=score,
    )


def status_change(ticket_id: int, child: Obj, at: datetime) -> TicketStatusChanged | None:
    """A ticket event child / audit event → status change, None when it is about another field."""
    if "status" in child and child.get("field_name") is None:
        value = child["status"]  # incremental ticket events: {"status": "solved", ...}
    elif child.get("field_name") == "status":
        value = child.get("value")  # audits: {"field_name": "status", "value": "solved"}
    else:
        return None
    child_id = as_int(child.get("id"))
    if child_id is None:
        raise BadRecord("status change without id")
    previous = child.get("previous_value")
    return TicketStatusChanged(
        key=f"zendesk:ticket_event:{child_id}",
        at=at,
        ticket_id=ticket_id,
        status=norm_status(value),
        previous_status=norm_status(previous) if isinstance(previous, str) and previous else None,
    )


def _changes(where: str, parent: Obj, key: str, out: list[Event], skipped: list[Skipped]) -> None:
    """Status changes among the children (``key``) of a ticket event or an audit."""
    ticket_id = as_int(parent.get("ticket_id"))
    if ticket_id is None:
        raise BadRecord("event without ticket_id")
    stamp = parent.get("created_at")
    epoch = as_int(parent.get("timestamp"))
    if not isinstance(stamp, str) and epoch is not None:
        try:
            at = datetime.fromtimestamp(epoch, UTC)
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


_ticket: Converter = lambda t, out, sk, where: out.append(ticket_version(t))  # noqa: E731
_rating: Converter = lambda r, out, sk, where: out.append(rating_given(r))  # noqa: E731
_PAGES: tuple[tuple[str, str, Converter | None], ...] = (
    ("tickets", "tickets_page", _ticket),
    ("users", "users_page", None),  # see _users: identities may be sideloaded
    ("satisfaction_ratings", "ratings_page", _rating),
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
    from tactful.zendesk import webhooks  # here: webhooks imports this module

    if isinstance(obj, list):
        return webhooks.parse_many(obj)
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
        return webhooks.parse_attempts(obj["attempts"])
    return _unknown(obj)

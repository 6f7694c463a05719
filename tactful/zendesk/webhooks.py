"""Zendesk webhook bodies → canonical events.

Two kinds of bodies (product.md §8):

- event-subscription envelopes: ``{"type": "zen:event-type:…", "id", "time", "detail",
  "event"}``; ids inside ``detail`` are strings, statuses upper-case (``"SOLVED"``);
- trigger bodies written by the admin (Tactful's recommended one is ``{"ticket": {…}}`` with
  placeholders), whose values are display text: ``"Open"``, priority ``"-"``, tags
  space-separated, ``"Web Form"``, times like ``2013-12-12T05:35Z`` or
  ``November 22, 2026 10:32``.

Also: a saved list of webhook invocation attempts (``{"attempts": [{"request": {"payload":
"…"}}]}``, as the Zendesk webhooks API returns it) and a top-level JSON array of documents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from tactful.core.codec import format_time
from tactful.core.events import (
    Event,
    TicketStatusChanged,
    TicketText,
    UserDeleted,
    UserMerged,
    UserSeen,
)
from tactful.zendesk.parsed import Parsed, Skipped
from tactful.zendesk.records import (
    BadRecord,
    Obj,
    as_int,
    as_text,
    in_range,
    norm_status,
    parse_time,
    ticket_version,
)
from tactful.zendesk.texts import comment_added, description_text

# Display names of ``{{ticket.via}}`` and envelope ``via.channel`` values → API channel names.
_CHANNELS = {
    "web form": "web",
    "web_form": "web",
    "mail": "email",
    "web service": "api",
    "web_service": "api",
    "phone call (incoming)": "voice",
    "phone call (outgoing)": "voice",
    "voicemail": "voice",
    "trigger or automation": "rule",
    "channel integrations": "any_channel",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_HUMAN_TIME = re.compile(
    r"([A-Za-z]+)\.? +(\d{1,2}),? +(\d{4}),?(?: +at)? +(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r" *([AaPp][Mm])?(?: *(?:UTC|GMT|Z))?"
)
_DELETIONS = frozenset({"ticket.soft_deleted", "ticket.permanently_deleted"})
_USER_EVENTS = {
    "user.created",
    "user.active_changed",
    "user.external_id_changed",
    "user.identity_created",
    "user.identity_changed",
    "user.identity_deleted",
    "user.deleted",
    "user.permanently_deleted",  # not in Zendesk's list today; accepted if it ever comes
    "user.merged",
    "user.tags_changed",
    "user.custom_field_changed",
    # event {current, previous}: the only user event that names the user; the detail object
    # of user events has no name (developer.zendesk.com/api-reference/webhooks/event-types/
    # user-events/)
    "user.name_changed",
}


def channel(display: str) -> str:
    """``"Web Form"`` → ``web``, ``"Mail"`` → ``email``; others lower snake case."""
    text = display.strip().lower()
    return _CHANNELS.get(text) or re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def display_time(value: Any, what: str) -> datetime:
    """ISO 8601 (seconds optional) or Zendesk's human format (assumed UTC) → aware UTC."""
    text = value.strip() if isinstance(value, str) else value
    match = _HUMAN_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return parse_time(text, what)
    month = _MONTHS.get(match[1][:3].lower())
    hour, half = int(match[4]), (match[7] or "").lower()
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    try:
        if month is None:
            raise ValueError(match[1])
        moment = datetime(
            int(match[3]), month, int(match[2]), hour, int(match[5]), int(match[6] or 0), tzinfo=UTC
        )
    except ValueError:
        raise BadRecord(f"bad {what}: {value!r}") from None
    return in_range(moment, what)


def looks_like_trigger(ticket: Obj) -> bool:
    """A ``{"ticket": …}`` rendered by a trigger (display text) rather than an API object."""
    status = ticket.get("status")
    return (
        isinstance(ticket.get("via"), str)
        or isinstance(ticket.get("tags"), str)
        or (isinstance(status, str) and status != status.lower())
    )


_SECONDS = re.compile(r"\d:\d{2}:\d{2}")


def minute_precision(t: Obj) -> bool:
    """Whether the ticket's ``updated_at`` is shown to the minute only (trigger placeholders
    ``{{ticket.updated_at_with_timestamp}}`` and ``{{ticket.updated_at}}`` are)."""
    raw = t.get("updated_at")
    return isinstance(raw, str) and _SECONDS.search(raw) is None


def content_digest(t: Obj) -> str:
    """A short digest of a ticket object's content, for keys of minute-precision versions:
    two different bodies in the same minute are two versions, a redelivery is one."""
    return hashlib.sha256(orjson.dumps(t, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def parse_ticket(t: Obj) -> Parsed:
    """A single ``{"ticket": …}``: an API object or a trigger body (display text tolerated).

    A trigger body's times have minute precision: two updates of one ticket within a minute
    (Open, then Solved) render the same ``updated_at``. Its key then carries a digest of the
    body, so the second is a version of its own, not a duplicate of the first."""
    shape = "trigger_ticket" if looks_like_trigger(t) else "ticket"
    try:
        d = dict(t)
        priority = t.get("priority")
        d["priority"] = priority.strip() if isinstance(priority, str) else None
        tags = t.get("tags")
        if isinstance(tags, str):
            d["tags"] = tags.split()
        via = t.get("via")
        if isinstance(via, str):
            d["via"] = {"channel": channel(via)}
        for name in ("created_at", "updated_at"):
            d[name] = format_time(display_time(t.get(name), name))
        event = ticket_version(d)
    except BadRecord as e:
        return Parsed([], [Skipped(f"ticket (id {t.get('id')})", e.reason)], shape)
    if minute_precision(t):
        event = dataclasses.replace(event, key=f"{event.key}:{content_digest(t)}")
    text = description_text(t, event)
    return Parsed([event] if text is None else [event, text], [], shape)


def _ticket_events(name: str, detail: Obj, event: Obj, at: datetime) -> list[Event]:
    ticket_id = as_int(detail.get("id"))
    if ticket_id is None:
        raise BadRecord("ticket event without ticket id")
    out: list[Event] = []
    needed = ("status", "requester_id", "created_at", "updated_at")
    if all(detail.get(k) not in (None, "") for k in needed):
        d = dict(detail)
        via = detail.get("via")
        if isinstance(via, dict) and isinstance(via.get("channel"), str):
            d["via"] = {"channel": channel(via["channel"])}
        if name in _DELETIONS:
            d["status"] = "deleted"
        version = ticket_version(d)
        out.append(version)
        text = description_text(detail, version)
        if text is not None:
            out.append(text)
    comment = comment_added(ticket_id, event, at) if name == "ticket.comment_added" else None
    if comment is not None:
        out.append(comment)
    if name == "ticket.status_changed":
        raw_previous = event.get("previous")
        previous = (
            norm_status(raw_previous) if isinstance(raw_previous, str) and raw_previous else None
        )
        status = norm_status(event.get("current") or detail.get("status"))
    elif name in _DELETIONS:
        previous, status = None, "deleted"
    elif out:
        return out  # other changes (priority, requester, subject, fields): the version says it
    else:
        raise BadRecord(f"{name} without a full ticket (status, requester_id, created_at, …)")
    out.append(TicketStatusChanged("", at, ticket_id, status, previous))
    return out


def _identity(event: Obj) -> Obj:
    for key in ("identity", "current"):
        value = event.get(key)
        if isinstance(value, dict):
            return value
    return event


def _merge_target(event: Obj) -> int | None:
    for key in ("merged_into", "merged_into_user_id", "target_user_id", "winner_id", "current"):
        value = event.get(key)
        found = as_int(value.get("id") if isinstance(value, dict) else value)
        if found is not None:
            return found
    return None


def _user_events(name: str, detail: Obj, event: Obj, at: datetime) -> list[Event]:
    user_id = as_int(detail.get("id"))
    if user_id is None:
        raise BadRecord("user event without user id")
    if name in ("user.deleted", "user.permanently_deleted"):
        return [UserDeleted("", at, user_id, permanent=name == "user.permanently_deleted")]
    if name == "user.merged":
        previous = event.get("previous")
        source = as_int(previous.get("id") if isinstance(previous, dict) else previous)
        target = _merge_target(event)
        if target is None or target == (source or user_id):
            raise BadRecord("user.merged without the id of the user merged into")
        return [UserMerged("", at, source or user_id, target)]
    if name == "user.identity_deleted":
        raise BadRecord("identity removal has no canonical event")
    emails = [detail.get("email")]
    phones: list[Any] = []
    external_ids = [as_text(detail.get("external_id"))]
    active = True
    tags: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    if name == "user.tags_changed":
        current = event.get("current")
        if isinstance(current, list):
            tags = tuple(str(t).lower() for t in current if isinstance(t, str | int))
    elif name == "user.custom_field_changed":
        field = event.get("field")
        key = field.get("key") or field.get("id") if isinstance(field, dict) else None
        value = event.get("current")
        if value is None:  # the field was cleared
            value = ""
        if key is not None and not isinstance(value, dict | list):
            fields = ((str(key), str(value).lower() if isinstance(value, bool) else str(value)),)
    full_name: str | None = None
    if name == "user.name_changed":
        current = event.get("current")
        full_name = current.strip() if isinstance(current, str) and current.strip() else None
    if name == "user.external_id_changed":
        external_ids = [as_text(event.get("current"))]
    elif name == "user.active_changed":
        active = event.get("current") not in (False, "false")
    elif name.startswith("user.identity_"):
        ident = _identity(event)
        kind, value = ident.get("type"), ident.get("value")
        (emails if kind == "email" else phones if kind == "phone_number" else []).append(value)

    def texts(values: list[Any]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.strip() for v in values if isinstance(v, str) and v.strip()))

    return [
        UserSeen(
            "",
            at,
            user_id,
            texts(emails),
            texts(phones),
            texts(external_ids),
            active,
            tags,
            fields,
            full_name,
        )
    ]


def parse_envelope(obj: Obj) -> Parsed:
    kind = obj["type"]
    name = kind.removeprefix("zen:event-type").lstrip(":/")
    envelope_id = obj.get("id")
    where = f"envelope (id {envelope_id})"
    if name.startswith("ticket."):
        handler = _ticket_events
    elif name in _USER_EVENTS:
        handler = _user_events
    else:
        return Parsed([], [Skipped(where, f"unknown event type {kind}")], "envelope")
    detail, event = obj.get("detail"), obj.get("event")
    try:
        if not isinstance(envelope_id, str | int) or envelope_id == "":
            raise BadRecord("envelope without id")
        at = parse_time(obj.get("time"), "time")
        made = handler(
            name,
            detail if isinstance(detail, dict) else {},
            event if isinstance(event, dict) else {},
            at,
        )
    except BadRecord as e:
        return Parsed([], [Skipped(where, e.reason)], "envelope")
    key = f"zendesk:envelope:{envelope_id}"
    texts: list[Event] = [e for e in made if isinstance(e, TicketText)]  # keyed by their ids
    made = [e for e in made if not isinstance(e, TicketText)]
    if len(made) > 1:
        made = [dataclasses.replace(e, key=f"{key}:{i}") for i, e in enumerate(made)]
    else:
        made = [dataclasses.replace(e, key=key) for e in made]
    return Parsed(made + texts, [], "envelope")

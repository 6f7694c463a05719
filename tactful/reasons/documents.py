"""Raw documents without the customers' text, for the store (docs/reasons.md).

Tactful keeps each received document (a webhook body, an export page, an API response)
beside the events read from it. Once its events are read, the text in it is no longer
needed: ``without_text`` blanks the places Zendesk puts what people write, in every shape
``tactful.zendesk.parse`` reads, before the document is stored:

- a ticket's ``description`` (export pages' ``tickets``, a single ``ticket``, an envelope's
  ``detail``);
- a comment's ``body``, ``html_body`` and ``plain_body`` (``ticket_events`` children,
  ``audits``/``audit`` events, an envelope's ``event.comment``, a ticket's ``comment``);
- the same inside a saved webhook attempt's ``request.payload`` string, and in each
  document of a top-level array.

A document kept to be read later (a body waiting for its requester's consent or for a
ticket fetch) is stored whole; when it is read, its events come with a blanked copy.
Only the named places are visited, so a large export page costs one parse and one dump.
"""

from __future__ import annotations

from typing import Any

import orjson

BODY_KEYS = ("body", "html_body", "plain_body")
_MARKERS = (b'"description"', b'"body"', b'"html_body"', b'"plain_body"', b'"payload"')


def without_text(document: bytes) -> bytes:
    """``document`` with its descriptions and comment bodies blanked (unchanged when it has
    none, or is not JSON)."""
    if not any(marker in document for marker in _MARKERS):
        return document
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError:
        return document
    return orjson.dumps(data) if _document(data) else document


def _blank(obj: Any, keys: tuple[str, ...]) -> bool:
    changed = False
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), str) and obj[key]:
                obj[key] = ""
                changed = True
    return changed


def _items(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _ticket(ticket: Any) -> bool:
    changed = _blank(ticket, ("description",))
    if isinstance(ticket, dict):
        changed |= _blank(ticket.get("comment"), BODY_KEYS)
    return changed


def _document(data: Any) -> bool:
    """Blank the text of one decoded document in place; whether anything was blanked."""
    if isinstance(data, list):
        return any([_document(item) for item in data])  # every item, not the first only
    if not isinstance(data, dict):
        return False
    changed = False
    for ticket in _items(data, "tickets"):
        changed |= _ticket(ticket)
    changed |= _ticket(data.get("ticket"))
    for parent, children in (("ticket_events", "child_events"), ("audits", "events")):
        for row in _items(data, parent):
            for child in _items(row, children):
                changed |= _blank(child, BODY_KEYS)
    for child in _items(data.get("audit"), "events"):
        changed |= _blank(child, BODY_KEYS)
    changed |= _blank(data.get("detail"), ("description",))
    event = data.get("event")
    if isinstance(event, dict):
        changed |= _blank(event.get("comment"), BODY_KEYS)
    for attempt in _items(data, "attempts"):
        request = attempt.get("request") if isinstance(attempt, dict) else None
        if not isinstance(request, dict) or not isinstance(request.get("payload"), str):
            continue
        raw = request["payload"].encode()
        cleaned = without_text(raw)
        if cleaned != raw:
            request["payload"] = cleaned.decode()
            changed = True
    return changed

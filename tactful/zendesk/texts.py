"""Zendesk descriptions and public comments → ``TicketText`` events (docs/reasons.md).

The text is reduced here (``tactful.reasons.text.reduce``) and goes no further: an event
carries only the distinct words, a sentiment score and a language. Sources:

- a ticket object's ``description`` (its first comment; API objects, export rows, webhook
  ``detail``), one event per ticket version (``<version key>:description``), so that each
  lives in exactly one document; a ticket keeps equal texts once (``apply_text``);
- a Comment child of the ticket events export with ``include=comment_events``
  (``author_id``, ``body``, ``public``;
  https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/);
- a ``zen:event-type:ticket.comment_added`` envelope (``event.comment`` with ``id``,
  ``body``, ``is_public``, ``author.id``;
  https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/).

The export's comment and the webhook's share the key ``zendesk:comment:<id>``. Private
(internal) comments are never read: they are the agents' notes, not the customer's words.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from tactful.core.events import TicketText, TicketVersion
from tactful.reasons.text import Reduced, reduce
from tactful.zendesk.records import Obj, as_int

COMMENT_TYPES = frozenset({"Comment", "VoiceComment"})


def _event(
    key: str,
    at: datetime,
    ticket_id: int,
    author: int | None,
    text: str,
    reduced: Reduced | None = None,
) -> TicketText:
    reduced = reduced or reduce(text)
    return TicketText(
        key, at, ticket_id, author, reduced.terms, reduced.sentiment, reduced.language
    )


# Descriptions already read, by digest (every version of a ticket repeats its description):
# what was kept of them, never the text.
_READ: dict[str, Reduced] = {}
_READ_MAX = 8192


def description_text(t: Obj, version: TicketVersion) -> TicketText | None:
    """The description of this version of the ticket, written by its requester (None: no
    description)."""
    text = t.get("description")
    if not isinstance(text, str) or not text.strip():
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    reduced = _READ.get(digest)
    if reduced is None:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        reduced = _READ[digest] = reduce(text)
    key = f"{version.key}:description"
    return _event(key, version.created_at, version.ticket_id, None, text, reduced)


def comment_child(ticket_id: int, child: Obj, at: datetime) -> TicketText | None:
    """A public Comment child of the ticket events export (None: another child, a private
    comment, or one exported without its text or author)."""
    kind = child.get("event_type") or child.get("type")
    if kind not in COMMENT_TYPES or child.get("public") is not True:
        return None
    body = child.get("plain_body") or child.get("body")
    comment_id, author_id = as_int(child.get("id")), as_int(child.get("author_id"))
    if not isinstance(body, str) or not body.strip() or comment_id is None or author_id is None:
        return None
    return _event(f"zendesk:comment:{comment_id}", at, ticket_id, author_id, body)


def comment_added(ticket_id: int, event: Obj, at: datetime) -> TicketText | None:
    """The comment of a ``ticket.comment_added`` envelope (None: private or empty)."""
    comment = event.get("comment")
    if not isinstance(comment, dict) or comment.get("is_public") is not True:
        return None
    body = comment.get("body")
    comment_id = as_int(comment.get("id"))
    if not isinstance(body, str) or not body.strip() or comment_id is None:
        return None
    author = comment.get("author")
    author_id = as_int(author.get("id")) if isinstance(author, dict) else None
    if author_id is None:
        return None  # whose words they are is unknown: an agent's reply must not count
    return _event(f"zendesk:comment:{comment_id}", at, ticket_id, author_id, body)

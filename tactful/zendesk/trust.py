"""When a trigger body cannot be trusted to say what the ticket is now (issue 18 §5).

Trigger bodies are text rendered from placeholders, not API objects:

- their times have minute precision (``{{ticket.updated_at_with_timestamp}}`` is
  ``2026-11-22T10:35Z``): Open then Solved within one minute render the same
  ``updated_at``, and nothing in the second body says it is the newer one;
- a template (or a field value breaking out of its quotes) can repeat a key:
  ``{"status": "Open", "status": "Solved"}`` parses as whichever JSON parser's choice.

``duplicate_keys`` finds the second; ``same_minute_conflicts`` the first (a stored version
of the ticket in the same minute with other content). Either way the receiver has the
ticket fetched through ``/api/v2/tickets/{id}.json`` (second precision) and applies that
authoritative version (``tactful.web.fetcher``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from tactful.core.events import TicketVersion
from tactful.store.base import Reader

MINUTE = timedelta(minutes=1)


class _Repeated(Exception):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Repeated
    return dict(pairs)


def duplicate_keys(body: bytes) -> bool:
    """Whether some JSON object in the body repeats a key."""
    try:
        json.loads(body, object_pairs_hook=_no_repeats)
    except _Repeated:
        return True
    except ValueError:
        return False
    return False


def same_minute_conflicts(reader: Reader, versions: Sequence[TicketVersion]) -> list[int]:
    """Tickets of these minute-precision versions for which a different version within the
    same minute is stored: which one is newer, the bodies cannot tell."""
    stored = reader.load_tickets([v.ticket_id for v in versions])
    out: set[int] = set()
    for v in versions:
        record = stored.get(v.ticket_id)
        known = None if record is None else record[1].version
        if (
            known is not None
            and known.key != v.key
            and v.updated_at <= known.updated_at < v.updated_at + MINUTE
        ):
            out.add(v.ticket_id)
    return sorted(out)

"""Export pages of the simulator, in Zendesk's pagination shapes.

- Incremental cursor exports (tickets, users): the *current* state of every record changed
  at or after ``start_time`` (or after ``cursor``), ordered by (``updated_at``, ``id``),
  ``per_page`` ≤ 1000; ``after_cursor``/``after_url`` always point past the page (keep them
  to resume), ``before_*`` are null on the first page, ``end_of_stream`` tells whether the
  page reached the present. Cursors look like Zendesk's: base64 of ``<epoch>.0||<id>|``.
- Incremental ticket events (time-based): audits with ``timestamp >= start_time``;
  ``end_time`` is the last row's timestamp and ``next_page`` starts there (rows of that second
  come again: time-based exports can repeat rows); a full page is extended to the end of its
  last second so paging always advances.
- Satisfaction ratings (cursor pagination): ``page[size]`` ≤ 100, ``meta.has_more``,
  ``meta.after_cursor``, ``links.next``.

Records changed within ``export_lag`` of ``now`` are left out of the incremental exports.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from tactful.testing.sim.core import SimCore
from tactful.testing.sim.model import Json
from tactful.testing.sim.objects import (
    audit_json,
    epoch,
    rating_json,
    survey_response_json,
    user_json,
)

MAX_PAGE = 1000
MAX_RATINGS_PAGE = 100
T = TypeVar("T")
Key = tuple[int, int]


class BadRequest(ValueError):
    """A request Zendesk would refuse (400) — ``title`` is the error code."""

    def __init__(self, title: str, description: str) -> None:
        super().__init__(description)
        self.title = title
        self.description = description


def encode_cursor(key: Key) -> str:
    return base64.b64encode(f"{key[0]}.0||{key[1]}|".encode()).decode()


def decode_cursor(cursor: str) -> Key:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        stamp, _, rest = text.partition("||")
        return int(float(stamp)), int(rest.rstrip("|"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("InvalidPaginationParameter", f"invalid cursor {cursor!r}") from None


def _int(value: str | None, name: str, default: int, top: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise BadRequest("InvalidValue", f"{name} must be a positive integer")
    return min(int(value), top)


def _start(start_time: str | None, now: datetime) -> int:
    if start_time is None or not start_time.lstrip("-").isdigit():
        raise BadRequest("InvalidValue", "start_time must be a Unix epoch time")
    value = int(start_time)
    if value > epoch(now):
        raise BadRequest("InvalidValue", "start_time is in the future")
    return max(value, 0)


def _cutoff(sim: SimCore) -> int:
    return epoch(sim.now() - sim.export_lag)


def cursor_page(
    sim: SimCore,
    kind: str,
    params: dict[str, str],
    base: str,
) -> Json:
    """``/api/v2/incremental/{tickets|users}/cursor.json``."""
    per_page = _int(params.get("per_page"), "per_page", MAX_PAGE, MAX_PAGE)
    cursor = params.get("cursor")
    if cursor:
        after = decode_cursor(cursor)
    elif "start_time" in params:
        after = (_start(params["start_time"], sim.now()), 0)
    else:
        raise BadRequest("InvalidValue", "start_time or cursor is required")
    cutoff = _cutoff(sim)
    rows: list[tuple[Key, Json]] = []
    if kind == "tickets":
        skip_deleted = params.get("exclude_deleted") == "true"
        for t in sim.tickets.values():
            if not (skip_deleted and t.status == "deleted"):
                rows.append(((epoch(t.updated_at), t.id), sim.ticket_api(t.id)))
    else:
        keys = sim.user_field_keys()
        for u in sim.users.values():
            rows.append(((epoch(u.updated_at), u.id), user_json(u, sim.base_url, keys)))
    ready = sorted((r for r in rows if after < r[0] and r[0][0] <= cutoff), key=lambda r: r[0])
    page = ready[:per_page]
    last = page[-1][0] if page else after
    endpoint = f"{base}/api/v2/incremental/{kind}/cursor.json"
    size = f"&per_page={params['per_page']}" if params.get("per_page") else ""
    after_cursor = encode_cursor(last)
    before_cursor = encode_cursor(page[0][0]) if cursor and page else None
    return {
        kind: [item for _, item in page],
        "after_url": f"{endpoint}?cursor={quote(after_cursor, safe='')}{size}",
        "before_url": (
            f"{endpoint}?cursor={quote(before_cursor, safe='')}{size}" if before_cursor else None
        ),
        "after_cursor": after_cursor,
        "before_cursor": before_cursor,
        "end_of_stream": len(ready) <= per_page,
    }


def _time_page(rows: Sequence[tuple[Key, T]], per_page: int) -> tuple[list[tuple[Key, T]], bool]:
    page = list(rows[:per_page])
    if len(page) == per_page:
        second = page[-1][0][0]
        page.extend(r for r in rows[per_page:] if r[0][0] == second)
    return page, len(page) == len(rows)


def ticket_events_page(sim: SimCore, params: dict[str, str], base: str) -> Json:
    """``/api/v2/incremental/ticket_events.json`` (time-based)."""
    start = _start(params.get("start_time"), sim.now())
    per_page = _int(params.get("per_page"), "per_page", MAX_PAGE, MAX_PAGE)
    cutoff = _cutoff(sim)
    rows = sorted(
        ((epoch(a.at), a.id), a)
        for a in sim.audits
        if start <= epoch(a.at) <= cutoff
    )  # fmt: skip
    page, complete = _time_page(rows, per_page)
    end_time = page[-1][0][0] if page else start
    return {
        "ticket_events": [
            audit_json(a, comment_events="comment_events" in params.get("include", "").split(","))
            for _, a in page
        ],
        "next_page": f"{base}/api/v2/incremental/ticket_events.json?start_time={end_time}",
        "count": len(page),
        "end_time": end_time,
        "end_of_stream": complete,
    }


def _rating_cursor(key: Key) -> str:
    return base64.b64encode(b'{"o":"updated_at,id","v":"%d,%d"}' % key).decode()


def _decode_rating_cursor(cursor: str) -> Key:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        value = text.split('"v":"', 1)[1].split('"', 1)[0]
        stamp, ident = value.split(",")
        return int(stamp), int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError):
        raise BadRequest("InvalidPaginationParameter", f"invalid cursor {cursor!r}") from None


def survey_responses_page(sim: SimCore, params: dict[str, str]) -> Json:
    """``GET /api/v2/guide/survey_responses``: ``filter[subject_zrns]`` and
    ``filter[responder_ids]`` (comma-separated), ``page[size]`` ≤ 100 and ``page[after]``
    (the last id of the previous page), oldest first."""
    size = _int(params.get("page[size]"), "page[size]", MAX_RATINGS_PAGE, MAX_RATINGS_PAGE)
    zrns = {z for z in params.get("filter[subject_zrns]", "").split(",") if z}
    responders = {r for r in params.get("filter[responder_ids]", "").split(",") if r}
    rows = sorted(
        (r for r in sim.survey_responses.values()
         if (not zrns or f"zen:ticket:{r.ticket_id}" in zrns)
         and (not responders or str(r.responder_id) in responders)),
        key=lambda r: r.id,
    )  # fmt: skip
    after = params.get("page[after]") or ""
    ready = [r for r in rows if r.id > after]
    page = ready[:size]
    return {
        "survey_responses": [survey_response_json(r) for r in page],
        "meta": {
            "has_more": len(ready) > size,
            "after_cursor": page[-1].id if page else None,
            "before_cursor": page[0].id if page else None,
        },
    }


def ratings_page(sim: SimCore, params: dict[str, str], base: str) -> Json:
    """``/api/v2/satisfaction_ratings`` with cursor pagination (``page[size]``, ``page[after]``)."""
    size = _int(params.get("page[size]"), "page[size]", MAX_RATINGS_PAGE, MAX_RATINGS_PAGE)
    after: Key = (-1, 0)
    if params.get("page[after]"):
        after = _decode_rating_cursor(params["page[after]"])
    start = int(params["start_time"]) if params.get("start_time", "").isdigit() else None
    score = params.get("score")
    keep: Callable[[str], bool] = {
        None: lambda s: True,
        "received": lambda s: s in ("good", "bad"),
        "offered": lambda s: s == "offered",
        "good": lambda s: s == "good",
        "bad": lambda s: s == "bad",
    }.get(score, lambda s: False)
    rows = sorted(
        ((epoch(r.updated_at), r.id), r)
        for r in sim.ratings.values()
        if keep(r.score) and (start is None or epoch(r.updated_at) >= start)
    )
    ready = [row for row in rows if row[0] > after]
    page = ready[:size]
    has_more = len(ready) > size
    after_cursor = _rating_cursor(page[-1][0]) if page else None
    before_cursor = _rating_cursor(page[0][0]) if page else None
    endpoint = f"{base}/api/v2/satisfaction_ratings"
    size_q = f"page%5Bsize%5D={size}"
    return {
        "satisfaction_ratings": [rating_json(r, sim.base_url) for _, r in page],
        "meta": {
            "has_more": has_more,
            "after_cursor": after_cursor,
            "before_cursor": before_cursor,
        },
        "links": {
            "prev": (
                f"{endpoint}?page%5Bbefore%5D={quote(before_cursor, safe='')}&{size_q}"
                if before_cursor and params.get("page[after]")
                else None
            ),
            "next": (
                f"{endpoint}?page%5Bafter%5D={quote(after_cursor, safe='')}&{size_q}"
                if has_more and after_cursor
                else None
            ),
        },
    }

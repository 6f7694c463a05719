"""Permanent user deletions, seen through Zendesk's deleted-users API.

A Zendesk user deletion is soft first (``zen:event-type:user.deleted``; the user stays
restorable and listed as deleted), then permanent: by an admin, or by Zendesk after 30 days.
``GET /api/v2/deleted_users`` lists both kinds, by cursor pagination (``page[size]`` ≤ 100,
``page[after]``, ``meta.has_more``, ``meta.after_cursor``); a permanently deleted user has
``email`` and ``phone`` null and the name ``"Permanently Deleted User"``
(https://developer.zendesk.com/api-reference/ticketing/users/users/#list-deleted-users).

With ``[privacy] erase_deleted_users = "when_permanently_deleted"`` (the default), Tactful
erases a person once Zendesk has permanently deleted their user: ``permanent_deletions``
turns the permanently deleted users that still have a person here into
``UserDeleted(permanent=True)`` events (the engine erases on them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from tactful.core.events import UserDeleted
from tactful.store.base import Reader
from tactful.zendesk.client import ZendeskClient
from tactful.zendesk.records import BadRecord, as_int, parse_time

PATH = "/api/v2/deleted_users"
PERMANENT_NAME = "Permanently Deleted User"
PAGE_SIZE = 100


def permanently_deleted(
    client: ZendeskClient, page_size: int = PAGE_SIZE
) -> Iterator[tuple[int, datetime | None]]:
    """(user id, when) of every permanently deleted user, page by page."""
    params: dict[str, str | int] = {"page[size]": page_size}
    while True:
        data = client.get_json(PATH, params, endpoint=PATH)
        for user in data.get("deleted_users") or ():
            user_id = as_int(user.get("id")) if isinstance(user, dict) else None
            if user_id is None or user.get("name") != PERMANENT_NAME:
                continue
            try:
                when: datetime | None = parse_time(user.get("updated_at"), "updated_at")
            except BadRecord:
                when = None
            yield user_id, when
        meta = data.get("meta")
        cursor = meta.get("after_cursor") if isinstance(meta, dict) else None
        if not (isinstance(meta, dict) and meta.get("has_more") and isinstance(cursor, str)):
            return
        params = {"page[size]": page_size, "page[after]": cursor}


def permanent_deletions(client: ZendeskClient, reader: Reader, now: datetime) -> list[UserDeleted]:
    """Erasure events for permanently deleted users that still have a person here."""
    out: list[UserDeleted] = []
    for user_id, when in permanently_deleted(client):
        if reader.find_persons("zendesk_user_id", str(user_id)):
            at = when if when is not None and when <= now else now
            key = f"zendesk:deleted_user:{user_id}:permanent"
            out.append(UserDeleted(key, at, user_id, permanent=True))
    return out

"""Constants of the generated Zendesk account (ids, URLs, page sizes, file stems) and the
time and cursor formats Zendesk uses."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

SUBDOMAIN = "glowlab"
BASE_URL = f"https://{SUBDOMAIN}.zendesk.com"
REASON_FIELD_ID = 360012345  # custom ticket field "Contact reason"
ORDER_FIELD_ID = 360012346  # custom ticket field "Order number"
DEFAULT_START = datetime(2026, 8, 1, tzinfo=UTC)
PAGE_SIZE = 1000  # incremental exports: up to 1000 records a page
RATINGS_PAGE_SIZE = 100  # satisfaction ratings (cursor pagination): up to 100 a page

USER_STEM = "users"
TICKET_STEM = "tickets"
TICKET_UPDATE_STEM = "tickets-updates"
TICKET_EVENT_STEM = "ticket-events"
RATING_STEM = "satisfaction-ratings"
_STEMS = (USER_STEM, TICKET_STEM, TICKET_UPDATE_STEM, TICKET_EVENT_STEM, RATING_STEM)

_HOUR = 3600
_DAY = 86_400
_CLOSE_AFTER_SOLVED = 4 * _DAY  # Zendesk's default automation closes solved tickets
_RATING_OFFER_DELAY = _DAY  # "request customer satisfaction" automation: 24h after solved
_USER_ID_BASE = 21_000_000_000_000
_TICKET_ID_BASE = 120_000
_EVENT_ID_BASE = 26_000_000_000_000
_RATING_ID_BASE = 31_000_000_000_000
_AGENT_IDS = tuple(20_000_000_100_000 + 977 * k for k in range(24))
_GROUPS = {
    "support": 360_000_911_101,
    "billing": 360_000_911_102,
    "safety": 360_000_911_103,
    "fulfillment": 360_000_911_104,
}
_OPEN = frozenset({"new", "open", "pending", "hold"})
_SYSTEM_UPDATER = -1  # Zendesk's updater_id for automations and triggers

_REQUESTER = 0
_AGENT = 1
_RULE = 2


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _cursor(ts: int, ident: int) -> str:
    # The shape Zendesk uses for incremental cursors: base64("<epoch>.0||<id>|").
    return base64.b64encode(f"{ts}.0||{ident}|".encode()).decode()

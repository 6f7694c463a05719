"""Realistic generated Zendesk exports for a skincare DTC brand (demo and benchmark data).

``generate_exports(out_dir, persons=N)`` writes what a Zendesk account would return from its
export endpoints, page by page, in Zendesk's own JSON shapes (field sets copied from real
recorded API responses: incremental ticket and user cursor pages, ticket audits):

- ``users-0001.json`` …: ``/api/v2/incremental/users/cursor.json`` pages (≤1000 users).
- ``tickets-0001.json`` …: ``/api/v2/incremental/tickets/cursor.json`` pages (≤1000 tickets,
  ordered by ``updated_at``), each ticket once.
- ``tickets-updates-0001.json`` …: a later export run that repeats some tickets at a later
  ``updated_at`` with a new status (reopened, solved, closed): ticket versions.
- ``ticket-events-0001.json`` …: ``/api/v2/incremental/ticket_events.json`` pages: one
  ``Audit`` per status change with ``Create`` / ``Change`` / ``Comment`` child events.
- ``satisfaction-ratings-0001.json`` …: ``/api/v2/satisfaction_ratings`` pages (≤100).

The story: customers write about refunds and chargebacks, irritation and allergic reactions,
wrong or damaged items, shipping delays, subscriptions and billing, and how to use products.
Tickets go new → open → (pending/hold) → solved → closed (by automation four days later);
some are reopened, a few are merged into an earlier ticket (closed, tag ``closed_by_merge``)
or deleted. Reasons drift the way they do in real accounts: a ticket may carry a reason tag,
a contact-reason custom field value, a keyword in its subject, all of them or none.

Users: most have an email; some only a phone (national or E.164 format); some an external
id; a few are deleted (``active: false``, identifiers scrubbed); a few persons have a second
user id with the same email (other capitalisation). ``user_fields`` carries marketing
consent for some users.

Generation is deterministic in ``seed`` and runs per chunk of persons, so memory stays flat
in ``persons``: records of a chunk are sorted and spilled to run files, and the pages are
written by merging the runs (an external merge sort).
"""

from __future__ import annotations

import argparse
import base64
import heapq
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

SUBDOMAIN = "glowlab"
BASE_URL = f"https://{SUBDOMAIN}.zendesk.com"
REASON_FIELD_ID = 360012345  # custom ticket field "Contact reason"
ORDER_FIELD_ID = 360012346  # custom ticket field "Order number"
DEFAULT_START = datetime(2026, 8, 1, tzinfo=UTC)
PAGE_SIZE = 1000  # incremental exports: up to 1000 records a page
RATINGS_PAGE_SIZE = 100  # satisfaction ratings (cursor pagination): up to 100 a page
CHUNK_PERSONS = 10_000  # persons generated (and held in memory) at a time
MAX_OPEN_RUNS = 128  # runs merged at once; more are merged in passes

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
_BRAND_ID = 360_000_123_451
_TICKET_FORM_ID = 360_000_223_451
_AGENT_IDS = tuple(20_000_000_100_000 + 977 * k for k in range(24))
_GROUPS = {
    "support": 360_000_911_101,
    "billing": 360_000_911_102,
    "safety": 360_000_911_103,
    "fulfillment": 360_000_911_104,
}
_CUSTOM_STATUS_IDS = {
    "new": 360_000_810_001,
    "open": 360_000_810_002,
    "pending": 360_000_810_003,
    "hold": 360_000_810_004,
    "solved": 360_000_810_005,
    "closed": 360_000_810_005,
    "deleted": 360_000_810_005,
}
_OPEN = frozenset({"new", "open", "pending", "hold"})
_SYSTEM_UPDATER = -1  # Zendesk's updater_id for automations and triggers

_REQUESTER = 0
_AGENT = 1
_RULE = 2


@dataclass(frozen=True)
class SampleFiles:
    """What ``generate_exports`` wrote: page files per export and record counts."""

    out_dir: Path
    start: datetime
    end: datetime
    persons: int
    user_pages: tuple[Path, ...]
    ticket_pages: tuple[Path, ...]
    ticket_update_pages: tuple[Path, ...]
    ticket_event_pages: tuple[Path, ...]
    rating_pages: tuple[Path, ...]
    users: int
    tickets: int
    ticket_updates: int
    ticket_events: int
    ratings: int

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every page, in a natural import order (users, tickets, updates, events, ratings)."""
        return (
            self.user_pages
            + self.ticket_pages
            + self.ticket_update_pages
            + self.ticket_event_pages
            + self.rating_pages
        )

    @property
    def records(self) -> int:
        """Records in all pages (a ticket repeated in the updates counts twice)."""
        return self.users + self.tickets + self.ticket_updates + self.ticket_events + self.ratings


# --------------------------------------------------------------------------- the story


@dataclass(frozen=True)
class _Reason:
    field_value: str
    weight: int
    tag_sets: tuple[tuple[str, ...], ...]  # one is picked per ticket; () = agent forgot
    subjects: tuple[str, ...]  # some deliberately without the keyword
    descriptions: tuple[str, ...]
    priorities: tuple[tuple[str | None, int], ...]
    group: str
    ticket_type: str | None
    bad_rating: float  # chance that an answered rating is "bad"
    can_hold: bool = False


_REASONS: tuple[_Reason, ...] = (
    _Reason(
        field_value="refund_request",
        weight=11,
        tag_sets=(("refund",), ("refund", "returns"), ("refund_request",), ()),
        subjects=(
            "Refund for order #{order}",
            "Requesting a refund for the {product}",
            "Return and refund please",
            "Still waiting on my refund for #{order}",
            "Can I get my money back for the {product}?",
        ),
        descriptions=(
            "Hi, the {product} didn't work for me and I'd like a refund for order #{order}.",
            "I returned my order #{order} two weeks ago and haven't seen the money yet.",
        ),
        priorities=((None, 3), ("normal", 5), ("high", 2)),
        group="billing",
        ticket_type="task",
        bad_rating=0.3,
    ),
    _Reason(
        field_value="chargeback",
        weight=2,
        tag_sets=(("chargeback",), ("chargeback", "dispute"), ("payment_dispute",)),
        subjects=(
            "Chargeback received for order #{order}",
            "Dispute notification: order #{order}",
            "I disputed this charge with my bank",
        ),
        descriptions=(
            "A chargeback was opened for order #{order}. Reason: product not as described.",
            "I didn't recognise a charge from you so I disputed it with my bank.",
        ),
        priorities=(("high", 3), ("urgent", 1)),
        group="billing",
        ticket_type="problem",
        bad_rating=0.35,
    ),
    _Reason(
        field_value="reaction",
        weight=10,
        tag_sets=(("irritation",), ("allergic_reaction",), ("adverse_reaction", "safety"), ()),
        subjects=(
            "Skin irritation after using the {product}",
            "Allergic reaction to the {product}",
            "Rash and burning from the {product}",
            "Breakout after switching to the {product}",
            "Is redness normal with the {product}?",
        ),
        descriptions=(
            "I started the {product} three days ago and my cheeks are red and burning.",
            "My face broke out in hives after using the {product}. What's in it?",
        ),
        priorities=(("normal", 2), ("high", 5), ("urgent", 2)),
        group="safety",
        ticket_type="incident",
        bad_rating=0.3,
    ),
    _Reason(
        field_value="wrong_item",
        weight=9,
        tag_sets=(("wrong_item",), ("wrong_item", "fulfillment"), ("fulfillment_error",), ()),
        subjects=(
            "Wrong item in order #{order}",
            "Received the wrong product",
            "I ordered the {product} but got something else",
            "Missing item from order #{order}",
        ),
        descriptions=(
            "My order #{order} arrived but instead of the {product} there was a cleanser.",
            "The box for order #{order} was missing the {product}.",
        ),
        priorities=((None, 3), ("normal", 5), ("high", 1)),
        group="fulfillment",
        ticket_type="incident",
        bad_rating=0.15,
        can_hold=True,
    ),
    _Reason(
        field_value="shipping_delay",
        weight=24,
        tag_sets=(("shipping",), ("shipping", "wismo"), ("shipping_delay",), ()),
        subjects=(
            "Where is my order #{order}?",
            "Order #{order} hasn't arrived",
            "Shipping delay on my order",
            "Tracking hasn't updated in a week",
            "When will my package ship?",
        ),
        descriptions=(
            "It's been 10 days and order #{order} still shows label created.",
            "Can you tell me when my {product} will arrive? Order #{order}.",
        ),
        priorities=((None, 4), ("low", 2), ("normal", 4)),
        group="fulfillment",
        ticket_type="question",
        bad_rating=0.25,
        can_hold=True,
    ),
    _Reason(
        field_value="damaged_item",
        weight=8,
        tag_sets=(("damaged",), ("damaged", "fulfillment"), ("damaged_item",), ()),
        subjects=(
            "The {product} arrived damaged",
            "Broken bottle in my package",
            "Pump on the {product} is broken",
            "Package arrived leaking",
        ),
        descriptions=(
            "The {product} from order #{order} arrived cracked and leaked over everything.",
            "The pump on my {product} doesn't work, nothing comes out.",
        ),
        priorities=((None, 2), ("normal", 6), ("high", 1)),
        group="fulfillment",
        ticket_type="incident",
        bad_rating=0.12,
        can_hold=True,
    ),
    _Reason(
        field_value="subscription_billing",
        weight=16,
        tag_sets=(("subscription",), ("subscription", "cancel"), ("billing",), ()),
        subjects=(
            "Cancel my subscription",
            "Charged twice for order #{order}",
            "Skip my next subscription delivery",
            "Update my billing address",
            "Why was I charged this month?",
        ),
        descriptions=(
            "Please cancel my {product} subscription before the next charge.",
            "I see two charges for order #{order} on my card statement.",
        ),
        priorities=((None, 4), ("low", 2), ("normal", 4)),
        group="billing",
        ticket_type="question",
        bad_rating=0.2,
    ),
    _Reason(
        field_value="product_question",
        weight=20,
        tag_sets=(("how_to",), ("product_question",), ("how_to", "routine"), ()),
        subjects=(
            "How do I use the {product} with retinol?",
            "Can I use the {product} while pregnant?",
            "Which order should I apply my serums?",
            "Is the {product} safe for sensitive skin?",
            "Routine advice",
        ),
        descriptions=(
            "I just got the {product}. Morning or night? Before or after moisturizer?",
            "Can the {product} be combined with my vitamin C serum?",
        ),
        priorities=((None, 5), ("low", 4), ("normal", 1)),
        group="support",
        ticket_type="question",
        bad_rating=0.08,
    ),
)
_REASON_WEIGHTS = tuple(r.weight for r in _REASONS)

_PRODUCTS = (
    "Hydrating Serum",
    "Retinol Night Cream",
    "Vitamin C Brightening Serum",
    "Gentle Foaming Cleanser",
    "Mineral Sunscreen SPF 50",
    "AHA/BHA Exfoliating Toner",
    "Barrier Repair Moisturizer",
    "Niacinamide 10% Serum",
    "Peptide Eye Cream",
    "Kaolin Clay Mask",
)
_FIRST_NAMES = (
    "Olivia", "Emma", "Ava", "Sophia", "Mia", "Amelia", "Harper", "Evelyn", "Abigail",
    "Ella", "Grace", "Chloe", "Camila", "Priya", "Aisha", "Mei", "Sofia", "Lucia", "Noah",
    "Liam", "James", "Lucas", "Mateo", "Ethan", "Daniel", "Hannah", "Zoe", "Nora", "Layla",
    "Riley", "Maya", "Leah", "Ines", "Yuki", "Fatima", "Jade", "Elena", "Clara", "Ruby",
    "Isla",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen",
    "King", "Wright", "Scott", "Nguyen", "Patel", "Kim", "Chen",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
_AREA_CODES = ("212", "213", "305", "312", "404", "415", "503", "512", "617", "646", "702",
               "718", "801", "206", "303", "310", "347", "917")  # fmt: skip
_EXCHANGES = tuple(e for e in range(201, 1000) if e % 100 != 11)  # no N11 service codes
_TIME_ZONES = (
    ("Eastern Time (US & Canada)", "America/New_York"),
    ("Central Time (US & Canada)", "America/Chicago"),
    ("Mountain Time (US & Canada)", "America/Denver"),
    ("Pacific Time (US & Canada)", "America/Los_Angeles"),
)
_CHANNELS = (("web", 45), ("email", 35), ("native_messaging", 15), ("api", 5))
_CREATE_VIA = {
    "web": "Web form",
    "email": "Mail",
    "native_messaging": "Messaging",
    "api": "Web service",
}
_GOOD_COMMENTS = (
    "Thank you so much!",
    "Super quick help, thanks",
    "Lovely agent, sorted it right away",
    "Great service as always",
)
_BAD_COMMENTS = (
    "Took way too long",
    "Still haven't received my refund",
    "My skin is still irritated and nobody followed up",
    "Had to explain my issue three times",
)
_BAD_REASONS = (
    (5, "The issue took too long to resolve", 360_000_505_005),
    (6, "The issue was not resolved", 360_000_505_006),
    (7, "The agent's knowledge is unsatisfactory", 360_000_505_007),
    (8, "The agent's attitude is unsatisfactory", 360_000_505_008),
    (100, "Some other reason", 360_000_505_100),
)
_NO_SOURCE: dict[str, Any] = {"from": {}, "to": {}, "rel": None}


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _cursor(ts: int, ident: int) -> str:
    # The shape Zendesk uses for incremental cursors: base64("<epoch>.0||<id>|").
    return base64.b64encode(f"{ts}.0||{ident}|".encode()).decode()


# --------------------------------------------------------------------------- generator


@dataclass
class _Person:
    name: str
    email: str | None
    user_ids: tuple[int, ...]  # the first is the main user; a second one is a duplicate


@dataclass
class _Step:
    at: int
    status: str
    actor: int  # _REQUESTER, _AGENT or _RULE


@dataclass
class _Rating:
    rating_id: int
    offered_at: int
    answered_at: int | None
    score: str  # offered / good / bad
    comment: str
    bad_reason: tuple[int, str, int] | None


class _Generator:
    """Per-person generation; counters make ids unique and deterministic across chunks."""

    def __init__(
        self,
        *,
        start_ts: int,
        end_ts: int,
        persons: int,
        users: _PageWriter,
        tickets: _SortedRuns,
        updates: _SortedRuns,
        events: _SortedRuns,
        ratings: _SortedRuns,
    ) -> None:
        self.start_ts = start_ts
        self.end_ts = end_ts
        self.persons = persons
        self.users = users
        self.tickets = tickets
        self.updates = updates
        self.events = events
        self.ratings = ratings
        self.next_user = _USER_ID_BASE
        self.next_ticket = _TICKET_ID_BASE
        self.next_event = _EVENT_ID_BASE
        self.next_rating = _RATING_ID_BASE
        self.rng = random.Random(0)

    # -- users

    def person(self, index: int) -> None:
        rng = self.rng
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        name = f"{first} {last}"
        roll = rng.random()
        active = roll >= 0.01
        phone_only = active and roll < 0.09
        email = None if phone_only else f"{first}.{last}{index}@{rng.choice(_EMAIL_DOMAINS)}"
        if email is not None:
            email = email.lower()
        phone: str | None = None
        if phone_only or rng.random() < 0.3:
            phone = self._phone(index, e164=phone_only or rng.random() < 0.5)
        external_id = str(6_100_000_000_000 + index * 7) if rng.random() < 0.1 else None
        # Users are spread over the year before the window, in export (updated_at) order.
        year_ago = self.start_ts - 365 * _DAY
        updated = year_ago + (index * 365 * _DAY) // max(self.persons, 1)
        created = updated - rng.randrange(0, 400 * _DAY)
        user_id = self._user_id()
        user_ids = [user_id]
        tags = self._user_tags()
        consent = self._consent()
        if not active:  # a deleted user: Zendesk scrubs identifiers
            self._user(user_id, name, None, None, None, created, updated, [], consent, False)
            return
        self._user(user_id, name, email, phone, external_id, created, updated, tags, consent, True)
        if email is not None and rng.random() < 0.01:
            # Same human, second user id (guest checkout, messaging), same email.
            dup_email = email.title() if rng.random() < 0.5 else email
            dup_id = self._user_id()
            user_ids.append(dup_id)
            dup_created = min(updated, created + rng.randrange(_DAY, 200 * _DAY))
            no_consent = dict.fromkeys(consent)  # Zendesk lists every user field, unset: null
            self._user(
                dup_id, first, dup_email, None, None, dup_created, updated, [], no_consent, True
            )
        self._tickets(_Person(name, email, tuple(user_ids)))

    def _user_id(self) -> int:
        self.next_user += 1
        return self.next_user

    def _phone(self, index: int, *, e164: bool) -> str:
        area = self.rng.choice(_AREA_CODES)
        exchange = _EXCHANGES[(index // 10_000) % len(_EXCHANGES)]
        line = index % 10_000
        if e164:
            return f"+1{area}{exchange}{line:04d}"
        style = self.rng.randrange(3)
        if style == 0:
            return f"({area}) {exchange}-{line:04d}"
        if style == 1:
            return f"{area}.{exchange}.{line:04d}"
        return f"+1 {area}-{exchange}-{line:04d}"

    def _user_tags(self) -> list[str]:
        rng = self.rng
        tags = []
        if rng.random() < 0.25:
            tags.append("subscriber")
        if rng.random() < 0.05:
            tags.append("vip")
        if rng.random() < 0.005:
            tags.append("wholesale")
        return tags

    def _consent(self) -> dict[str, Any]:
        rng = self.rng
        ads = rng.random()
        mail = rng.random()
        return {
            "loyalty_tier": rng.choice((None, None, "silver", "gold")),
            "marketing_consent_ads": None if ads < 0.5 else ads < 0.85,
            "marketing_consent_email": None if mail < 0.4 else mail < 0.85,
        }

    def _user(
        self,
        user_id: int,
        name: str,
        email: str | None,
        phone: str | None,
        external_id: str | None,
        created: int,
        updated: int,
        tags: list[str],
        user_fields: dict[str, Any],
        active: bool,
    ) -> None:
        time_zone, iana = self.rng.choice(_TIME_ZONES)
        user: dict[str, Any] = {
            "id": user_id,
            "url": f"{BASE_URL}/api/v2/users/{user_id}.json",
            "name": name,
            "email": email,
            "created_at": _iso(created),
            "updated_at": _iso(updated),
            "time_zone": time_zone,
            "iana_time_zone": iana,
            "phone": phone,
            "shared_phone_number": False if phone else None,
            "photo": None,
            "locale_id": 1,
            "locale": "en-US",
            "organization_id": None,
            "role": "end-user",
            "verified": email is not None,
            "external_id": external_id,
            "tags": tags,
            "alias": None,
            "active": active,
            "shared": False,
            "shared_agent": False,
            "last_login_at": None,
            "two_factor_auth_enabled": False,
            "signature": None,
            "details": None,
            "notes": None,
            "role_type": None,
            "custom_role_id": None,
            "moderator": False,
            "ticket_restriction": "requested",
            "only_private_comments": False,
            "restricted_agent": True,
            "suspended": False,
            "default_group_id": None,
            "report_csv": False,
            "user_fields": user_fields,
        }
        if not active:
            user["permanently_deleted"] = False
        self.users.add(updated, user_id, orjson.dumps(user))

    # -- tickets

    def _tickets(self, person: _Person) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        span = self.end_ts - self.start_ts
        at = self.start_ts + rng.randrange(span)
        previous: tuple[int, _Reason] | None = None
        for _ in range(count):
            if at >= self.end_ts:
                break
            if previous is not None and rng.random() < 0.08:
                # The customer writes again about the same thing; the agent merges it away.
                dup_at = previous[0] + rng.randrange(300, 12 * _HOUR)
                if dup_at < self.end_ts:
                    self._ticket(person, dup_at, previous[1], merged=True)
            reason = rng.choices(_REASONS, weights=_REASON_WEIGHTS)[0]
            self._ticket(person, at, reason, merged=False)
            previous = (at, reason)
            at += rng.randrange(_DAY, 45 * _DAY)

    def _ticket(self, person: _Person, created: int, reason: _Reason, *, merged: bool) -> None:
        rng = self.rng
        self.next_ticket += 1
        ticket_id = self.next_ticket
        requester_id = rng.choice(person.user_ids)
        if person.email is None:
            channel = rng.choice(("native_messaging", "native_messaging", "api"))
        else:
            channel = rng.choices(
                tuple(c for c, _ in _CHANNELS), weights=tuple(w for _, w in _CHANNELS)
            )[0]
        priority = rng.choices(
            tuple(p for p, _ in reason.priorities), weights=tuple(w for _, w in reason.priorities)
        )[0]
        product = rng.choice(_PRODUCTS)
        order = str(100_000 + rng.randrange(900_000))
        subject = rng.choice(reason.subjects).format(product=product, order=order)
        description = rng.choice(reason.descriptions).format(product=product, order=order)
        tags = list(rng.choice(reason.tag_sets))
        if channel == "native_messaging":
            tags.append("messaging")
        field_value = reason.field_value if rng.random() < 0.7 else None
        custom_fields = [
            {"id": REASON_FIELD_ID, "value": field_value},
            {"id": ORDER_FIELD_ID, "value": order if rng.random() < 0.6 else None},
        ]
        deleted = not merged and rng.random() < 0.01
        if merged:
            steps = [
                _Step(created, "new", _REQUESTER),
                _Step(created + rng.randrange(600, 6 * _HOUR), "closed", _AGENT),
            ]
        elif deleted:
            steps = [
                _Step(created, "new", _REQUESTER),
                _Step(created + rng.randrange(300, 2 * _DAY), "deleted", _AGENT),
            ]
        else:
            steps = self._lifecycle(created, reason, priority)
        steps = [s for s in steps if s.at <= self.end_ts]
        rating = None if merged or deleted else self._rating(steps, reason)
        agent = rng.choice(_AGENT_IDS)
        via: dict[str, Any] = {"channel": channel, "source": _NO_SOURCE}
        if channel == "email" and person.email is not None:
            via = {
                "channel": "email",
                "source": {
                    "from": {"address": person.email, "name": person.name},
                    "to": {"name": "Glow Lab Support", "address": f"support@{SUBDOMAIN}.com"},
                    "rel": None,
                },
            }
        base: dict[str, Any] = {
            "url": f"{BASE_URL}/api/v2/tickets/{ticket_id}.json",
            "id": ticket_id,
            "external_id": f"dsp_{ticket_id:08d}" if channel == "api" else None,
            "via": via,
            "created_at": _iso(created),
            "updated_at": None,
            "type": reason.ticket_type if rng.random() < 0.6 else None,
            "subject": subject,
            "raw_subject": subject,
            "description": description,
            "priority": priority,
            "status": None,
            "recipient": f"support@{SUBDOMAIN}.com" if channel == "email" else None,
            "requester_id": requester_id,
            "submitter_id": agent if channel == "api" else requester_id,
            "assignee_id": None,
            "organization_id": None,
            "group_id": _GROUPS[reason.group],
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": None,
            "custom_fields": custom_fields,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "custom_status_id": None,
            "fields": custom_fields,
            "followup_ids": [],
            "ticket_form_id": _TICKET_FORM_ID,
            "brand_id": _BRAND_ID,
            "allow_channelback": channel == "native_messaging",
            "allow_attachments": True,
            "from_messaging_channel": channel == "native_messaging",
            "generated_timestamp": None,
        }
        sorted_tags = sorted(set(tags))
        merged_tags = sorted({*tags, "closed_by_merge"})

        def version(step: _Step) -> tuple[int, bytes]:
            ticket = dict(base)
            ticket["updated_at"] = _iso(step.at)
            ticket["status"] = step.status
            ticket["custom_status_id"] = _CUSTOM_STATUS_IDS[step.status]
            ticket["assignee_id"] = None if step.status == "new" else agent
            is_merge = merged and step.status == "closed"
            ticket["tags"] = merged_tags if is_merge else sorted_tags
            ticket["satisfaction_rating"] = _rating_as_of(rating, step.at)
            ticket["generated_timestamp"] = step.at
            return step.at, orjson.dumps(ticket)

        final = steps[-1]
        earlier = _earlier_version(steps) if rng.random() < 0.25 else None
        if earlier is not None:
            # The first export saw the ticket open (or solved); a later run sees it resolved
            # (or reopened, merged away, deleted).
            at, body = version(earlier)
            self.tickets.add(at, ticket_id, body)
            at, body = version(final)
            self.updates.add(at, ticket_id, body)
        else:
            at, body = version(final)
            self.tickets.add(at, ticket_id, body)
        self._events(ticket_id, steps, channel, requester_id, agent, priority, sorted_tags, merged)
        if rating is not None:
            self._rating_record(rating, ticket_id, requester_id, agent, _GROUPS[reason.group])

    def _lifecycle(self, created: int, reason: _Reason, priority: str | None) -> list[_Step]:
        rng = self.rng
        fast = 3 if priority in ("high", "urgent") else 1
        steps = [_Step(created, "new", _REQUESTER)]
        at = created
        if reason.field_value == "product_question" and rng.random() < 0.3:
            at += rng.randrange(15 * 60, 20 * _HOUR)  # answered and solved in one go
        else:
            at += rng.randrange(15 * 60, 20 * _HOUR) // fast
            steps.append(_Step(at, "open", _AGENT))
            if rng.random() < 0.45:
                at += rng.randrange(30 * 60, 6 * _HOUR)
                steps.append(_Step(at, "pending", _AGENT))
                if rng.random() < 0.65:
                    at += rng.randrange(2 * _HOUR, 60 * _HOUR)
                    steps.append(_Step(at, "open", _REQUESTER))
            elif reason.can_hold and rng.random() < 0.3:
                at += rng.randrange(_HOUR, 8 * _HOUR)
                steps.append(_Step(at, "hold", _AGENT))  # waiting on the warehouse
                at += rng.randrange(_DAY, 5 * _DAY)
                steps.append(_Step(at, "open", _AGENT))
            at += rng.randrange(_HOUR, 48 * _HOUR)
        steps.append(_Step(at, "solved", _AGENT))
        if rng.random() < 0.12:
            at += rng.randrange(6 * _HOUR, 72 * _HOUR)
            steps.append(_Step(at, "open", _REQUESTER))  # "it's still happening"
            at += rng.randrange(2 * _HOUR, 48 * _HOUR)
            steps.append(_Step(at, "solved", _AGENT))
        steps.append(_Step(at + _CLOSE_AFTER_SOLVED, "closed", _RULE))
        return steps

    def _rating(self, steps: Sequence[_Step], reason: _Reason) -> _Rating | None:
        rng = self.rng
        solved = [s for s in steps if s.status == "solved"]
        if steps[-1].status not in ("solved", "closed") or rng.random() >= 0.7:
            return None
        last_solved = solved[-1].at
        offered = last_solved + _RATING_OFFER_DELAY
        if offered > self.end_ts:
            return None
        self.next_rating += 1
        rating = _Rating(self.next_rating, offered, None, "offered", "", None)
        if rng.random() < 0.45:
            latest = min(self.end_ts, last_solved + _CLOSE_AFTER_SOLVED - _HOUR)
            answered = offered + rng.randrange(30 * 60, 60 * _HOUR)
            if answered <= latest:
                reopened = len(solved) > 1
                bad = rng.random() < reason.bad_rating + (0.2 if reopened else 0.0)
                rating.answered_at = answered
                rating.score = "bad" if bad else "good"
                if rng.random() < 0.6:
                    rating.comment = rng.choice(_BAD_COMMENTS if bad else _GOOD_COMMENTS)
                if bad:
                    rating.bad_reason = rng.choice(_BAD_REASONS)
        return rating

    def _rating_record(
        self, rating: _Rating, ticket_id: int, requester_id: int, agent: int, group_id: int
    ) -> None:
        updated = rating.answered_at if rating.answered_at is not None else rating.offered_at
        record: dict[str, Any] = {
            "url": f"{BASE_URL}/api/v2/satisfaction_ratings/{rating.rating_id}.json",
            "id": rating.rating_id,
            "assignee_id": agent,
            "group_id": group_id,
            "requester_id": requester_id,
            "ticket_id": ticket_id,
            "score": rating.score,
            "created_at": _iso(rating.offered_at),
            "updated_at": _iso(updated),
            "comment": rating.comment or None,
        }
        if rating.bad_reason is not None:
            code, text, reason_id = rating.bad_reason
            record["reason"] = text
            record["reason_code"] = code
            record["reason_id"] = reason_id
        self.ratings.add(updated, rating.rating_id, orjson.dumps(record))

    # -- ticket events

    def _events(
        self,
        ticket_id: int,
        steps: Sequence[_Step],
        channel: str,
        requester_id: int,
        agent: int,
        priority: str | None,
        tags: list[str],
        merged: bool,
    ) -> None:
        previous = None
        for step in steps:
            self.next_event += 1
            audit_id = self.next_event  # the audit is created before its child events
            if step.actor == _RULE:
                updater, via = _SYSTEM_UPDATER, "Rule"
            elif step.actor == _AGENT:
                updater, via = agent, "Web form"
            else:
                updater, via = requester_id, _CREATE_VIA[channel]
            children: list[dict[str, Any]] = []
            if previous is None:
                children.append(self._child(via, "Create", status=step.status))
                children.append(self._child(via, "Create", priority=priority))
                if tags:
                    children.append(
                        self._child(via, "Create", tags=tags, added_tags=tags, removed_tags=[])
                    )
                children.append(self._child(via, "Comment", comment_present=True))
            else:
                children.append(
                    self._child(via, "Change", status=step.status, previous_value=previous)
                )
                if merged and step.status == "closed":
                    children.append(
                        self._child(
                            via,
                            "Change",
                            tags=sorted({*tags, "closed_by_merge"}),
                            added_tags=["closed_by_merge"],
                            removed_tags=[],
                            previous_value=tags,
                        )
                    )
                if step.actor != _RULE and step.status != "deleted":
                    children.append(self._child(via, "Comment", comment_present=True))
            previous = step.status
            event = {
                "id": audit_id,
                "ticket_id": ticket_id,
                "timestamp": step.at,
                "created_at": _iso(step.at),
                "updater_id": updater,
                "via": via,
                "event_type": "Audit",
                "child_events": children,
            }
            self.events.add(step.at, audit_id, orjson.dumps(event))

    def _child(self, via: str, event_type: str, **values: Any) -> dict[str, Any]:
        self.next_event += 1
        child: dict[str, Any] = {"id": self.next_event, "via": via, "via_reference_id": None}
        if "comment_present" in values:
            child["comment_present"] = True
            child["comment_public"] = True
        else:
            for key, value in values.items():
                if key != "previous_value":
                    child[key] = value
        child["event_type"] = event_type
        if "previous_value" in values:
            child["previous_value"] = values["previous_value"]
        return child


def _earlier_version(steps: Sequence[_Step]) -> _Step | None:
    """The version an earlier export run saw, on the other side of open/resolved from the
    final one: the last open step before a resolution, or the last solve before a reopen."""
    final_open = steps[-1].status in _OPEN
    for step in reversed(steps[:-1]):
        if (step.status in _OPEN) != final_open:
            return step
    return None


def _rating_as_of(rating: _Rating | None, at: int) -> dict[str, Any]:
    """The ticket's embedded ``satisfaction_rating`` as it stood at ``at``."""
    if rating is None or at < rating.offered_at:
        return {"score": "unoffered"}
    if rating.answered_at is None or at < rating.answered_at:
        return {"score": "offered"}
    embedded: dict[str, Any] = {
        "score": rating.score,
        "id": rating.rating_id,
        "comment": rating.comment or None,
    }
    if rating.bad_reason is not None:
        embedded["reason"] = rating.bad_reason[1]
        embedded["reason_id"] = rating.bad_reason[2]
    return embedded


# --------------------------------------------------------------------------- paging


_Envelope = Callable[[list[bytes], int, tuple[int, int], tuple[int, int], bool], bytes]


class _PageWriter:
    """Writes records into numbered page files; a page is written once the next record (or
    the end) shows whether it is the last one, so ``end_of_stream`` is always right."""

    def __init__(
        self, out_dir: Path, stem: str, page_size: int, envelope: _Envelope, empty_ts: int
    ) -> None:
        self._out_dir = out_dir
        self._stem = stem
        self._page_size = page_size
        self._envelope = envelope
        self._empty_key = (empty_ts, 0)
        self._items: list[bytes] = []
        self._first = self._empty_key
        self._last = self._empty_key
        self.paths: list[Path] = []
        self.count = 0

    def add(self, ts: int, ident: int, item: bytes) -> None:
        if len(self._items) == self._page_size:
            self._write(is_last=False)
        if not self._items:
            self._first = (ts, ident)
        self._items.append(item)
        self._last = (ts, ident)
        self.count += 1

    def close(self) -> tuple[Path, ...]:
        self._write(is_last=True)
        return tuple(self.paths)

    def _write(self, *, is_last: bool) -> None:
        number = len(self.paths) + 1
        path = self._out_dir / f"{self._stem}-{number:04d}.json"
        body = self._envelope(self._items, number, self._first, self._last, is_last)
        path.write_bytes(body)
        self.paths.append(path)
        self._items = []
        self._first = self._last = self._empty_key


def _cursor_envelope(key: str, endpoint: str) -> _Envelope:
    """Incremental cursor export page (tickets, users)."""

    def envelope(
        items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
    ) -> bytes:
        after = _cursor(*last)
        before = _cursor(*first) if number > 1 else None
        meta = {
            "after_url": f"{BASE_URL}{endpoint}?cursor={quote(after, safe='')}",
            "before_url": (
                f"{BASE_URL}{endpoint}?cursor={quote(before, safe='')}" if before else None
            ),
            "after_cursor": after,
            "before_cursor": before,
            "end_of_stream": end,
        }
        return b'{"%s":[%s],%s' % (key.encode(), b",".join(items), orjson.dumps(meta)[1:])

    return envelope


def _ticket_events_envelope(
    items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
) -> bytes:
    """Time-based incremental export page (ticket events)."""
    end_time = last[0]
    meta = {
        "next_page": f"{BASE_URL}/api/v2/incremental/ticket_events.json?start_time={end_time}",
        "count": len(items),
        "end_time": end_time,
        "end_of_stream": end,
    }
    return b'{"ticket_events":[%s],%s' % (b",".join(items), orjson.dumps(meta)[1:])


def _ratings_envelope(
    items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
) -> bytes:
    """Cursor-paginated list page (satisfaction ratings)."""
    endpoint = f"{BASE_URL}/api/v2/satisfaction_ratings.json"
    after = base64.b64encode(b'{"o":"updated_at,id","v":"%d,%d"}' % last).decode()
    before = base64.b64encode(b'{"o":"updated_at,id","v":"%d,%d"}' % first).decode()
    size = f"page%5Bsize%5D={RATINGS_PAGE_SIZE}"
    meta = {
        "meta": {"has_more": not end, "after_cursor": after, "before_cursor": before},
        "links": {
            "prev": (
                f"{endpoint}?page%5Bbefore%5D={quote(before, safe='')}&{size}"
                if number > 1
                else None
            ),
            "next": None if end else f"{endpoint}?page%5Bafter%5D={quote(after, safe='')}&{size}",
        },
    }
    return b'{"satisfaction_ratings":[%s],%s' % (b",".join(items), orjson.dumps(meta)[1:])


_KEY_WIDTH = 10 + 20  # epoch seconds, id; then a tab


class _SortedRuns:
    """External merge sort of records by (time, id): each chunk is sorted and spilled to a
    run file; ``merged()`` streams the union in order. Memory holds one chunk."""

    def __init__(self, tmp_dir: Path, name: str) -> None:
        self._tmp_dir = tmp_dir
        self._name = name
        self._buffer: list[bytes] = []
        self._runs: list[Path] = []
        self._made = 0

    def add(self, ts: int, ident: int, item: bytes) -> None:
        self._buffer.append(b"%010d%020d\t%s\n" % (ts, ident, item))

    def flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        path = self._new_run()
        path.write_bytes(b"".join(self._buffer))
        self._buffer = []

    def _new_run(self) -> Path:
        path = self._tmp_dir / f"{self._name}-{self._made:06d}.run"
        self._made += 1
        self._runs.append(path)
        return path

    def merged(self) -> Iterator[tuple[int, int, bytes]]:
        self.flush()
        runs = self._runs
        while len(runs) > MAX_OPEN_RUNS:  # keep the number of open files bounded
            self._runs = []
            for i in range(0, len(runs), MAX_OPEN_RUNS):
                group = runs[i : i + MAX_OPEN_RUNS]
                with ExitStack() as stack, self._new_run().open("wb") as out:
                    files = [stack.enter_context(p.open("rb")) for p in group]
                    out.writelines(heapq.merge(*files))
                for p in group:
                    p.unlink()
            runs = self._runs
        with ExitStack() as stack:
            files = [stack.enter_context(p.open("rb")) for p in runs]
            for line in heapq.merge(*files):
                yield int(line[:10]), int(line[10:_KEY_WIDTH]), line[_KEY_WIDTH + 1 : -1]


# --------------------------------------------------------------------------- entry points


def generate_exports(
    out_dir: Path,
    *,
    persons: int,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    days: int = 90,
) -> SampleFiles:
    """Write generated Zendesk export pages for ``persons`` customers into ``out_dir``.

    Ticket activity falls in ``[start, start + days]``; users are created before ``start``.
    Previously generated pages in ``out_dir`` are removed first. The same arguments always
    give byte-identical files.
    """
    if persons < 0:
        raise ValueError(f"persons must be >= 0, got {persons}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be timezone-aware, got {start.isoformat()}")
    start_ts = int(start.timestamp())
    if start_ts < 2 * 365 * _DAY:
        raise ValueError(f"start must be after 1972, got {start.isoformat()}")
    end_ts = start_ts + days * _DAY
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem in _STEMS:
        for old in out_dir.glob(f"{stem}-[0-9]*.json"):
            old.unlink()

    tmp_dir = Path(tempfile.mkdtemp(prefix=".sample-", dir=out_dir))
    try:
        users = _PageWriter(
            out_dir,
            USER_STEM,
            PAGE_SIZE,
            _cursor_envelope("users", "/api/v2/incremental/users/cursor.json"),
            start_ts,
        )
        runs = {
            stem: _SortedRuns(tmp_dir, stem)
            for stem in (TICKET_STEM, TICKET_UPDATE_STEM, TICKET_EVENT_STEM, RATING_STEM)
        }
        gen = _Generator(
            start_ts=start_ts,
            end_ts=end_ts,
            persons=persons,
            users=users,
            tickets=runs[TICKET_STEM],
            updates=runs[TICKET_UPDATE_STEM],
            events=runs[TICKET_EVENT_STEM],
            ratings=runs[RATING_STEM],
        )
        for chunk_start in range(0, persons, CHUNK_PERSONS):
            gen.rng = random.Random(f"tactful.sample:{seed}:{chunk_start // CHUNK_PERSONS}")
            for index in range(chunk_start, min(persons, chunk_start + CHUNK_PERSONS)):
                gen.person(index)
            for sorted_runs in runs.values():
                sorted_runs.flush()
        user_pages = users.close()

        ticket_envelope = _cursor_envelope("tickets", "/api/v2/incremental/tickets/cursor.json")
        envelopes: dict[str, tuple[int, _Envelope]] = {
            TICKET_STEM: (PAGE_SIZE, ticket_envelope),
            TICKET_UPDATE_STEM: (PAGE_SIZE, ticket_envelope),
            TICKET_EVENT_STEM: (PAGE_SIZE, _ticket_events_envelope),
            RATING_STEM: (RATINGS_PAGE_SIZE, _ratings_envelope),
        }
        writers: dict[str, _PageWriter] = {}
        for stem, sorted_runs in runs.items():
            page_size, envelope = envelopes[stem]
            writer = _PageWriter(out_dir, stem, page_size, envelope, end_ts)
            for ts, ident, item in sorted_runs.merged():
                writer.add(ts, ident, item)
            writer.close()
            writers[stem] = writer
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    return SampleFiles(
        out_dir=out_dir,
        start=datetime.fromtimestamp(start_ts, UTC),
        end=datetime.fromtimestamp(end_ts, UTC),
        persons=persons,
        user_pages=user_pages,
        ticket_pages=tuple(writers[TICKET_STEM].paths),
        ticket_update_pages=tuple(writers[TICKET_UPDATE_STEM].paths),
        ticket_event_pages=tuple(writers[TICKET_EVENT_STEM].paths),
        rating_pages=tuple(writers[RATING_STEM].paths),
        users=users.count,
        tickets=writers[TICKET_STEM].count,
        ticket_updates=writers[TICKET_UPDATE_STEM].count,
        ticket_events=writers[TICKET_EVENT_STEM].count,
        ratings=writers[RATING_STEM].count,
    )


def _parse_start(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"start needs a UTC offset or Z: {text!r}")
    return value.astimezone(UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tactful.sample",
        description="Write generated Zendesk export pages (users, tickets, ticket events, "
        "satisfaction ratings) for a skincare DTC brand.",
    )
    parser.add_argument("out_dir", type=Path, help="directory for the page files")
    parser.add_argument("--persons", type=int, required=True, help="number of customers")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--start",
        type=_parse_start,
        default=DEFAULT_START,
        help="start of the ticket window, ISO 8601 (default 2026-08-01T00:00:00Z)",
    )
    parser.add_argument("--days", type=int, default=90, help="length of the window in days")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    files = generate_exports(
        args.out_dir, persons=args.persons, seed=args.seed, start=args.start, days=args.days
    )
    seconds = time.perf_counter() - began
    print(
        f"wrote {files.records} records in {len(files.paths)} files to {files.out_dir} "
        f"in {seconds:.1f}s: {files.users} users, {files.tickets} tickets "
        f"(+{files.ticket_updates} later versions), {files.ticket_events} ticket events, "
        f"{files.ratings} satisfaction ratings; window "
        f"{_iso(int(files.start.timestamp()))} .. {_iso(int(files.end.timestamp()))}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

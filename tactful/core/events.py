"""Canonical events: the only input the engine understands.

Vendor payloads (Zendesk JSON, API bodies, files) are translated into these at the edge
(``tactful.zendesk.parse``, ``tactful.web``); the core never sees a vendor dict.

Every event carries ``key``: a stable deduplication key. The same fact delivered twice (a
webhook retry, overlapping export pages, a re-imported file) has the same key and is applied
once. Every event carries ``at``: the moment the fact became true, an aware UTC datetime;
the engine clock advances to it.

Rules:
- Times are aware datetimes in UTC; the edges (parsers, the API) reject naive ones.
- Strings are already normalized where the event says so (statuses lower-case, tags
  lower-case). Identifiers are *raw* here; ``tactful.core.identity`` normalizes them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})
RESOLVED_STATUSES = frozenset({"solved", "closed"})
KNOWN_STATUSES = OPEN_STATUSES | RESOLVED_STATUSES | {"deleted"}
PRIORITIES = ("low", "normal", "high", "urgent")  # ascending
HEALTH_VALUES = ("satisfied", "neutral", "unsatisfied")
Purpose = Literal["ads", "email", "analytics"]  # what consent is given for
CONSENT_PURPOSES: tuple[Purpose, ...] = ("ads", "email", "analytics")

IdentifierKind = Literal["email", "phone", "external_id", "zendesk_user_id", "person_id"]
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = (
    "email",
    "phone",
    "external_id",
    "zendesk_user_id",
)


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a person, e.g. ``Identifier("email", "ann@example.com")``."""

    kind: IdentifierKind
    value: str


@dataclass(frozen=True, slots=True)
class TicketVersion:
    """One version of a Zendesk ticket as seen at ``updated_at`` (export row or webhook).

    ``status`` is lower-case and may be ``deleted``. ``priority`` is lower-case or None.
    ``requester_id`` is the Zendesk user id; ``requester`` carries inline identifiers when
    the source has them (trigger webhooks send the requester's email/phone/external id).
    ``custom_fields`` maps the Zendesk field id (as a string) to its value(s) as strings.
    ``brand_id`` is the Zendesk brand the ticket belongs to (an account may have several),
    None when the source does not say.
    """

    key: str
    at: datetime  # == updated_at
    ticket_id: int
    created_at: datetime
    updated_at: datetime
    status: str
    priority: str | None
    tags: tuple[str, ...]
    subject: str
    channel: str
    requester_id: int | None
    requester: tuple[Identifier, ...] = ()
    custom_fields: tuple[tuple[str, str], ...] = ()
    brand_id: int | None = None


@dataclass(frozen=True, slots=True)
class TicketStatusChanged:
    """A status change of a ticket at an exact moment (from Zendesk ticket events)."""

    key: str
    at: datetime
    ticket_id: int
    status: str
    previous_status: str | None = None


@dataclass(frozen=True, slots=True)
class TicketText:
    """What someone wrote on a ticket (its description or a public comment), reduced at the
    edge (``tactful.reasons.text``): the text itself never enters Tactful's store.

    ``terms`` are the distinct lower-case words, sorted (no order, no numbers, no addresses);
    ``sentiment`` is VADER's compound score in [-1, 1] (None: a language VADER does not
    read); ``language`` is an ISO 639-1 code or ``""`` when unknown. ``author_id`` is the
    Zendesk user who wrote it (None: the requester, as for a description); only the
    requester's own words count for the ticket's reason and sentiment.
    """

    key: str
    at: datetime
    ticket_id: int
    author_id: int | None
    terms: tuple[str, ...]
    sentiment: float | None
    language: str = ""


@dataclass(frozen=True, slots=True)
class UserSeen:
    """A Zendesk user (export row or webhook) with its identities at ``updated_at``.

    ``fields`` holds user fields (``user_fields`` in Zendesk) as strings; consent can be
    read from them. ``tags`` are the user's tags. ``name`` is the user's name (the users
    export and API give it; the webhooks only in ``user.name_changed``): the dashboard
    finds people by it.
    """

    key: str
    at: datetime
    zendesk_user_id: int
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    active: bool = True
    tags: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    name: str | None = None  # the user's name, when the source gives it


@dataclass(frozen=True, slots=True)
class UserMerged:
    """Zendesk merged user ``source_user_id`` into ``target_user_id``."""

    key: str
    at: datetime
    source_user_id: int
    target_user_id: int


@dataclass(frozen=True, slots=True)
class UserDeleted:
    """Zendesk deleted a user; ``permanent`` means an erasure request (GDPR)."""

    key: str
    at: datetime
    zendesk_user_id: int
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class RatingGiven:
    """A satisfaction rating: a legacy satisfaction rating (``rating_id`` an integer, ``score``
    ``good``/``bad`` or 1-5) or a CSAT survey response (``rating_id`` Zendesk's string id,
    ``score`` 1..``scale`` on the survey's 2-, 3- or 5-point rating scale)."""

    key: str
    at: datetime
    rating_id: int | str
    ticket_id: int | None
    requester_id: int | None
    score: int | Literal["good", "bad"]
    requester: tuple[Identifier, ...] = ()
    scale: int = 5


@dataclass(frozen=True, slots=True)
class HealthSet:
    """An agent (or another system) set the customer's health."""

    key: str
    at: datetime
    person: Identifier
    health: str  # one of HEALTH_VALUES
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ConsentSet:
    """Consent for one purpose (``ads``, ``email``, ``analytics``) was given or withdrawn."""

    key: str
    at: datetime
    person: Identifier
    purpose: str  # one of CONSENT_PURPOSES
    granted: bool
    source: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeRecorded:
    """An outcome from another system: an order, an unsubscribe, a complaint, a re-contact.

    Stored and attached to the person; measurement (value score, reports) reads them.
    """

    key: str
    at: datetime
    person: Identifier
    outcome: str  # order | unsubscribe | complaint | recontact | ...
    amount: float | None = None
    currency: str | None = None
    properties: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PersonErased:
    """Erase a person (GDPR/CCPA): delete their data here and at every destination."""

    key: str
    at: datetime
    person: Identifier
    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class OverrideSet:
    """An agent suppressed promos for this person until ``until`` (None lifts it)."""

    key: str
    at: datetime
    person: Identifier
    until: datetime | None
    actor: str = ""


Event = (
    TicketVersion
    | TicketStatusChanged
    | TicketText
    | UserSeen
    | UserMerged
    | UserDeleted
    | RatingGiven
    | HealthSet
    | ConsentSet
    | OutcomeRecorded
    | PersonErased
    | OverrideSet
)


def time_order(event: Event) -> tuple[datetime, str]:
    """The order events are applied in: by time, then by key (stable for equal times)."""
    return event.at, event.key


T = TypeVar("T", bound=tuple[Any, ...])


def merge_by_time(iterables: Iterable[Iterable[T]]) -> Iterator[T]:
    """Merge streams of items that each start with (time, key) and are each in that order
    (``time_order``), into one stream in that order (an import's files, a backfill's
    streams)."""
    return heapq.merge(*iterables, key=lambda item: (item[0], item[1]))


EVENT_TYPES: dict[str, type[Event]] = {
    "ticket_version": TicketVersion,
    "ticket_status_changed": TicketStatusChanged,
    "ticket_text": TicketText,
    "user_seen": UserSeen,
    "user_merged": UserMerged,
    "user_deleted": UserDeleted,
    "rating_given": RatingGiven,
    "health_set": HealthSet,
    "consent_set": ConsentSet,
    "outcome_recorded": OutcomeRecorded,
    "person_erased": PersonErased,
    "override_set": OverrideSet,
}
EVENT_KIND: dict[type[Event], str] = {cls: name for name, cls in EVENT_TYPES.items()}

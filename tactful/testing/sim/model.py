"""In-memory records of the fake Zendesk (``tactful.testing.sim``): users, tickets, ratings, audits.

These are the simulator's own mutable records; ``tactful.testing.sim.objects`` renders them in
Zendesk's JSON shapes. Times are aware UTC datetimes on the simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Json = dict[str, Any]
Actor = Literal["requester", "agent", "rule"]
DEFAULT_START = datetime(2026, 8, 1, tzinfo=UTC)
PERMANENT_NAME = "Permanently Deleted User"  # the name Zendesk gives a permanently deleted user


class SimClock:
    """The simulated clock: moves only when told to (``advance`` / ``set``)."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the simulated clock does not go back")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> datetime:
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("the simulated clock does not go back")
        self._now = when
        return self._now


Clock = Callable[[], datetime]


@dataclass
class SimUser:
    id: int
    name: str
    email: str | None
    phone: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    user_fields: Json = field(default_factory=dict)
    active: bool = True
    role: str = "end-user"
    merged_into: int | None = None
    deleted: bool = False  # deleted (soft) through delete_user
    permanently_deleted: bool = False


@dataclass
class SimTicket:
    id: int
    subject: str
    description: str
    requester_id: int
    submitter_id: int
    status: str
    priority: str | None
    type: str | None
    tags: list[str]
    custom_fields: list[Json]
    channel: str
    created_at: datetime
    updated_at: datetime
    assignee_id: int | None = None
    group_id: int | None = None
    external_id: str | None = None
    rating_id: int | None = None
    brand_id: int | None = None  # None: the account's default brand
    versions: list[Json] = field(default_factory=list)  # API JSON after every change


@dataclass
class SimRating:
    id: int
    ticket_id: int
    requester_id: int
    assignee_id: int | None
    group_id: int | None
    score: str  # offered / good / bad
    comment: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class SimSurveyResponse:
    """A response to the current (customizable) CSAT survey: ``rating`` on ``points``."""

    id: str  # a ULID, as Zendesk's survey response ids are
    ticket_id: int
    responder_id: int
    rating: int
    points: int  # the survey's rating scale: 2, 3 or 5
    created_at: datetime
    updated_at: datetime


@dataclass
class SimAudit:
    """One ticket update as the ticket events export shows it (an ``Audit``)."""

    id: int
    ticket_id: int
    at: datetime
    updater_id: int
    via: str  # display text, e.g. "Web form", "Mail", "Rule"
    children: list[Json]


@dataclass(frozen=True)
class Activity:
    """One change that Zendesk would notify about (webhooks read these in order).

    ``events`` are event-subscription types (``ticket.status_changed`` …) with their
    ``event`` objects; ``update_type`` is ``Create``/``Change`` when ticket triggers run.
    ``snapshot`` is the API JSON of the ticket or user after the change, ``previous`` before.
    """

    seq: int
    at: datetime
    resource: Literal["ticket", "user"]
    resource_id: int
    snapshot: Json
    previous: Json | None
    events: tuple[tuple[str, Json], ...]
    update_type: Literal["Create", "Change"] | None
    actor_id: int
    requester: Json | None = None

"""The state every part of the simulator shares: clock, records, ids, API controls."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from tactful.testing.sample import SUBDOMAIN
from tactful.testing.sim.controls import Faults, RateLimiter, RequestRecord
from tactful.testing.sim.model import (
    DEFAULT_START,
    Activity,
    Clock,
    Json,
    SimAudit,
    SimClock,
    SimRating,
    SimSurveyResponse,
    SimTicket,
    SimUser,
)
from tactful.testing.sim.objects import ticket_json, user_json

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class SimCore:
    """In-memory Zendesk account: users, tickets (every version), audits, ratings, webhooks,
    triggers, and the activity log webhook senders read.

    ``clock``: a ``SimClock`` (default: one starting at ``start``). ``rate_clock``: the clock
    of the rate-limit window (default the simulated clock; pass a wall-clock function to limit
    in real time). API credentials: ``email`` and ``api_token`` (HTTP Basic
    ``{email}/token:{api_token}``). ``export_lag``: incremental exports leave out what changed
    within that much of ``now`` (Zendesk: one minute; default 0 for simple tests).
    """

    def __init__(
        self,
        *,
        start: datetime = DEFAULT_START,
        clock: SimClock | None = None,
        subdomain: str = SUBDOMAIN,
        account_id: int = 18_525_119,
        email: str = "admin@glowlab.example",
        api_token: str = "sim-api-token",
        seed: int = 7,
        rate_limit_per_minute: int = 10,
        general_rate_limit_per_minute: int = 700,
        rate_clock: Clock | None = None,
        export_lag: timedelta = timedelta(0),
    ) -> None:
        self.clock = clock or SimClock(start)
        self.lock = threading.RLock()
        self.subdomain = subdomain
        self.base_url = f"https://{subdomain}.zendesk.com"
        self.account_id = account_id
        self.email = email
        self.api_token = api_token
        self.export_lag = export_lag
        self.rng = random.Random(seed)
        window = rate_clock or self.clock
        self.incremental_limit = RateLimiter(rate_limit_per_minute, window)
        self.general_limit = RateLimiter(general_rate_limit_per_minute, window)
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self.users: dict[int, SimUser] = {}
        self.tickets: dict[int, SimTicket] = {}
        self.ratings: dict[int, SimRating] = {}
        self.survey_responses: dict[str, SimSurveyResponse] = {}
        self.audits: list[SimAudit] = []
        self.activities: list[Activity] = []
        self.webhooks: dict[str, Json] = {}
        self.signing_secrets: dict[str, str] = {}
        self.triggers: dict[int, Json] = {}
        self.since: dict[str, int] = {}  # webhook/trigger id → activities before it existed
        self.agent_id = 20_000_000_100_001
        self._next = {"user": 21_000_000_000_000, "ticket": 1000, "event": 26_000_000_000_000}
        self._next.update({"rating": 31_000_000_000_000, "trigger": 360_000_000_000})

    # -- clock and ids

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, delta: timedelta) -> datetime:
        """Move the simulated clock forward."""
        with self.lock:
            return self.clock.advance(delta)

    def next_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind]

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_ulid(self) -> str:
        return "01" + "".join(self.rng.choice(_CROCKFORD) for _ in range(24))

    def new_secret(self) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(44))

    # -- API JSON of current records

    def user_api(self, user_id: int) -> Json:
        return user_json(self.users[user_id], self.base_url, self.user_field_keys())

    def user_field_keys(self) -> list[str]:
        """The account's user fields: every key any user has a value for."""
        return sorted({k for u in self.users.values() for k in u.user_fields})

    def ticket_api(self, ticket_id: int) -> Json:
        ticket = self.tickets[ticket_id]
        rating = self.ratings.get(ticket.rating_id) if ticket.rating_id else None
        return ticket_json(ticket, self.base_url, rating)

    def record(self, activity: Activity) -> None:
        self.activities.append(activity)

"""Test helpers shipped with the package: a settable clock and canonical event builders.

Used by Tactful's own tests and useful to anyone testing rules against their config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tactful.bootstrap import bootstrap
from tactful.config import Settings, settings_from_toml
from tactful.core.events import (
    ConsentSet,
    HealthSet,
    Identifier,
    RatingGiven,
    TicketStatusChanged,
    TicketVersion,
    UserMerged,
    UserSeen,
)
from tactful.destinations.base import ItemKind
from tactful.engine.engine import SALT_KEY, Engine
from tactful.store.sqlite import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def at(hours: float = 0, *, days: float = 0, base: datetime = T0) -> datetime:
    return base + timedelta(hours=hours, days=days)


def ticket(
    ticket_id: int,
    updated_at: datetime,
    status: str = "open",
    *,
    requester_id: int | None = 1,
    created_at: datetime | None = None,
    priority: str | None = "normal",
    tags: tuple[str, ...] = (),
    subject: str = "A question",
    channel: str = "email",
    requester: tuple[Identifier, ...] = (),
    custom_fields: tuple[tuple[str, str], ...] = (),
) -> TicketVersion:
    return TicketVersion(
        # Zendesk changes updated_at with every change, so (id, updated_at) names one version;
        # the extra content here keeps generated test data realistic in that respect.
        key=f"zendesk:ticket:{ticket_id}:{updated_at.isoformat()}:{status}:{requester_id}:"
        f"{priority}:{','.join(tags)}:{channel}:{subject}",
        at=updated_at,
        ticket_id=ticket_id,
        created_at=created_at or updated_at,
        updated_at=updated_at,
        status=status,
        priority=priority,
        tags=tags,
        subject=subject,
        channel=channel,
        requester_id=requester_id,
        requester=requester,
        custom_fields=custom_fields,
    )


def status_change(
    ticket_id: int, when: datetime, status: str, key: str = ""
) -> TicketStatusChanged:
    return TicketStatusChanged(
        key=key or f"zendesk:ticket_event:{ticket_id}:{when.isoformat()}:{status}",
        at=when,
        ticket_id=ticket_id,
        status=status,
    )


def user(
    user_id: int,
    when: datetime = T0,
    *,
    emails: tuple[str, ...] = (),
    phones: tuple[str, ...] = (),
    external_ids: tuple[str, ...] = (),
    fields: tuple[tuple[str, str], ...] = (),
) -> UserSeen:
    return UserSeen(
        key=f"zendesk:user:{user_id}:{when.isoformat()}:{','.join(emails)}",
        at=when,
        zendesk_user_id=user_id,
        emails=emails,
        phones=phones,
        external_ids=external_ids,
        fields=fields,
    )


def rating(
    rating_id: int,
    when: datetime,
    score: int | Literal["good", "bad"],
    *,
    requester_id: int = 1,
    ticket_id: int = 1,
) -> RatingGiven:
    return RatingGiven(
        key=f"zendesk:rating:{rating_id}:{when.isoformat()}:{requester_id}:{score}",
        at=when,
        rating_id=rating_id,
        ticket_id=ticket_id,
        requester_id=requester_id,
        score=score,
    )


def health(when: datetime, value: str, *, zendesk_user_id: int = 1) -> HealthSet:
    return HealthSet(
        key=f"health:{zendesk_user_id}:{when.isoformat()}:{value}",
        at=when,
        person=Identifier("zendesk_user_id", str(zendesk_user_id)),
        health=value,
    )


def consent(when: datetime, purpose: str, granted: bool, *, email: str) -> ConsentSet:
    return ConsentSet(
        key=f"consent:{email}:{purpose}:{when.isoformat()}",
        at=when,
        person=Identifier("email", email),
        purpose=purpose,
        granted=granted,
    )


def user_merge(source: int, target: int, when: datetime) -> UserMerged:
    return UserMerged(
        key=f"zendesk:merge:{source}:{target}",
        at=when,
        source_user_id=source,
        target_user_id=target,
    )


@dataclass
class Harness:
    """An engine on a store (in memory by default) built from a config text."""

    settings: Settings
    engine: Engine
    clock: FakeClock = field(default_factory=FakeClock)


# Where ``harness()`` and ``new_store_url()`` put stores: a fresh in-memory SQLite by
# default; the test suite points it at fresh PostgreSQL databases to run the same tests there.
store_url_factory: list[Callable[[], str]] = [lambda: "sqlite:///:memory:"]


def new_store_url(directory: Any = None) -> str:
    """A fresh store URL: a SQLite file in ``directory`` (in memory without one), or a fresh
    database of the store the suite is running on."""
    if len(store_url_factory) == 1 and directory is not None:
        return f"sqlite:///{directory}/t.db"
    return store_url_factory[-1]()


def harness(config_toml: str, url: str | None = None, *, salt: str | None = None) -> Harness:
    """``salt``: the store's person-id salt, set before anything is applied, so that two
    stores given the same events get the same person ids (and holdout draws)."""
    settings = settings_from_toml(config_toml, environ={})
    clock = FakeClock()
    store = open_store(url or new_store_url())
    if salt is not None:
        with store.transaction() as tx:
            tx.set_meta(SALT_KEY, salt)
    return Harness(settings, bootstrap(settings, clock=clock, store=store).engine, clock)


# Rules with a state, a cooldown and time windows: enough for segment entries, exits and
# timers to depend on when each event is applied.
TIMED_RULES = """
[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"

[[segments]]
name = "recent"
when = "last_ticket_at within 3d"
"""


class RecordingDestination:
    """An in-memory destination that records what it was sent; scripted outcomes."""

    def __init__(
        self,
        name: str,
        type: str = "webhook",
        *,
        max_batch: int = 100,
        purpose: str = "analytics",
        kinds: tuple[ItemKind, ...] = (
            "audience_add",
            "audience_remove",
            "profile",
            "event",
            "erase",
        ),
    ) -> None:
        from tactful.destinations.base import Capabilities

        self.name = name
        self.type = type
        self.purpose = purpose
        self.segments = None
        self.capabilities = Capabilities(
            max_batch=max_batch,
            kinds=frozenset(kinds),
        )
        self.sent: list[Any] = []  # every Item in the order sent (ok or not)
        self.delivered: list[Any] = []  # Items acknowledged ok
        self.script: list[Any] = []  # Outcomes to answer next, one per item (then ok)

    def send(self, items: Any) -> list[Any]:
        from tactful.destinations.base import Outcome

        outcomes = []
        for item in items:
            self.sent.append(item)
            outcome = self.script.pop(0) if self.script else Outcome.ok()
            if outcome.kind == "ok":
                self.delivered.append(item)
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        pass


# Three destinations, one of each role (an ad audience following ``suppress``, an ESP, an
# event sink), as tests configure them; ``recording_destinations`` stands in for them.
DESTINATIONS_TOML = {
    "meta": '\n[[destinations]]\nname = "meta"\ntype = "meta_audience"\nsegment = "suppress"\n'
    'audience_id = "123"\naccess_token = "tok"\n',
    "cio": '\n[[destinations]]\nname = "cio"\ntype = "customerio"\nsite_id = "s"\napi_key = "k"\n',
    "hook": '\n[[destinations]]\nname = "hook"\ntype = "webhook"\n'
    'url = "https://hooks.example.com/t"\n'
    'secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="\n',
}
_RECORDED: dict[str, tuple[str, str, tuple[ItemKind, ...]]] = {
    "meta": ("meta_audience", "ads", ("audience_add", "audience_remove")),
    "cio": ("customerio", "email", ("profile", "event", "erase")),
    "hook": ("webhook", "analytics", ("event",)),
}


def destinations_toml(*names: str) -> str:
    """The ``[[destinations]]`` of ``names`` (default all three) as TOML."""
    return "".join(DESTINATIONS_TOML[n] for n in names or DESTINATIONS_TOML)


def recording_destinations(*names: str) -> dict[str, RecordingDestination]:
    """Recording stand-ins for the destinations of ``destinations_toml(*names)``."""
    return {
        n: RecordingDestination(n, _RECORDED[n][0], purpose=_RECORDED[n][1], kinds=_RECORDED[n][2])
        for n in names or _RECORDED
    }

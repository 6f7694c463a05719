"""What the generator produces: the ``SampleFiles`` summary and the records it works with
(persons, ticket status steps, satisfaction ratings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


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

"""What parsing a Zendesk document gives: the canonical events and the records skipped."""

from __future__ import annotations

from dataclasses import dataclass

from tactful.core.events import Event


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that produced no event; ``where`` is e.g. ``tickets[17] (id 42)``."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class Parsed:
    events: list[Event]
    skipped: list[Skipped]
    shape: str  # tickets_page, users_page, ratings_page, survey_responses_page, ...

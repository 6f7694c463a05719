"""State shared by the generator parts: the window, the sinks and the id counters."""

from __future__ import annotations

import random

from tactful.testing.sample.constants import (
    _EVENT_ID_BASE,
    _RATING_ID_BASE,
    _TICKET_ID_BASE,
    _USER_ID_BASE,
)
from tactful.testing.sample.pages import _PageWriter, _SortedRuns


class _GeneratorState:
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

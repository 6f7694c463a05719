"""The generator: a person's users, then their tickets (with events and ratings)."""

from __future__ import annotations

from tactful.testing.sample.people import _UserGenerator
from tactful.testing.sample.tickets import _TicketGenerator


class _Generator(_UserGenerator, _TicketGenerator):
    """Per-person generation; counters make ids unique and deterministic across chunks."""

    def person(self, index: int) -> None:
        person = self._person_users(index)
        if person is not None:
            self._tickets(person)

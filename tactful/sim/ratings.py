"""Satisfaction ratings of the simulator (mixed into ``ZendeskSimulator``).

``offer_rating`` is Zendesk's "request customer satisfaction" automation (score ``offered``);
``rate`` is the requester's answer (``good`` / ``bad``, the satisfaction ratings API's
binary scores). Both update the ticket (its embedded ``satisfaction_rating``) at ``now``.
"""

from __future__ import annotations

from tactful.sim.model import Actor, SimRating, SimTicket
from tactful.sim.tickets import TicketStory


class RatingStory(TicketStory):
    def _rating_update(self, t: SimTicket, score: str, comment: str | None) -> SimRating:
        now = self.now()
        rating = self.ratings.get(t.rating_id) if t.rating_id else None
        if rating is None:
            rating = SimRating(
                self.next_id("rating"), t.id, t.requester_id, t.assignee_id, t.group_id,
                score, comment, now, now,
            )  # fmt: skip
            self.ratings[rating.id] = rating
            t.rating_id = rating.id
        rating.score, rating.comment, rating.updated_at = score, comment, now
        return rating

    def offer_rating(self, ticket_id: int) -> int:
        """The satisfaction survey is sent (score ``offered``); returns the rating id."""
        return self._rate(ticket_id, "offered", None, "rule")

    def rate(self, ticket_id: int, score: str, comment: str | None = None) -> int:
        """The requester rates the ticket ``good`` or ``bad``; returns the rating id."""
        if score not in ("good", "bad"):
            raise ValueError(f"score must be good or bad, not {score!r}")
        return self._rate(ticket_id, score, comment, "requester")

    def _rate(self, ticket_id: int, score: str, comment: str | None, actor: Actor) -> int:
        with self.lock:
            t = self.tickets[ticket_id]
            if t.status not in ("solved", "closed"):
                raise ValueError(f"ticket {ticket_id} is {t.status}: only solved tickets are rated")
            previous = self.ticket_api(ticket_id)
            old = previous["satisfaction_rating"]["score"]
            rating = self._rating_update(t, score, comment)
            via = self._via(t, actor)
            child = self._child(via, "Change", satisfaction_score=score, previous_value=old)
            t.updated_at = self.now()
            audit = (self.next_id("event"), self._actor_id(t, actor), via, [child])
            self._commit(t, previous, audit, [], "Change")
            return rating.id

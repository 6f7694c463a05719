"""Satisfaction ratings of the simulator (mixed into ``ZendeskSimulator``).

``offer_rating`` is Zendesk's "request customer satisfaction" automation (score ``offered``);
``rate`` is the requester's answer (``good`` / ``bad``, the satisfaction ratings API's
binary scores). Both update the ticket (its embedded ``satisfaction_rating``) at ``now``.
``respond_survey`` is an answer to the current CSAT survey (a survey response on a 2-, 3- or
5-point scale, ``/api/v2/guide/survey_responses``); a later answer edits the same response.
"""

from __future__ import annotations

from tactful.testing.sim.model import Actor, SimRating, SimSurveyResponse, SimTicket
from tactful.testing.sim.tickets import TicketStory

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like(number: int) -> str:
    """A 26-character Crockford base-32 id, as Zendesk's survey response ids (ULIDs) are."""
    digits = []
    for _ in range(24):
        number, rest = divmod(number, 32)
        digits.append(_CROCKFORD[rest])
    return "01" + "".join(reversed(digits))


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

    def respond_survey(self, ticket_id: int, rating: int, points: int = 5) -> str:
        """The requester answers the ticket's CSAT survey with ``rating`` (1..``points``);
        answering again edits the response. Returns the survey response id."""
        if points not in (2, 3, 5) or not 1 <= rating <= points:
            raise ValueError(f"rating {rating} is not on a {points}-point scale")
        with self.lock:
            t = self.tickets[ticket_id]
            if t.status not in ("solved", "closed"):
                raise ValueError(f"ticket {ticket_id} is {t.status}: only solved tickets are rated")
            now = self.now()
            found = next(
                (r for r in self.survey_responses.values() if r.ticket_id == ticket_id), None
            )
            if found is None:
                found = SimSurveyResponse(
                    ulid_like(self.next_id("rating")), ticket_id, t.requester_id, rating, points,
                    now, now,
                )  # fmt: skip
                self.survey_responses[found.id] = found
            found.rating, found.points, found.updated_at = rating, points, now
            return found.id

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

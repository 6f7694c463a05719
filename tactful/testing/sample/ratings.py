"""Satisfaction ratings: offered a day after solving, some answered good or bad."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tactful.testing.sample.constants import (
    _CLOSE_AFTER_SOLVED,
    _HOUR,
    _RATING_OFFER_DELAY,
    BASE_URL,
    _iso,
)
from tactful.testing.sample.model import _Rating, _Step
from tactful.testing.sample.state import _GeneratorState
from tactful.testing.sample.story import _BAD_COMMENTS, _BAD_REASONS, _GOOD_COMMENTS, _Reason


class _RatingGenerator(_GeneratorState):
    """Decides and writes a ticket's satisfaction rating."""

    def _rating(self, steps: Sequence[_Step], reason: _Reason) -> _Rating | None:
        rng = self.rng
        solved = [s for s in steps if s.status == "solved"]
        if steps[-1].status not in ("solved", "closed") or rng.random() >= 0.7:
            return None
        last_solved = solved[-1].at
        offered = last_solved + _RATING_OFFER_DELAY
        if offered > self.end_ts:
            return None
        self.next_rating += 1
        rating = _Rating(self.next_rating, offered, None, "offered", "", None)
        if rng.random() < 0.45:
            latest = min(self.end_ts, last_solved + _CLOSE_AFTER_SOLVED - _HOUR)
            answered = offered + rng.randrange(30 * 60, 60 * _HOUR)
            if answered <= latest:
                reopened = len(solved) > 1
                bad = rng.random() < reason.bad_rating + (0.2 if reopened else 0.0)
                rating.answered_at = answered
                rating.score = "bad" if bad else "good"
                if rng.random() < 0.6:
                    rating.comment = rng.choice(_BAD_COMMENTS if bad else _GOOD_COMMENTS)
                if bad:
                    rating.bad_reason = rng.choice(_BAD_REASONS)
        return rating

    def _rating_record(
        self, rating: _Rating, ticket_id: int, requester_id: int, agent: int, group_id: int
    ) -> None:
        updated = rating.answered_at if rating.answered_at is not None else rating.offered_at
        record: dict[str, Any] = {
            "url": f"{BASE_URL}/api/v2/satisfaction_ratings/{rating.rating_id}.json",
            "id": rating.rating_id,
            "assignee_id": agent,
            "group_id": group_id,
            "requester_id": requester_id,
            "ticket_id": ticket_id,
            "score": rating.score,
            "created_at": _iso(rating.offered_at),
            "updated_at": _iso(updated),
            "comment": rating.comment or None,
        }
        if rating.bad_reason is not None:
            code, text, reason_id = rating.bad_reason
            record["reason"] = text
            record["reason_code"] = code
            record["reason_id"] = reason_id
        self.ratings.add(updated, rating.rating_id, orjson.dumps(record))

    # -- ticket events


def _rating_as_of(rating: _Rating | None, at: int) -> dict[str, Any]:
    """The ticket's embedded ``satisfaction_rating`` as it stood at ``at``."""
    if rating is None or at < rating.offered_at:
        return {"score": "unoffered"}
    if rating.answered_at is None or at < rating.answered_at:
        return {"score": "offered"}
    embedded: dict[str, Any] = {
        "score": rating.score,
        "id": rating.rating_id,
        "comment": rating.comment or None,
    }
    if rating.bad_reason is not None:
        embedded["reason"] = rating.bad_reason[1]
        embedded["reason_id"] = rating.bad_reason[2]
    return embedded

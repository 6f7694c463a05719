"""Tickets: subjects, tags and custom fields, status lifecycles, merges and deletions, and the
ticket versions seen by the first and a later export run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tactful.testing.sample.constants import (
    _AGENT,
    _AGENT_IDS,
    _CLOSE_AFTER_SOLVED,
    _DAY,
    _GROUPS,
    _HOUR,
    _OPEN,
    _REQUESTER,
    _RULE,
    BASE_URL,
    ORDER_FIELD_ID,
    REASON_FIELD_ID,
    SUBDOMAIN,
    _iso,
)
from tactful.testing.sample.documents import (
    BRAND_ID,
    CUSTOM_STATUS_IDS,
    NO_SOURCE,
    ticket_document,
)
from tactful.testing.sample.events import _EventGenerator
from tactful.testing.sample.model import _Person, _Step
from tactful.testing.sample.ratings import _rating_as_of, _RatingGenerator
from tactful.testing.sample.story import _CHANNELS, _PRODUCTS, _REASON_WEIGHTS, _REASONS, _Reason


class _TicketGenerator(_EventGenerator, _RatingGenerator):
    """Writes the tickets of a person, with their audits and satisfaction ratings."""

    def _tickets(self, person: _Person) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        span = self.end_ts - self.start_ts
        at = self.start_ts + rng.randrange(span)
        previous: tuple[int, _Reason] | None = None
        for _ in range(count):
            if at >= self.end_ts:
                break
            if previous is not None and rng.random() < 0.08:
                # The customer writes again about the same thing; the agent merges it away.
                dup_at = previous[0] + rng.randrange(300, 12 * _HOUR)
                if dup_at < self.end_ts:
                    self._ticket(person, dup_at, previous[1], merged=True)
            reason = rng.choices(_REASONS, weights=_REASON_WEIGHTS)[0]
            self._ticket(person, at, reason, merged=False)
            previous = (at, reason)
            at += rng.randrange(_DAY, 45 * _DAY)

    def _ticket(self, person: _Person, created: int, reason: _Reason, *, merged: bool) -> None:
        rng = self.rng
        self.next_ticket += 1
        ticket_id = self.next_ticket
        requester_id = rng.choice(person.user_ids)
        if person.email is None:
            channel = rng.choice(("native_messaging", "native_messaging", "api"))
        else:
            channel = rng.choices(
                tuple(c for c, _ in _CHANNELS), weights=tuple(w for _, w in _CHANNELS)
            )[0]
        priority = rng.choices(
            tuple(p for p, _ in reason.priorities), weights=tuple(w for _, w in reason.priorities)
        )[0]
        product = rng.choice(_PRODUCTS)
        order = str(100_000 + rng.randrange(900_000))
        subject = rng.choice(reason.subjects).format(product=product, order=order)
        description = rng.choice(reason.descriptions).format(product=product, order=order)
        tags = list(rng.choice(reason.tag_sets))
        if channel == "native_messaging":
            tags.append("messaging")
        field_value = reason.field_value if rng.random() < 0.7 else None
        custom_fields = [
            {"id": REASON_FIELD_ID, "value": field_value},
            {"id": ORDER_FIELD_ID, "value": order if rng.random() < 0.6 else None},
        ]
        deleted = not merged and rng.random() < 0.01
        if merged:
            steps = [
                _Step(created, "new", _REQUESTER),
                _Step(created + rng.randrange(600, 6 * _HOUR), "closed", _AGENT),
            ]
        elif deleted:
            steps = [
                _Step(created, "new", _REQUESTER),
                _Step(created + rng.randrange(300, 2 * _DAY), "deleted", _AGENT),
            ]
        else:
            steps = self._lifecycle(created, reason, priority)
        steps = [s for s in steps if s.at <= self.end_ts]
        rating = None if merged or deleted else self._rating(steps, reason)
        agent = rng.choice(_AGENT_IDS)
        via: dict[str, Any] = {"channel": channel, "source": NO_SOURCE}
        if channel == "email" and person.email is not None:
            via = {
                "channel": "email",
                "source": {
                    "from": {"address": person.email, "name": person.name},
                    "to": {"name": "Glow Lab Support", "address": f"support@{SUBDOMAIN}.com"},
                    "rel": None,
                },
            }
        base = ticket_document(
            base_url=BASE_URL,
            ticket_id=ticket_id,
            external_id=f"dsp_{ticket_id:08d}" if channel == "api" else None,
            via=via,
            created_at=_iso(created),
            updated_at=None,
            type=reason.ticket_type if rng.random() < 0.6 else None,
            subject=subject,
            description=description,
            priority=priority,
            status=None,
            recipient=f"support@{SUBDOMAIN}.com" if channel == "email" else None,
            requester_id=requester_id,
            submitter_id=agent if channel == "api" else requester_id,
            assignee_id=None,
            group_id=_GROUPS[reason.group],
            tags=None,
            custom_fields=custom_fields,
            fields=custom_fields,
            satisfaction_rating=None,
            custom_status_id=None,
            brand_id=BRAND_ID,
            generated_timestamp=None,
        )
        sorted_tags = sorted(set(tags))
        merged_tags = sorted({*tags, "closed_by_merge"})

        def version(step: _Step) -> tuple[int, bytes]:
            ticket = dict(base)
            ticket["updated_at"] = _iso(step.at)
            ticket["status"] = step.status
            ticket["custom_status_id"] = CUSTOM_STATUS_IDS[step.status]
            ticket["assignee_id"] = None if step.status == "new" else agent
            is_merge = merged and step.status == "closed"
            ticket["tags"] = merged_tags if is_merge else sorted_tags
            ticket["satisfaction_rating"] = _rating_as_of(rating, step.at)
            ticket["generated_timestamp"] = step.at
            return step.at, orjson.dumps(ticket)

        final = steps[-1]
        earlier = _earlier_version(steps) if rng.random() < 0.25 else None
        if earlier is not None:
            # The first export saw the ticket open (or solved); a later run sees it resolved
            # (or reopened, merged away, deleted).
            at, body = version(earlier)
            self.tickets.add(at, ticket_id, body)
            at, body = version(final)
            self.updates.add(at, ticket_id, body)
        else:
            at, body = version(final)
            self.tickets.add(at, ticket_id, body)
        self._events(ticket_id, steps, channel, requester_id, agent, priority, sorted_tags, merged)
        if rating is not None:
            self._rating_record(rating, ticket_id, requester_id, agent, _GROUPS[reason.group])

    def _lifecycle(self, created: int, reason: _Reason, priority: str | None) -> list[_Step]:
        rng = self.rng
        fast = 3 if priority in ("high", "urgent") else 1
        steps = [_Step(created, "new", _REQUESTER)]
        at = created
        if reason.field_value == "product_question" and rng.random() < 0.3:
            at += rng.randrange(15 * 60, 20 * _HOUR)  # answered and solved in one go
        else:
            at += rng.randrange(15 * 60, 20 * _HOUR) // fast
            steps.append(_Step(at, "open", _AGENT))
            if rng.random() < 0.45:
                at += rng.randrange(30 * 60, 6 * _HOUR)
                steps.append(_Step(at, "pending", _AGENT))
                if rng.random() < 0.65:
                    at += rng.randrange(2 * _HOUR, 60 * _HOUR)
                    steps.append(_Step(at, "open", _REQUESTER))
            elif reason.can_hold and rng.random() < 0.3:
                at += rng.randrange(_HOUR, 8 * _HOUR)
                steps.append(_Step(at, "hold", _AGENT))  # waiting on the warehouse
                at += rng.randrange(_DAY, 5 * _DAY)
                steps.append(_Step(at, "open", _AGENT))
            at += rng.randrange(_HOUR, 48 * _HOUR)
        steps.append(_Step(at, "solved", _AGENT))
        if rng.random() < 0.12:
            at += rng.randrange(6 * _HOUR, 72 * _HOUR)
            steps.append(_Step(at, "open", _REQUESTER))  # "it's still happening"
            at += rng.randrange(2 * _HOUR, 48 * _HOUR)
            steps.append(_Step(at, "solved", _AGENT))
        steps.append(_Step(at + _CLOSE_AFTER_SOLVED, "closed", _RULE))
        return steps


def _earlier_version(steps: Sequence[_Step]) -> _Step | None:
    """The version an earlier export run saw, on the other side of open/resolved from the
    final one: the last open step before a resolution, or the last solve before a reopen."""
    final_open = steps[-1].status in _OPEN
    for step in reversed(steps[:-1]):
        if (step.status in _OPEN) != final_open:
            return step
    return None

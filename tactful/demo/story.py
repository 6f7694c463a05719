"""The demo's story: a skincare brand launches its Glow Serum, on the simulator's clock.

``Story(sim, customers)`` casts a few hundred customers (Zendesk users with emails) and plans
the launch: each simulated hour brings new tickets (a baseline, plus a wave of irritation
and wrong-item tickets after the launch), and each ticket lives its life — first response,
duplicates merged, refund requests, resolution (slower during the backlog), CSAT (worse
during the launch), some reopened, closed four days after solving. Beside Zendesk, the shop
records outcomes: orders (before and after resolutions), unsubscribes, spam complaints and
re-contacts, collected in ``outcomes`` as ``POST /api/events`` items.

``run_until(when)`` performs every planned step up to ``when``, moving the simulated clock to
each step's time; the story never ends (after the wave the baseline continues).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from tactful.demo.topics import (
    BASELINE_MIX,
    FIRST_NAMES,
    LAST_NAMES,
    LAUNCH_MIX,
    TOPICS,
    Topic,
    launch_intensity,
    tickets_per_hour,
)
from tactful.testing.sim import ZendeskSimulator
from tactful.testing.sim.objects import rating_json

Json = dict[str, Any]
HOUR = timedelta(hours=1)
ACTIVE = frozenset({"new", "open", "pending", "hold"})
SKUS = ("glow-serum-30ml", "glow-serum-duo", "night-cream", "gentle-cleanser", "spf-50")


@dataclass
class Customer:
    user_id: int
    email: str
    open_tickets: set[int] = field(default_factory=set)
    last_solved_at: datetime | None = None


@dataclass
class Plot:
    """One ticket's life in the story."""

    ticket_id: int
    customer: Customer
    topic: Topic
    launch: bool
    solved_at: datetime | None = None
    reopened: bool = False
    rating: str | None = None


SPARED_BY_SUPPRESSION = 0.6  # share of promo-caused unsubscribes/complaints suppression avoids


class Story:
    def __init__(
        self,
        sim: ZendeskSimulator,
        customers: int,
        *,
        seed: int = 7,
        on_rating: Callable[[Json], None] | None = None,
        suppressed: Callable[[str], bool] | None = None,
    ) -> None:
        self.sim = sim
        # Is this customer kept out of promos by Tactful right now (a treated member of
        # suppress_promos)? Promos sent to upset customers cause unsubscribes and complaints;
        # suppression spares most of them — which is what the report's holdout then shows.
        self.suppressed = suppressed or (lambda email: False)
        self.rng = random.Random(seed)
        self.start = sim.now()
        self.on_rating = on_rating or (lambda doc: None)
        self.outcomes: list[Json] = []
        self.counts: Counter[str] = Counter()
        self._queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._outcome_ids = itertools.count(1)
        self.cast = [self._new_customer(i) for i in range(customers)]
        for customer in self.cast:  # launch orders during the first day and a half
            self._after(self.rng.uniform(0, 36), partial(self._shop, customer))
        self._after(0, self._plan_hour)
        for customer in self.rng.sample(self.cast, max(1, customers // 50)):
            self._after(self.rng.uniform(0, 1), partial(self._open, customer, "baseline"))

    # -- the clock ------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.sim.now()

    def hours(self) -> float:
        return (self.now() - self.start) / HOUR

    def _after(self, hours: float, action: Callable[[], None]) -> None:
        at = self.now() + timedelta(hours=max(hours, 0.0))
        heapq.heappush(self._queue, (at, next(self._seq), action))

    def _set_clock(self, when: datetime) -> None:
        with self.sim.lock:
            if when > self.sim.now():
                self.sim.clock.set(when)

    def run_until(self, when: datetime) -> None:
        """Play every step planned up to ``when``; the simulated clock ends at ``when``."""
        while self._queue and self._queue[0][0] <= when:
            at, _, action = heapq.heappop(self._queue)
            self._set_clock(at)
            try:
                action()
            except (ValueError, KeyError):  # e.g. the ticket was closed by a merge meanwhile
                self.counts["skipped"] += 1
        self._set_clock(when)

    def figures(self) -> dict[str, int]:
        figures = dict(self.counts)
        figures["open"] = sum(len(c.open_tickets) for c in self.cast)
        return figures

    # -- cast and arrivals ------------------------------------------------------------------

    def _new_customer(self, index: int) -> Customer:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}{index}@example.com"
        return Customer(self.sim.create_user(f"{first} {last}", email), email)

    def _poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _plan_hour(self) -> None:
        baseline, launch = tickets_per_hour(self.hours() + 0.5, len(self.cast))
        for wave, mean in (("baseline", baseline), ("launch", launch)):
            for _ in range(self._poisson(mean)):
                self._after(self.rng.random(), partial(self._arrive, wave))
        self._after(1, self._plan_hour)

    def _arrive(self, wave: str) -> None:
        free = [c for c in self.cast if not c.open_tickets]
        if free:
            self._open(self.rng.choice(free), wave)

    def _topic(self, wave: str) -> Topic:
        mix = LAUNCH_MIX if wave == "launch" else BASELINE_MIX
        return TOPICS[self.rng.choices(list(mix), weights=list(mix.values()))[0]]

    def _backlog(self) -> float:
        return 1.0 + launch_intensity(self.hours())

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- a ticket's life --------------------------------------------------------------------

    def _open(self, customer: Customer, wave: str) -> None:
        topic = self._topic(wave)
        recent = customer.last_solved_at
        if recent is not None and self.now() - recent <= timedelta(days=7):
            self._outcome(customer, "recontact")
        tags = [*topic.tags, "glow_serum_launch"] if wave == "launch" else list(topic.tags)
        priority = "normal"
        if self._chance(topic.urgent):
            priority = self.rng.choice(("high", "high", "urgent"))
        ticket_id = self.sim.create_ticket(
            customer.user_id,
            self.rng.choice(topic.subjects),
            tags=tags,
            priority=priority,
            channel=self.rng.choice(("email", "web", "native_messaging")),
        )
        customer.open_tickets.add(ticket_id)
        plot = Plot(ticket_id, customer, topic, wave == "launch")
        self.counts["tickets"] += 1
        backlog = self._backlog()
        self._after(self.rng.uniform(0.3, 3) * backlog, partial(self._respond, plot))
        if self._chance(0.12):
            self._after(self.rng.uniform(0.5, 6), partial(self._duplicate, plot))
        if self._chance(topic.refund * (1.3 if plot.launch else 1.0)):
            self._after(self.rng.uniform(6, 30), partial(self._ask_refund, plot))
        for kind, p in (("unsubscribe", 0.12 if topic.reason == "reaction" else 0.05),
                        ("complaint", 0.03), ("order", 0.08)):  # fmt: skip
            if self._chance(p * (backlog if kind != "order" else 1.0)):
                self._after(self.rng.uniform(1, 48), partial(self._outcome, customer, kind))
        self._after(self.rng.uniform(*topic.resolve_hours) * backlog, partial(self._solve, plot))

    def _status(self, ticket_id: int) -> str:
        return self.sim.tickets[ticket_id].status

    def _respond(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) != "new":
            return
        waiting = self._chance(0.3)
        self.sim.update_ticket(
            plot.ticket_id,
            status="pending" if waiting else "open",
            comment="Thank you for reaching out, we are so sorry. Could you tell us more?",
        )
        if waiting:
            self._after(self.rng.uniform(2, 12), partial(self._reply, plot))

    def _reply(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) == "pending":
            self.sim.update_ticket(
                plot.ticket_id, status="open", actor="requester", comment="Here are the details."
            )

    def _duplicate(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) not in ACTIVE:
            return
        original = self.sim.tickets[plot.ticket_id]
        duplicate = self.sim.create_ticket(
            plot.customer.user_id, original.subject, tags=original.tags, channel="email"
        )
        plot.customer.open_tickets.add(duplicate)
        self.counts["tickets"] += 1
        self._after(self.rng.uniform(0.2, 2), partial(self._merge, plot, duplicate))

    def _merge(self, plot: Plot, duplicate: int) -> None:
        plot.customer.open_tickets.discard(duplicate)
        if self._status(duplicate) not in ACTIVE:
            return
        if self._status(plot.ticket_id) in ("closed", "deleted"):
            self.sim.solve(duplicate, comment="Answered in your other request.")
            return
        self.sim.merge_tickets([duplicate], plot.ticket_id)
        self.counts["merges"] += 1

    def _ask_refund(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) not in ACTIVE:
            return
        self.sim.update_ticket(
            plot.ticket_id,
            add_tags=["refund"],
            priority="high",
            actor="requester",
            comment="This is not acceptable. I want a refund, please.",
        )
        self.counts["refunds"] += 1

    def _solve(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) not in ACTIVE:
            return
        self.sim.solve(plot.ticket_id, comment="All sorted: thank you for your patience!")
        customer = plot.customer
        customer.open_tickets.discard(plot.ticket_id)
        customer.last_solved_at = plot.solved_at = self.now()
        self.counts["solved"] += 1
        if plot.rating is None and self._chance(0.6):
            self._after(self.rng.uniform(1, 24), partial(self._rate, plot))
        reopen = 0.2 if plot.topic.reason == "reaction" else 0.08
        if not plot.reopened and self._chance(reopen):
            self._after(self.rng.uniform(4, 36), partial(self._reopen, plot))
        self._after(96, partial(self._close, plot))
        self._after(self.rng.uniform(24, 240), partial(self._after_resolution, plot))

    def _rate(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) not in ("solved", "closed") or plot.rating is not None:
            return
        worse = 0.15 * launch_intensity(self.hours()) if plot.launch else 0.0
        plot.rating = "bad" if self._chance(plot.topic.bad_csat + worse) else "good"
        comment = "Still red and sore." if plot.rating == "bad" else "Lovely, quick help."
        rating_id = self.sim.rate(plot.ticket_id, plot.rating, comment)
        self.counts[f"csat_{plot.rating}"] += 1
        self.on_rating(rating_json(self.sim.ratings[rating_id], self.sim.base_url))

    def _reopen(self, plot: Plot) -> None:
        if self._status(plot.ticket_id) != "solved":
            return
        plot.reopened = True
        self.sim.reopen(plot.ticket_id, comment="It is happening again, please help.")
        plot.customer.open_tickets.add(plot.ticket_id)
        self._outcome(plot.customer, "recontact")
        self.counts["reopened"] += 1
        self._after(self.rng.uniform(6, 36) * self._backlog(), partial(self._solve, plot))

    def _close(self, plot: Plot) -> None:
        """Zendesk closes a ticket four days after it was (last) solved."""
        solved = plot.solved_at
        if solved is None or self._status(plot.ticket_id) != "solved":
            return
        if self.now() - solved >= timedelta(hours=95):
            self.sim.close(plot.ticket_id)

    # -- the shop's outcomes ------------------------------------------------------------------

    def _after_resolution(self, plot: Plot) -> None:
        p = {"good": 0.55, "bad": 0.1}.get(plot.rating or "", 0.3)
        if self._chance(p):
            self._outcome(plot.customer, "order")

    def _shop(self, customer: Customer) -> None:
        """An order now (customers with an open ticket often skip it), the next in 5-20 days."""
        if not customer.open_tickets or self._chance(0.4):
            self._outcome(customer, "order")
        self._after(self.rng.uniform(5 * 24, 20 * 24), partial(self._shop, customer))

    def _outcome(self, customer: Customer, kind: str) -> None:
        spared = kind in ("unsubscribe", "complaint") and self.suppressed(customer.email)
        if spared and self._chance(SPARED_BY_SUPPRESSION):
            self.counts["outcome_spared"] += 1
            return
        item: Json = {
            "type": "outcome",
            "id": f"demo-{kind}-{next(self._outcome_ids)}",
            "person": {"email": customer.email},
            "at": self.now().isoformat().replace("+00:00", "Z"),
            "outcome": kind,
        }
        if kind == "order":
            item.update(amount=round(self.rng.uniform(24, 96), 2), currency="USD")
            item["properties"] = {"sku": self.rng.choice(SKUS)}
        self.outcomes.append(item)
        self.counts[f"outcome_{kind}"] += 1

    def take_outcomes(self) -> list[Json]:
        taken, self.outcomes = self.outcomes, []
        return taken

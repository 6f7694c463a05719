"""How the demo's story reaches Tactful: signed Zendesk webhooks and ``POST /api/events``."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import httpx
import orjson

from tactful.testing.sim import WebhookSender, ZendeskSimulator

log = logging.getLogger("tactful.demo")
BATCH = 500


class Feed:
    """``webhooks``: the simulator's sender (trigger mode: Tactful's recommended trigger
    body for every ticket create/update); satisfaction ratings go out as signed
    ``{"satisfaction_rating": …}`` documents right after the ticket change they follow.
    ``outcomes``: the shop's events, posted with the API token."""

    def __init__(self, base_url: str, sim: ZendeskSimulator, secret: str, token: str) -> None:
        self.webhooks = WebhookSender(
            f"{base_url}/webhooks/zendesk", secret, sim=sim, mode="trigger"
        )
        self.api = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
        self.pending: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def rating(self, rating: dict[str, Any]) -> None:
        self.webhooks.collect()  # keep the order: the ticket's change first
        self.webhooks.enqueue(orjson.dumps({"satisfaction_rating": rating}), "rating")

    def users(self, users: list[dict[str, Any]]) -> None:
        """The customers as Zendesk lists them (``{"users": [...]}``, as the users API and
        export give them, names included), signed like the webhooks: Tactful knows everyone,
        by name too, before their first ticket."""
        self.webhooks.collect()
        for start in range(0, len(users), BATCH):
            body = orjson.dumps({"users": users[start : start + BATCH]})
            self.webhooks.enqueue(body, "users")

    def send(self, outcomes: list[dict[str, Any]]) -> None:
        for delivery in self.webhooks.deliver_pending():
            self.counts[f"webhooks_{delivery.state}"] += 1
        self.webhooks.deliveries.clear()  # counted; do not keep every body of a long run
        self.pending.extend(outcomes)
        while self.pending:
            batch = self.pending[:BATCH]
            try:
                response = self.api.post("/api/events", json={"events": batch})
            except httpx.HTTPError as exc:  # the server is busy or stopping: next round
                log.warning("posting outcomes failed: %s", exc)
                return
            if response.status_code >= 500 or response.status_code == 429:
                return
            del self.pending[: len(batch)]
            if response.status_code == 200:
                self.counts["outcomes_posted"] += len(batch)
            else:
                self.counts["outcomes_refused"] += len(batch)
                log.warning("outcomes refused (%s): %s", response.status_code, response.text)

    def suppressed(self, email: str) -> bool:
        """A treated (non-holdout) member of ``suppress_promos`` right now?"""
        try:
            response = self.api.get(f"/api/people/{email}")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        segment = response.json().get("segments", {}).get("suppress_promos", {})
        return bool(segment.get("member")) and not segment.get("holdout")

    def close(self) -> None:
        self.webhooks.close()
        self.api.close()

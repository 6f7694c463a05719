"""Delivery rows, attempts and the audience ledger, each call one store transaction or
snapshot on the delivery clock. The rows and their SQL are the store's
(``tactful.store.deliveries``, reached through ``tx.deliveries``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tactful.clock import now_us
from tactful.store.base import Reader, Store, Tx
from tactful.store.deliveries import Attempt, DeliveryRow, NewDelivery, OutboxEntry

__all__ = ["DeliveryRow", "DeliveryStore", "NewDelivery", "now_us"]

# Turns unrouted outbox rows into deliveries, reading the store through the handle given.
Plan = Callable[[Tx | Reader, list[OutboxEntry]], list[NewDelivery]]


class DeliveryStore:
    def __init__(self, store: Store, clock_us: Callable[[], int] = now_us) -> None:
        self.store = store
        self.now_us = clock_us

    def route(self, limit: int, plan: Plan) -> tuple[int, int]:
        """Claim up to ``limit`` unrouted outbox rows (oldest first), turn them into
        deliveries with ``plan`` and mark them routed, in one transaction.
        Returns (outbox rows routed, deliveries inserted)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            rows = tx.deliveries.unrouted(limit, claim=tx.locking)
            if not rows:
                return 0, 0
            inserted = tx.deliveries.insert(plan(tx, rows), now)
            # Erasure rows carry identifiers only until they are routed.
            if tx.deliveries.mark_routed(rows):
                tx.erased = True  # the store then wipes the old bytes
            return len(rows), inserted

    def unrouted(self, limit: int, plan: Plan) -> list[NewDelivery]:
        """What routing the oldest ``limit`` unrouted outbox rows would insert, read only
        (``tactful sync --dry-run``)."""
        with self.store.reader() as reader:
            rows = reader.deliveries.unrouted(limit)
            return plan(reader, rows) if rows else []

    def enqueue(self, rows: Iterable[NewDelivery]) -> int:
        now = self.now_us()
        with self.store.transaction() as tx:
            return tx.deliveries.insert(rows, now)

    def candidates(self, destination: str, limit: int) -> list[DeliveryRow]:
        """Pending rows in id order (due or not: the worker keeps per-person order)."""
        with self.store.reader() as reader:
            return reader.deliveries.pending(destination, limit)

    def finish(
        self,
        results: Sequence[tuple[DeliveryRow, str, int | None, str, int | None, str]],
        run_id: int | None = None,
    ) -> None:
        """Record attempts: (row, new status, next_us, error, http status, outcome kind),
        made during the sync run ``run_id``."""
        now = self.now_us()
        with self.store.transaction() as tx:
            if tx.deliveries.record([Attempt(*r) for r in results], now, run_id):
                tx.erased = True  # the store then wipes the old bytes

    def skip(self, rows: Sequence[DeliveryRow], reason: str) -> None:
        now = self.now_us()
        with self.store.transaction() as tx:
            tx.deliveries.skip([r.id for r in rows], reason, now)

    def expire(self, destination: str, created_before_us: int, reason: str) -> int:
        """Dead-letter the pending rows created before ``created_before_us`` without an
        attempt (their destination's circuit is open: they would have aged out retrying)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            return tx.deliveries.expire(destination, created_before_us, reason, now)

    def ledger(self, destination: str) -> set[str]:
        with self.store.reader() as reader:
            return reader.deliveries.ledger(destination)

    def in_ledger(self, destination: str, person_ids: Sequence[str]) -> set[str]:
        if not person_ids:
            return set()
        with self.store.reader() as reader:
            return reader.deliveries.ledger(destination, person_ids)

    def received(self, destination: str, person_ids: Sequence[str]) -> set[str]:
        """Who among ``person_ids`` the destination already received something about (a
        delivery done, erasures aside): the ESP holds them, so an unsubscribe may name them."""
        if not person_ids:
            return set()
        with self.store.reader() as reader:
            return reader.deliveries.received(destination, person_ids)

    def listing(self, statuses: Sequence[str], limit: int = 500) -> list[DeliveryRow]:
        with self.store.reader() as reader:
            return reader.deliveries.listing(statuses, limit)

    def dead_ids(self, destination: str) -> list[int]:
        with self.store.reader() as reader:
            return reader.deliveries.dead_ids(destination)

    def retry(self, ids: Sequence[int] | None) -> int:
        """Dead letters back to pending, due now (all when ``ids`` is None)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            return tx.deliveries.retry(ids, now)

    def health(self) -> dict[str, dict[str, Any]]:
        with self.store.reader() as reader:
            return reader.deliveries.health()

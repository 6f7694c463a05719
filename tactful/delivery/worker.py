"""The delivery worker: route the outbox, then deliver what is due, per destination.

- Per-person order: a person's later delivery never overtakes an earlier one that is still
  pending (waiting for a retry), so a remove can never arrive before its add.
- Batches stay within each destination's ``max_batch``.
- Consent is applied at send time (``items``); holdouts were never routed.
- Every attempt is recorded; retries follow the pure ``policy.decide``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tactful.delivery.items import build_item, identifiers_of
from tactful.delivery.policy import RetryPolicy, decide
from tactful.delivery.router import Route, route
from tactful.delivery.store import DeliveryRow, DeliveryStore, NewDelivery
from tactful.destinations import registry
from tactful.destinations.base import Destination, Identifiers, Item, Outcome
from tactful.store.base import Store
from tactful.store.records import from_us, to_us

log = logging.getLogger("tactful.delivery")


@dataclass
class SyncReport:
    routed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # destination -> why unusable


def _send(dest: Destination, items: Sequence[Item]) -> list[Outcome]:
    try:
        return dest.send(items)
    except Exception as exc:  # a bug in a destination: retry later, never lose rows
        # Only the type: messages may quote vendor responses about people (no identifiers
        # in logs); the delivery row keeps the full text for operators.
        log.error("destination %s raised %s", dest.name, type(exc).__name__)
        return [Outcome("retry", f"{type(exc).__name__}: {exc}")] * len(items)


def send_splitting(dest: Destination, items: Sequence[Item]) -> list[Outcome]:
    """Send; when a whole batch is rejected alike (one bad record fails the request), split
    it in halves until the bad records are alone, so the good ones still go through."""
    outcomes = _send(dest, items)
    if (
        len(items) > 1
        and all(o.kind == "reject" for o in outcomes)
        and len({(o.status, o.error) for o in outcomes}) == 1
    ):
        half = len(items) // 2
        return send_splitting(dest, items[:half]) + send_splitting(dest, items[half:])
    return outcomes


def dest_kinds(dest: Destination | None) -> frozenset[str]:
    return frozenset() if dest is None else frozenset(dest.capabilities.kinds)


def erase_item(row: DeliveryRow, config: Any, wants: frozenset[str], ours: bool) -> Item | None:
    """What "forget this person" means for one destination: a deletion where it can delete,
    a removal from an ad audience Tactful added them to, else a ``person_erased`` event
    (with no identifiers) so downstream systems can act."""
    ids = row.payload.get("identifiers", {})
    identifiers = Identifiers(
        emails=tuple(ids.get("email", ())),
        phones=tuple(ids.get("phone", ())),
        external_ids=tuple(ids.get("external_id", ())),
        zendesk_user_ids=tuple(ids.get("zendesk_user_id", ())),
    )
    key, at = f"{row.destination}:{row.key}", from_us(row.at_us)
    if "erase" in wants:
        return Item(key, "erase", row.person_id, at, identifiers)
    if "audience_remove" in wants:
        return Item(key, "audience_remove", row.person_id, at, identifiers) if ours else None
    if "event" in wants:
        return Item(
            key,
            "event",
            row.person_id,
            at,
            Identifiers(),
            name="person_erased",
            properties={"person_id": row.person_id},
        )
    return None


class DeliveryWorker:
    def __init__(
        self,
        settings: Any,
        store: Store,
        *,
        destinations: dict[str, Destination] | None = None,
        transport: Any = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        d = getattr(settings, "delivery", None)
        self.policy = policy or (
            RetryPolicy(d.retry_base, d.retry_cap, d.max_age) if d is not None else RetryPolicy()
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rows = DeliveryStore(store, lambda: to_us(self.clock()))
        self.rng = rng
        self.transport = transport
        self.configs = {d.name: d for d in settings.destinations}
        self.routes = [
            Route(d.name, d.type, d.segment, tuple(d.segments) if d.segments else None, d.purpose)
            for d in settings.destinations
        ]
        self.destinations: dict[str, Destination] = dict(destinations or {})
        self.broken: dict[str, str] = {}

    def destination(self, name: str) -> Destination | None:
        if name in self.destinations:
            return self.destinations[name]
        if name in self.broken:
            return None
        try:
            self.destinations[name] = registry.create(self.configs[name], transport=self.transport)
        except Exception as exc:  # a destination we cannot build must not stop the others
            self.broken[name] = f"{type(exc).__name__}: {exc}"
            log.error("destination %s is not usable: %s", name, self.broken[name])
            return None
        return self.destinations[name]

    # -- routing ----------------------------------------------------------------------------
    def route_outbox(self, chunk: int = 2000) -> int:
        """Turn outbox rows into per-destination deliveries. One process routes at a time
        (``claim``): routing in outbox order keeps each person's deliveries in order."""
        total = 0
        if not self.routes:
            return 0
        with self.store.claim("route") as mine:
            if not mine:
                return 0
            while True:
                count, _ = self.rows.route(chunk, self._plan)
                if count == 0:
                    return total
                total += count

    def _plan(self, tx: Any, rows: list[tuple[int, str, str, int, bytes]]) -> list[NewDelivery]:
        persons = tx.load_persons(sorted({pid for _, pid, _, _, _ in rows}))
        members = {
            pid: frozenset(s for s, m in row.memberships.items() if m.member and not m.holdout)
            for pid, row in persons.items()
        }
        new: list[NewDelivery] = []
        for oid, pid, topic, at_us, raw in rows:
            new.extend(
                route(oid, pid, topic, at_us, raw, self.routes, members.get(pid, frozenset()))
            )
        return new

    # -- delivering -------------------------------------------------------------------------
    def deliver_due(self) -> SyncReport:
        report = SyncReport()
        for config in self.settings.destinations:
            dest = self.destination(config.name)
            if dest is None:
                report.errors[config.name] = self.broken[config.name]
                continue
            # One process sends to a destination at a time (per-person order, vendor limits);
            # a destination another process is sending to is skipped this round.
            with self.store.claim(f"deliver:{config.name}") as mine:
                if mine:
                    self._deliver(config, dest, report)
        return report

    def _due(self, name: str, limit: int) -> list[DeliveryRow]:
        now_us = to_us(self.clock())
        blocked: set[str] = set()
        due: list[DeliveryRow] = []
        for row in self.rows.candidates(name, limit * 4):
            if row.person_id in blocked:
                continue
            if row.next_us > now_us:
                blocked.add(row.person_id)  # keep this person's order
                continue
            due.append(row)
            blocked.add(row.person_id)  # one item per person per round: strict order
            if len(due) >= limit:
                break
        return due

    def _deliver(self, config: Any, dest: Destination, report: SyncReport) -> None:
        limit = max(1, dest.capabilities.max_batch)
        for _ in range(1000):  # bounded: each round delivers or defers at least one row
            rows = self._due(config.name, limit)
            if not rows:
                return
            items, sendable, skipped = self._items(config, rows)
            if skipped:
                self.rows.skip(skipped, "no consent for this purpose, or the person is gone")
                report.skipped += len(skipped)
            if not sendable:
                continue
            outcomes = send_splitting(dest, items)
            self._record(sendable, outcomes, report)

    def _items(
        self, config: Any, rows: Sequence[DeliveryRow]
    ) -> tuple[list[Item], list[DeliveryRow], list[DeliveryRow]]:
        pids = sorted({r.person_id for r in rows})
        with self.store.reader() as reader:
            persons = reader.load_persons(pids)
            idents = reader.identifiers_of(pids)
            tickets = reader.tickets_of(sorted({r.person_id for r in rows if r.kind == "profile"}))
        purpose = getattr(config, "purpose", "analytics")
        default = bool(getattr(self.settings.consent, purpose, True))
        removals = [r.person_id for r in rows if r.kind in ("audience_remove", "erase")]
        ours = self.rows.in_ledger(config.name, removals)
        held = self.rows.received(
            config.name, [r.person_id for r in rows if r.kind == "unsubscribe"]
        )
        items: list[Item] = []
        sendable: list[DeliveryRow] = []
        skipped: list[DeliveryRow] = []
        wants = dest_kinds(self.destinations.get(config.name))
        for row in rows:
            if row.kind == "erase":
                item = erase_item(row, config, wants, row.person_id in ours)
                if item is None:
                    skipped.append(row)
                else:
                    items.append(item)
                    sendable.append(row)
                continue
            person = persons.get(row.person_id)
            consent = None if person is None else person.facts.consent_for(purpose)
            allowed = person is not None and (default if consent is None else consent)
            if row.kind == "audience_remove":
                # Tactful removes only the members it added, consent or not.
                allowed = person is not None and row.person_id in ours
            elif row.kind == "unsubscribe":
                # Sent because consent was withdrawn, to an ESP that already holds the person.
                allowed = person is not None and row.person_id in held
            elif row.kind == "audience_add" and row.segment and person is not None:
                # An add sent late (after retries, or a dead letter retried by an operator)
                # must not put back someone who has left the segment since.
                m = person.memberships.get(row.segment)
                allowed = allowed and m is not None and m.member and not m.holdout
            if not allowed:
                skipped.append(row)
                continue
            ids = identifiers_of(idents.get(row.person_id, []))
            if ids == Identifiers():
                skipped.append(row)
                continue
            items.append(
                build_item(
                    row,
                    person,
                    ids,
                    tickets.get(row.person_id, []),
                    self.settings.zendesk.subdomain,
                )
            )
            sendable.append(row)
        return items, sendable, skipped

    def _record(
        self, rows: Sequence[DeliveryRow], outcomes: Sequence[Outcome], report: SyncReport
    ) -> None:
        now = self.clock()
        results: list[tuple[DeliveryRow, str, int | None, str, int | None, str]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            d = decide(
                outcome, row.attempts + 1, now, from_us(row.created_us), self.policy, self.rng()
            )
            if d.action == "done":
                report.sent += 1
                results.append((row, "done", None, "", outcome.status, outcome.kind))
            elif d.action == "retry":
                report.retried += 1
                assert d.at is not None
                results.append(
                    (row, "pending", to_us(d.at), d.reason, outcome.status, outcome.kind)
                )
            else:
                report.dead += 1
                results.append((row, "dead", None, d.reason, outcome.status, outcome.kind))
        self.rows.finish(results)

    # -- reconcile --------------------------------------------------------------------------
    def reconcile(self, name: str) -> tuple[int, int]:
        """Full reconcile of an ad audience: desired (non-holdout members who consented)
        vs the ledger of what Tactful added; enqueue the adds and removes that differ."""
        config = self.configs[name]
        purpose = getattr(config, "purpose", "ads")
        default = bool(getattr(self.settings.consent, purpose, True))
        desired: set[str] = set()
        after: str | None = None
        with self.store.reader() as reader:
            while True:
                page = reader.member_consents(config.segment, purpose, after, 5000)
                if not page:
                    break
                after = page[-1][0]
                desired.update(
                    pid for pid, consent in page if (default if consent is None else consent)
                )
        have = self.rows.ledger(name)
        stamp = to_us(self.clock())
        new = [
            NewDelivery(
                name,
                pid,
                "audience_add",
                "",
                config.segment,
                f"reconcile:{stamp}:add:{pid}",
                stamp,
                {},
            )
            for pid in sorted(desired - have)
        ]
        new += [
            NewDelivery(
                name,
                pid,
                "audience_remove",
                "",
                config.segment,
                f"reconcile:{stamp}:remove:{pid}",
                stamp,
                {},
            )
            for pid in sorted(have - desired)
        ]
        self.rows.enqueue(new)
        return len(desired - have), len(have - desired)

    # -- the whole job ----------------------------------------------------------------------
    def sync(self) -> SyncReport:
        routed = self.route_outbox()
        report = self.deliver_due()
        report.routed = routed
        return report

    def close(self) -> None:
        for dest in self.destinations.values():
            dest.close()

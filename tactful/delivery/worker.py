"""The delivery worker: route the outbox, then deliver what is due, per destination.

- Each destination delivers in a lane of its own (``lanes``): a slow, hanging or broken
  destination never holds back another, and every HTTP request has a total deadline
  (``deadline``). A circuit breaker per destination (``breaker``) stops sending to one that
  keeps failing, and probes it again later. An exception in a destination's code is
  recorded against that destination (its circuit, the round's errors) and ends only its lane.
- Per-person order: a person's later delivery never overtakes an earlier one that is still
  pending (waiting for a retry), so a remove can never arrive before its add.
- Batches stay within each destination's ``max_batch``.
- Consent is applied at send time (``items``); holdouts were never routed.
- Every attempt is recorded; retries follow the pure ``policy.decide``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx

from tactful.clock import now_or
from tactful.core.messages import PersonErased
from tactful.delivery import breaker, platform
from tactful.delivery.breaker import BreakerPolicy, Circuit
from tactful.delivery.deadline import DeadlineTransport
from tactful.delivery.items import build_item, identifiers_of
from tactful.delivery.lanes import Lanes, SyncReport
from tactful.delivery.platform import READ_EVERY
from tactful.delivery.policy import RetryPolicy, decide
from tactful.delivery.router import plan, routes_of
from tactful.delivery.runs import SKIPPED, RunRecorder, Skip
from tactful.delivery.store import DeliveryRow, DeliveryStore, NewDelivery
from tactful.destinations import registry
from tactful.destinations.base import (
    Destination,
    Identifiers,
    Item,
    Outcome,
    Sent,
    report_of,
)
from tactful.store.base import Store
from tactful.store.records import from_us, to_us
from tactful.store.runs import RunStore

log = logging.getLogger("tactful.delivery")

__all__ = ["ROUND_WAIT", "DeliveryWorker", "SyncReport", "send_splitting"]
# How long a serving process's round waits for slow destinations before starting the next
# round for the others (a hanging destination's lane goes on in the background).
ROUND_WAIT = 0.1
STOP_GRACE_SECONDS = 2.0  # close(): how long lanes may take to finish their current request


def _send(dest: Destination, items: Sequence[Item]) -> Sequence[Outcome]:
    try:
        return dest.send(items)
    except Exception as exc:  # a bug in a destination: retry later, never lose rows
        # Only the type: messages may quote vendor responses about people (no identifiers
        # in logs); the delivery row keeps the full text for operators.
        log.error("destination %s raised %s", dest.name, type(exc).__name__)
        return [Outcome("retry", f"{type(exc).__name__}: {exc}")] * len(items)


def send_splitting(dest: Destination, items: Sequence[Item]) -> Sent:
    """Send; when a whole batch is rejected alike (one bad record fails the request), split
    it in halves until the bad records are alone, so the good ones still go through. The
    platform's reports of every request are merged."""
    outcomes = _send(dest, items)
    report = report_of(outcomes)
    if (
        len(items) > 1
        and all(o.kind == "reject" for o in outcomes)
        and len({(o.status, o.error) for o in outcomes}) == 1
    ):
        half = len(items) // 2
        return merge_sent([send_splitting(dest, items[:half]), send_splitting(dest, items[half:])])
    return Sent(outcomes, report)


def merge_sent(parts: Sequence[Sent]) -> Sent:
    reports = [p.report for p in parts if p.report is not None]
    merged = reports[0] if reports else None
    for more in reports[1:]:
        merged = merged.merge(more) if merged is not None else more
    return Sent([o for part in parts for o in part], merged)


def to_us_delta(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def send_parallel(dest: Destination, items: Sequence[Item]) -> Sent:
    """``send_splitting`` in up to ``capabilities.parallel`` slices at once. A round has at
    most one item per person, so slices never reorder a person's deliveries. The slices run
    in daemon threads, like the lanes: a stopping process never waits for them."""
    ways = min(max(1, dest.capabilities.parallel), len(items))
    if ways == 1:
        return send_splitting(dest, items)
    size = -(-len(items) // ways)
    slices = [items[i : i + size] for i in range(0, len(items), size)]
    results: list[Sent] = [Sent([]) for _ in slices]

    def run(index: int) -> None:
        results[index] = send_splitting(dest, slices[index])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(slices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return merge_sent(results)


def dest_kinds(dest: Destination | None) -> frozenset[str]:
    return frozenset() if dest is None else frozenset(dest.capabilities.kinds)


def erase_item(row: DeliveryRow, config: Any, wants: frozenset[str], ours: bool) -> Item | None:
    """What "forget this person" means for one destination: a deletion where it can delete,
    a removal from an ad audience Tactful added them to, else a ``person_erased`` event
    with no identifiers. A tool that addresses people by the brand's identifiers
    (``identify_by``: the analytics tools) gets it about no one (no ``p_…`` id either): it
    learns that an erasure happened, never whom it concerned. The brand's own webhook, whose
    bodies name people by ``person_id``, gets that id so its receiver can forget them."""
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
        anonymous = registry.spec(config.type).identify_by is not None
        person = "" if anonymous else row.person_id
        properties = {} if anonymous else {"person_id": row.person_id}
        return Item(key, "event", person, at, Identifiers(), PersonErased.TOPIC, None, properties)
    return None


class DeliveryWorker:
    def __init__(
        self,
        settings: Any,
        store: Store,
        *,
        destinations: dict[str, Destination] | None = None,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Callable[[], float] = random.random,
        round_wait: float | None = None,
    ) -> None:
        """``round_wait``: how long a round waits for slow destinations (None: until every
        lane is done; a serving process gives a few seconds, so a hanging destination does
        not slow the others' rounds)."""
        self.settings = settings
        self.store = store
        d = getattr(settings, "delivery", None)
        self.policy = policy or (
            RetryPolicy(d.retry_base, d.retry_cap, d.max_age) if d is not None else RetryPolicy()
        )
        self.breaker = (
            BreakerPolicy(d.circuit_failures, d.circuit_cooldown, d.circuit_max_cooldown)
            if d is not None
            else BreakerPolicy()
        )
        deadline = d.request_deadline if d is not None else timedelta(seconds=30)
        self.request_deadline = deadline.total_seconds()
        self.round_wait = round_wait
        self.lanes = Lanes()
        # destination -> (open until, why), as its last lane left it: no lane is started for
        # it before then (rounds stay cheap while a destination is down)
        self.open_until: dict[str, tuple[int, str]] = {}
        self.platform_after: dict[str, int] = {}  # no platform reading before (µs)
        self.clock = now_or(clock)
        self.rows = DeliveryStore(store, lambda: to_us(self.clock()))
        self.runs = RunStore(store)
        keep = d.runs_keep if d is not None else timedelta(days=30)
        self.runs_keep_us = to_us_delta(keep)
        self.rng = rng
        self.transport = transport
        self.configs = {d.name: d for d in settings.destinations}
        self.routes = routes_of(settings)
        self.destinations: dict[str, Destination] = dict(destinations or {})
        self.broken: dict[str, str] = {}

    def destination(self, name: str) -> Destination | None:
        if name in self.destinations:
            return self.destinations[name]
        if name in self.broken:
            return None
        transport = self.transport
        if transport is None:  # the network: every request within the total deadline
            transport = DeadlineTransport(self.request_deadline)
        try:
            self.destinations[name] = registry.create(self.configs[name], transport=transport)
        except Exception as exc:  # a destination we cannot build must not stop the others
            self.broken[name] = f"{type(exc).__name__}: {exc}"
            log.error("destination %s is not usable: %s", name, self.broken[name])
            return None
        return self.destinations[name]

    # -- routing ----------------------------------------------------------------------------
    def route_outbox(self, chunk: int = 2000) -> int:
        """Turn outbox rows into per-destination deliveries. One process routes at a time
        (``claim``): routing in outbox order keeps each person's deliveries in order.
        Not while a replay runs or is unfinished: routing reads the persons it rebuilds."""
        total = 0
        if not self.routes:
            return 0
        with self.store.claim("route") as mine:
            if not mine:
                return 0
            while True:
                with self.store.unless_replaying() as free:
                    count = self.rows.route(chunk, self.plan_rows)[0] if free else 0
                if count == 0:
                    return total
                total += count

    def plan_rows(self, tx: Any, rows: list[tuple[int, str, str, int, bytes]]) -> list[NewDelivery]:
        persons = tx.load_persons(sorted({pid for _, pid, _, _, _ in rows}))
        members = {
            pid: frozenset(s for s, m in row.memberships.items() if m.member and not m.holdout)
            for pid, row in persons.items()
        }
        return plan(rows, self.routes, members)

    # -- delivering -------------------------------------------------------------------------
    def deliver_due(self, wait: float | None = None) -> SyncReport:
        """One round: a lane per destination not still busy with an earlier round; waits
        for them (see ``round_wait``; ``wait`` overrides it)."""
        report = SyncReport()
        self.lanes.collect(report)
        started: list[str] = []
        now_us = to_us(self.clock())
        for config in self.settings.destinations:
            if self.lanes.busy(config.name):
                report.busy.append(config.name)
                continue
            until_us, why = self.open_until.get(config.name, (0, ""))
            if now_us < until_us:
                report.errors[config.name] = why
                continue
            dest = self.destination(config.name)
            if dest is None:
                report.errors[config.name] = self.broken[config.name]
                continue
            # each lane its own jitter sequence, drawn here in configuration order: a lane's
            # retry times do not depend on how the lanes' threads interleave
            jitter = random.Random(self.rng()).random
            self.lanes.start(config.name, partial(self._lane, config, dest, jitter))
            started.append(config.name)
        self.lanes.wait(started, self.round_wait if wait is None else wait)
        self.lanes.collect(report)
        return report

    def _lane(
        self, config: Any, dest: Destination, jitter: Callable[[], float], report: SyncReport
    ) -> None:
        run = RunRecorder(self.runs, config.name, lambda: to_us(self.clock()), self.runs_keep_us)
        try:
            # One process sends to a destination at a time (per-person order, vendor limits);
            # a destination another process is sending to is skipped this round.
            with self.store.claim(f"deliver:{config.name}") as mine:
                if mine:
                    self._deliver(config, dest, report, jitter, run)
                    self._read_platform(config.name, dest, run)
        except Exception as exc:  # this destination's failure, never the others'
            error = f"{type(exc).__name__}: {exc}"
            log.error("delivery to %s failed: %s", config.name, type(exc).__name__)
            report.errors[config.name] = error
            run.error = error
            try:
                self._failed(config.name, error)
            except Exception:  # the store itself is failing: the next round tries again
                log.exception("cannot record the failure of %s", config.name)
        try:
            run.close()
        except Exception:  # the store itself is failing: the run goes unrecorded
            log.exception("cannot record the run of %s", config.name)

    def _read_platform(self, name: str, dest: Destination, run: RunRecorder) -> None:
        """An ad audience's platform report, every ``READ_EVERY`` while its circuit is
        closed (``tactful.delivery.platform``)."""
        now_us = to_us(self.clock())
        if not hasattr(dest, "audience_report") or now_us < self.platform_after.get(name, 0):
            return
        if self.circuit(name).state == "closed":
            platform.read(self.store, dest, run, now_us, READ_EVERY)
            self.platform_after[name] = now_us + to_us_delta(READ_EVERY)

    def circuit(self, name: str) -> Circuit:
        with self.store.reader() as reader:
            return Circuit.loads(reader.get_meta(breaker.meta_key(name)))

    def _save_circuit(self, name: str, before: Circuit, after: Circuit) -> None:
        if after != before:
            with self.store.transaction() as tx:
                tx.set_meta(breaker.meta_key(name), after.dumps())

    def _failed(self, name: str, error: str) -> None:
        now_us = to_us(self.clock())
        before = self.circuit(name)
        current = breaker.admit(before, now_us) or before
        self._save_circuit(name, before, breaker.record(current, True, error, now_us, self.breaker))

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

    def _deliver(
        self,
        config: Any,
        dest: Destination,
        report: SyncReport,
        jitter: Callable[[], float],
        run: RunRecorder,
    ) -> None:
        stored = self.circuit(config.name)
        for _ in range(1000):  # bounded: each round delivers or defers at least one row
            if self.lanes.stopping.is_set():
                return
            now_us = to_us(self.clock())
            if stored.state == "open":  # rows that would have aged out retrying, age out
                age = self.policy.max_age
                reason = f"still failing after {age} (circuit open: {stored.last_error})"
                expired = self.rows.expire(config.name, now_us - to_us_delta(age), reason)
                report.dead += expired
                run.counts.dead += expired
                if expired:
                    run.open()
            circuit = breaker.admit(stored, now_us)
            if circuit is None:
                until = from_us(stored.until_us).isoformat(timespec="seconds")
                why = f"circuit open until {until}: {stored.last_error}"
                report.errors[config.name] = why
                run.error = why
                self.open_until[config.name] = (stored.until_us, why)
                return
            probe = circuit.state == "half_open"  # one item tells whether it recovered
            rows = self._due(config.name, 1 if probe else max(1, dest.capabilities.max_batch))
            if not rows:
                return
            run.open()
            items, sendable, skipped = self.items_for(config, rows)
            for why, text in SKIPPED.items():
                these = [row for row, reason in skipped if reason == why]
                if these:
                    self.rows.skip(these, text)
                    run.skipped(why, len(these))
            report.skipped += len(skipped)
            if not sendable:
                continue
            outcomes = send_parallel(dest, items)
            run.answered(outcomes.report)
            self._record(sendable, outcomes, report, jitter, run)
            failed = all(o.kind == "retry" for o in outcomes)
            error = outcomes[0].error if failed else ""
            after = breaker.record(circuit, failed, error, now_us, self.breaker)
            self._save_circuit(config.name, stored, after)
            stored = after
            if after.state == "open":
                until = from_us(after.until_us).isoformat(timespec="seconds")
                why = f"circuit open until {until}: {after.last_error}"
                self.open_until[config.name] = (after.until_us, why)
            if failed:  # nothing got through: the rest waits for the next round
                return

    def items_for(
        self, config: Any, rows: Sequence[DeliveryRow]
    ) -> tuple[list[Item], list[DeliveryRow], list[tuple[DeliveryRow, Skip]]]:
        """The items to send for ``rows``, the rows they are for, and the rows skipped with
        why (``SKIPPED``)."""
        pids = sorted({r.person_id for r in rows})
        with self.store.reader() as reader:
            persons = reader.load_persons(pids)
            idents = reader.identifiers_of(pids)
            tickets = reader.tickets_of(sorted({r.person_id for r in rows if r.kind == "profile"}))
        purpose = getattr(config, "purpose", "analytics")
        default = self.settings.consent.default(purpose)
        removals = [r.person_id for r in rows if r.kind in ("audience_remove", "erase")]
        ours = self.rows.in_ledger(config.name, removals)
        held = self.rows.received(
            config.name, [r.person_id for r in rows if r.kind == "unsubscribe"]
        )
        items: list[Item] = []
        sendable: list[DeliveryRow] = []
        skipped: list[tuple[DeliveryRow, Skip]] = []
        wants = dest_kinds(self.destinations.get(config.name))
        for row in rows:
            if row.kind == "erase":
                item = erase_item(row, config, wants, row.person_id in ours)
                if item is None:
                    skipped.append((row, "other"))
                else:
                    items.append(item)
                    sendable.append(row)
                continue
            person = persons.get(row.person_id)
            consent = None if person is None else person.facts.consent_for(purpose)
            why: Skip | None = None if (default if consent is None else consent) else "no_consent"
            if person is None:
                why = "no_identifier"  # erased or merged away since
            elif row.kind == "audience_remove":
                # Tactful removes only the members it added, consent or not.
                why = None if row.person_id in ours else "other"
            elif row.kind == "unsubscribe":
                # Sent because consent was withdrawn, to an ESP that already holds the person.
                why = None if row.person_id in held else "other"
            elif row.kind == "audience_add" and row.segment and why is None:
                # An add sent late (after retries, or a dead letter retried by an operator)
                # must not put back someone who has left the segment since.
                m = person.memberships.get(row.segment)
                if m is None or not m.member:
                    why = "other"
                elif m.holdout:
                    why = "holdout"
            if why is None and identifiers_of(idents.get(row.person_id, [])) == Identifiers():
                why = "no_identifier"
            if why is not None:
                skipped.append((row, why))
                continue
            ids = identifiers_of(idents.get(row.person_id, []))
            items.append(
                build_item(
                    row,
                    person,
                    ids,
                    tickets.get(row.person_id, []),
                    self.settings.zendesk.subdomain,
                    [s.name for s in self.settings.segments],
                    inferences=bool(getattr(config, "inferences", False)),
                )
            )
            sendable.append(row)
        return items, sendable, skipped

    def _record(
        self,
        rows: Sequence[DeliveryRow],
        outcomes: Sequence[Outcome],
        report: SyncReport,
        jitter: Callable[[], float],
        run: RunRecorder,
    ) -> None:
        now = self.clock()
        counts = run.counts
        results: list[tuple[DeliveryRow, str, int | None, str, int | None, str]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            d = decide(
                outcome, row.attempts + 1, now, from_us(row.created_us), self.policy, jitter()
            )
            if d.action == "done":
                report.sent += 1
                run.delivered(row.kind)
                results.append((row, "done", None, "", outcome.status, outcome.kind))
            elif d.action == "skipped":  # nothing the platform can match the person by
                report.skipped += 1
                run.skipped("no_identifier")
                results.append((row, "skipped", None, d.reason, outcome.status, outcome.kind))
            elif d.action == "retry":
                report.retried += 1
                counts.retried += 1
                assert d.at is not None
                results.append(
                    (row, "pending", to_us(d.at), d.reason, outcome.status, outcome.kind)
                )
            else:
                report.dead += 1
                if outcome.kind == "reject":
                    counts.rejected += 1
                else:
                    counts.dead += 1
                results.append((row, "dead", None, d.reason, outcome.status, outcome.kind))
        self.rows.finish(results, run.open())

    # -- reconcile --------------------------------------------------------------------------
    def reconcile(self, name: str) -> tuple[int, int]:
        """Full reconcile of an ad audience: desired (non-holdout members who consented)
        vs the ledger of what Tactful added; enqueue the adds and removes that differ."""
        config = self.configs[name]
        adds, removes = self.reconcile_plan(name)
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
            for pid in adds
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
            for pid in removes
        ]
        self.rows.enqueue(new)
        return len(adds), len(removes)

    def reconcile_plan(self, name: str) -> tuple[list[str], list[str]]:
        """The persons a reconcile would add to and remove from an ad audience (read only)."""
        config = self.configs[name]
        purpose = getattr(config, "purpose", "ads")
        default = self.settings.consent.default(purpose)
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
        return sorted(desired - have), sorted(have - desired)

    # -- the whole job ----------------------------------------------------------------------
    def sync(self, wait: float | None = None) -> SyncReport:
        routed = self.route_outbox()
        report = self.deliver_due(wait)
        report.routed = routed
        return report

    def close(self) -> None:
        """Stop: lanes end after their current request; a lane hanging longer is left to
        its (daemon) thread, with its destination, so closing never waits for a dead socket."""
        hanging = set(self.lanes.stop(STOP_GRACE_SECONDS))
        if hanging:
            log.warning("left deliveries in flight to: %s", ", ".join(sorted(hanging)))
        for name, dest in self.destinations.items():
            if name not in hanging:
                dest.close()

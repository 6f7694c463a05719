"""Issue 21 §1: one slow or broken destination never holds back another.

Real webhook destinations over loopback sockets: a healthy one beside a hanging, a
trickling, a resetting and a ``Retry-After``-overflowing one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.delivery.breaker import Circuit
from tactful.delivery.policy import RetryPolicy, decide
from tactful.delivery.store import DeliveryStore
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.base import Outcome
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import RecordingDestination, at, new_store_url, ticket, user
from tests.integration.fault_servers import fault_servers

pytestmark = pytest.mark.store

SECRET = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
MODES = ("ok", "hang", "trickle", "reset", "overflow")


def config(urls: dict[str, str], deadline: float) -> str:
    text = f"[delivery]\nrequest_deadline = {deadline}\n"
    text += '[[segments]]\nname = "suppress"\nwhen = "has_open_ticket"\n'
    for name, url in urls.items():
        text += f'[[destinations]]\nname = "{name}"\ntype = "webhook"\nurl = "{url}"\n'
        text += f'secret = "{SECRET}"\n'
    return text


def engine_for(tmp_path: Path, text: str) -> tuple[Any, Engine]:
    settings = settings_from_toml(text, environ={})
    return settings, Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))


def rows_of(engine: Engine, name: str) -> list[Any]:
    rows = DeliveryStore(engine.store).listing(["pending", "dead", "done", "skipped"])
    return [r for r in rows if r.destination == name]


def test_a_healthy_destination_delivers_beside_hanging_trickling_resetting_overflowing(
    tmp_path: Path,
) -> None:
    with fault_servers(*MODES, every=0.3) as servers:
        settings, engine = engine_for(
            tmp_path, config({m: s.url for m, s in servers.items()}, deadline=2)
        )
        engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
        worker = DeliveryWorker(settings, engine.store, round_wait=0.5)
        try:
            started = time.monotonic()
            report = worker.sync()
            first_round = time.monotonic() - started
            ok = rows_of(engine, "ok")
            # the healthy destination got everything in the first round, within its wait
            assert ok and all(r.status == "done" for r in ok)
            assert first_round < 1.5
            assert "hang" in (report.busy + list(worker.lanes._lanes))  # still running
            # the hanging and trickling requests end at the total deadline (2 s), although
            # the trickle sends a byte every 0.3 s (a read timeout alone never fires)
            give_up = time.monotonic() + 15  # a busy CI runner: wait for it, not a fixed 3 s
            while True:
                time.sleep(0.5)
                later = worker.sync()
                ended = [rows_of(engine, n)[0].attempts >= 1 for n in ("hang", "trickle")]
                if all(ended) or time.monotonic() > give_up:
                    break
            for name in ("hang", "trickle"):
                rows = rows_of(engine, name)
                assert rows[0].attempts >= 1 and rows[0].status == "pending", name
                assert "Timeout" in rows[0].last_error, rows[0].last_error
            reset = rows_of(engine, "reset")[0]
            assert reset.attempts >= 1 and reset.status == "pending"
            assert "reset by peer" in reset.last_error
            # Retry-After 99999999999999: clamped to retry_cap, one request, attempt recorded
            over = rows_of(engine, "overflow")
            assert servers["overflow"].requests == 1
            assert over[0].attempts == 1 and over[0].status == "pending"
            cap = (datetime.now(UTC) + timedelta(minutes=15, seconds=5)).timestamp() * 1e6
            assert over[0].next_us <= cap
            assert later.errors == {} or set(later.errors) <= {"hang", "trickle"}
        finally:
            worker.close()


def test_retry_after_overflow_is_clamped_not_raised() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(timedelta(seconds=1), timedelta(minutes=15), timedelta(days=3))
    for value, expect in [
        (99999999999999.0, timedelta(minutes=15)),
        (float("inf"), timedelta(minutes=15)),
        (float("nan"), timedelta(seconds=1)),
        (0.0, timedelta(seconds=1)),
        (-5.0, timedelta(seconds=1)),
        (30.0, timedelta(seconds=30)),
    ]:
        d = decide(Outcome("retry", "429", value, 429), 1, now, now, policy, 0.0)
        assert (d.action, d.at) == ("retry", now + expect), value


class Exploding:
    """A destination whose own code raises outside ``send`` (here: reading its limits)."""

    name, type, purpose, segments = "first", "webhook", "analytics", None

    @property
    def capabilities(self) -> Any:
        raise RuntimeError("bug in the destination")

    def send(self, items: Any) -> list[Outcome]:
        return [Outcome.ok() for _ in items]

    def close(self) -> None:
        pass


CLOCKED = """
[delivery]
circuit_failures = 2
circuit_cooldown = "1m"
[[segments]]
name = "suppress"
when = "has_open_ticket"
[[destinations]]
name = "first"
type = "webhook"
url = "https://a.example.com/h"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
[[destinations]]
name = "second"
type = "webhook"
url = "https://b.example.com/h"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_an_exception_in_one_destination_is_recorded_against_it_only(tmp_path: Path) -> None:
    settings, engine = engine_for(tmp_path, CLOCKED)
    second = RecordingDestination("second", kinds=("event",))
    dests: dict[str, Any] = {"first": Exploding(), "second": second}
    worker = DeliveryWorker(settings, engine.store, destinations=dests, rng=lambda: 0.0)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    report = worker.sync()
    assert second.delivered, "the round went on for the other destination"
    assert "RuntimeError: bug in the destination" in report.errors["first"]
    assert worker.circuit("first").failures == 1
    assert worker.circuit("first").last_error.startswith("RuntimeError")
    worker.close()


def test_circuit_opens_after_repeated_failures_probes_then_closes(tmp_path: Path) -> None:
    settings, engine = engine_for(tmp_path, CLOCKED)
    clock = Clock()
    first = RecordingDestination("first", kinds=("event",))
    dests: dict[str, Any] = {"first": first, "second": RecordingDestination("second")}
    worker = DeliveryWorker(
        settings, engine.store, destinations=dests, clock=clock, rng=lambda: 0.0
    )
    engine.apply([user(i, emails=(f"p{i}@example.com",)) for i in range(1, 4)])
    engine.apply([ticket(i, at(0), "open", requester_id=i) for i in range(1, 4)])
    down = Outcome("retry", "HTTP 503", None, 503)
    first.script = [down] * 100
    worker.sync()
    sent = len(first.sent)
    clock.now += timedelta(seconds=5)  # past the backoff, not the cool-down
    worker.sync()
    assert worker.circuit("first").state == "open"
    attempts = len(first.sent)
    clock.now += timedelta(seconds=5)
    report = worker.sync()
    assert len(first.sent) == attempts and attempts == 2 * sent  # open: nothing sent
    assert "circuit open until" in report.errors["first"]
    # after the cool-down one probe goes; it fails: open again for twice as long
    clock.now += timedelta(minutes=1)
    worker.sync()
    assert len(first.sent) == attempts + 1
    probe_failed = worker.circuit("first")
    assert probe_failed.state == "open" and probe_failed.cooldown_us == 120_000_000
    # the next probe succeeds: closed, and everything due goes
    first.script = []
    clock.now += timedelta(minutes=2, seconds=1)
    worker.sync()
    worker.sync()
    assert worker.circuit("first") == Circuit()
    assert {i.person_id for i in first.delivered} == {i.person_id for i in first.sent}
    worker.close()


def test_no_matchable_identifier_is_skipped_not_dead_lettered(tmp_path: Path) -> None:
    settings, engine = engine_for(tmp_path, CLOCKED)
    first = RecordingDestination("first", kinds=("event",))
    first.script = [Outcome("skip", "no identifier this platform can match on")]
    dests: dict[str, Any] = {"first": first, "second": RecordingDestination("second")}
    worker = DeliveryWorker(settings, engine.store, destinations=dests, rng=lambda: 0.0)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    report = worker.sync()
    assert report.dead == 0 and report.skipped >= 1
    rows = DeliveryStore(engine.store)
    assert rows.listing(["dead"]) == []
    skipped = [r for r in rows.listing(["skipped"]) if r.destination == "first"]
    assert skipped and "no identifier" in skipped[0].last_error
    assert worker.circuit("first") == Circuit()  # the platform answered: not a failure
    worker.close()


class Slow:
    """A destination sending each item on its own, slowly, ``parallel`` at once."""

    name, type, purpose, segments = "slow", "webhook", "analytics", None

    def __init__(self, parallel: int) -> None:
        from tactful.destinations.base import Capabilities

        self.capabilities = Capabilities(100, frozenset({"event"}), parallel=parallel)
        self.calls: list[list[str]] = []

    def send(self, items: Any) -> list[Outcome]:
        self.calls.append([i.person_id for i in items])
        time.sleep(0.1 * len(items))
        return [Outcome("retry", f"for {i.person_id}") for i in items]

    def close(self) -> None:
        pass


def test_per_item_destinations_send_slices_at_once_outcomes_in_order() -> None:
    from tactful.delivery.worker import send_parallel
    from tactful.destinations.base import Identifiers, Item

    items = [
        Item(f"k{i}", "event", f"p{i}", datetime(2026, 1, 1, tzinfo=UTC), Identifiers(), "e")
        for i in range(8)
    ]
    for parallel in (1, 4):
        dest = Slow(parallel)
        started = time.monotonic()
        outcomes = send_parallel(dest, items)
        took = time.monotonic() - started
        assert [o.error for o in outcomes] == [f"for p{i}" for i in range(8)]
        sent = sorted(pid for call in dest.calls for pid in call)
        assert len(dest.calls) == parallel and sent == sorted(i.person_id for i in items)
        if parallel > 1:
            assert took < 0.6, took  # 4 slices of 2 at once: ~0.2 s, not 0.8 s
        else:
            assert took >= 0.8

"""Destination fault storms, checked for exactness.

A few hundred people open, pend, solve and reopen tickets over two simulated days, so they
enter and leave the ``suppress`` segment again and again; the real destination clients
(Meta Custom Audience, Customer.io, Standard Webhooks) deliver to their fake vendors on
loopback. For a bounded stretch of the story every vendor is hit by a storm (fixed seed):
500/502/503, 429 with ``Retry-After``, Meta's code-17 throttle, connections dropped before
or after the vendor applied the request, requests that hang past the client timeout (again
before or after the vendor applied them), slow answers, and answers that come after the client
timeout though the vendor applied them (what a busy machine does to any request). Then the
storm stops and the worker keeps syncing on a fake clock until nothing is owed. Which applied
requests lost their answer is counted, not assumed: each request carries an attempt number,
the vendor side records the attempts it applied, the client side the answers it read whole.
Checked afterwards:

1. every person's final state is at every vendor (audience = treated members who consent
   to ads; Customer.io attributes = the final state; the receiver saw every change);
2. duplicates are at-least-once only: a vendor sees a change again only after an attempt
   that failed, never more often than it was attempted, under the same idempotency key;
3. per-person order at the webhook receiver equals the outbox order (an exit never
   arrives before its entry);
4. every delivery row is finished and every attempt is recorded, failures with errors.

A second test keeps one destination permanently failing next to a healthy one. The last
tests pin down two at-least-once holes in the audience ledger (fixed: lost-answer adds enter
the ledger; late adds of people who left the segment are skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from tactful.config import settings_from_toml
from tactful.core.state import INFERRED_FIELD_NAMES
from tactful.delivery.policy import RetryPolicy
from tactful.delivery.store import DeliveryRow, DeliveryStore
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations import hashing
from tactful.destinations.profiles import attributes, ulid_for
from tactful.destinations.webhook import webhook_id
from tactful.engine.engine import SALT_KEY, Engine, rules_from_settings
from tactful.readmodels.views import state_json
from tactful.store.records import from_us, to_us
from tactful.store.sqlite import SQLiteStore
from tactful.testing import FakeClock, consent, rating, ticket, user
from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread

SEED = 20260101
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CLIENT_TIMEOUT = 0.4  # seconds; every destination client gets it (see ShortTimeouts)
HANG = 0.6  # a hung request answers after this long: past the client timeout
MAX_HANGS = 3  # per vendor: hangs cost real time
SLOW = (0.01, 0.05)  # slow but in time
LATE = (0.45, 0.55)  # the vendor applied it; the answer comes after the client timeout
MAX_LATE = 10  # per vendor
# Meta gets one request per sync (a whole audience batch), the webhook one per change: a
# stronger storm at Meta gives it as much variety.
INTENSITY = {"meta": 2.0, "cio": 1.5}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --------------------------------------------------------------------------- the storm


class StormReset(Exception):
    """Raised by the storm after the response started: uvicorn drops the connection."""


# (fault, probability). Vendor faults go through the fakes' own ``fail_next`` (the vendor's
# error body and headers); 502 comes from a "load balancer" in front of the vendor.
FAULTS: tuple[tuple[str, float], ...] = (
    ("500", 0.06),
    ("503", 0.05),
    ("502", 0.04),
    ("429", 0.06),
    ("reset_before", 0.03),  # dropped before the vendor saw it
    ("reset_after", 0.03),  # the vendor applied it, the answer is lost
    ("hang_before", 0.02),  # client timeout, the vendor never saw it
    ("hang_after", 0.02),  # client timeout, the vendor applied it
    ("slow", 0.05),
    ("late", 0.01),  # the vendor applied it, the answer comes after the client timeout
    ("throttle", 0.02),  # Meta only: code 17 with X-Business-Use-Case-Usage
)
APPLIED_UNACKED = frozenset({"reset_after", "hang_after"})
ATTEMPT = "x-storm-attempt"  # stamped by ShortTimeouts on each request


class Storm:
    """Decides, per request and with a fixed seed, what goes wrong; counts what it did.
    Each vendor draws from its own seeded sequence: destinations deliver side by side
    (issue 21 §1), so the order of requests across vendors is not fixed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rngs: dict[str, random.Random] = {}
        self.active = False
        self.always: dict[str, str] = {}  # vendor -> a permanent fault
        self.lock = threading.Lock()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        # vendor -> attempt -> (headers, body) of each request the vendor applied (answered 2xx)
        self.applied: dict[str, dict[str, tuple[dict[str, str], bytes]]] = defaultdict(dict)
        self.answered: set[str] = set()  # attempts whose whole answer reached the client
        self.attempts = itertools.count()

    @property
    def unacked(self) -> dict[str, list[tuple[dict[str, str], bytes]]]:
        """Per vendor, the requests it applied whose answer the client never got whole: the
        storm's lost answers, and any answer that came after the client's timeout because the
        machine was busy (a loaded CI runner). Each of those may be applied again."""
        with self.lock:
            return {
                vendor: [seen for attempt, seen in done.items() if attempt not in self.answered]
                for vendor, done in self.applied.items()
            }

    def pick(self, vendor: str, has_throttle: bool) -> tuple[str, int | None, float]:
        """(fault, Retry-After, slow seconds) for the next request to ``vendor``."""
        with self.lock:
            if vendor in self.always:
                fault: str = self.always[vendor]
                self.counts[vendor][fault] += 1
                return fault, None, 0.0
            if not self.active:
                return "pass", None, 0.0
            rng = self.rngs.setdefault(vendor, random.Random(f"{self.seed}:{vendor}"))
            roll, fault = rng.random() / INTENSITY.get(vendor, 1.0), "pass"
            for name, p in FAULTS:
                if roll < p:
                    fault = name
                    break
                roll -= p
            if fault == "throttle" and not has_throttle:
                fault = "503"
            if fault.startswith("hang") and self.counts[vendor]["hang"] >= MAX_HANGS:
                fault = "500"
            retry_after = rng.choice((1, 7, 30, 120)) if fault == "429" else None
            if fault == "late" and self.counts[vendor]["late"] >= MAX_LATE:
                fault = "slow"
            slow = (
                rng.uniform(*(LATE if fault == "late" else SLOW))
                if fault in ("slow", "late")
                else 0.0
            )
            self.counts[vendor][fault] += 1
            if fault.startswith("hang"):
                self.counts[vendor]["hang"] += 1
            return fault, retry_after, slow


class Stormy:
    """ASGI middleware in front of a fake vendor's app that lets the storm in."""

    def __init__(self, name: str, fake: Any, storm: Storm) -> None:
        self.name, self.fake, self.storm = name, fake, storm
        self.app: ASGIApp = fake.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault, retry_after, slow = self.storm.pick(self.name, hasattr(self.fake, "throttle_next"))
        if fault in ("400", "500", "503", "429"):
            self.fake.fail_next(1, int(fault), retry_after)
        elif fault == "throttle":
            self.fake.throttle_next(1, 1)
        elif fault == "502":
            await _answer(send, 502, b"<html><body>502 Bad Gateway</body></html>")
            return
        elif fault == "hang_before":
            await asyncio.sleep(HANG)
            await _answer(send, 504, b"<html><body>504 Gateway Timeout</body></html>")
            return
        elif fault == "reset_before":
            await _drop(send)
        elif fault == "slow":
            await asyncio.sleep(slow)
        elif fault == "late":  # a busy vendor (or a busy client machine): applied, answered late
            inner_send = send

            async def late(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await asyncio.sleep(slow)
                await inner_send(message)

            send = late
        body = bytearray()

        async def tap() -> Message:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        def applied(status: int) -> None:
            """The vendor answered 2xx: it applied the request, whatever reaches the client."""
            if 200 <= status < 300:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                headers[":method"] = scope["method"]
                with self.storm.lock:
                    self.storm.applied[self.name][headers[ATTEMPT]] = (headers, bytes(body))

        if fault in APPLIED_UNACKED:
            kept: list[Message] = []

            async def keep(message: Message) -> None:
                kept.append(message)

            await self.app(scope, tap, keep)  # the vendor applies the request
            applied(kept[0]["status"])
            if fault == "reset_after":
                await _drop(send)
            await asyncio.sleep(HANG)
            with contextlib.suppress(Exception):  # the client gave up long ago
                for message in kept:
                    await send(message)
            return

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                applied(message["status"])
            await send(message)

        await self.app(scope, tap, answer)


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Start an answer with a body (even where the vendor's had none, e.g. 204), then fail:
    the server closes the connection mid-answer, the client never gets a whole response."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    raise StormReset("storm: connection dropped")


class _QuietStorm(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StormReset))


class ShortTimeouts(httpx.BaseTransport):
    """The destinations' own timeouts are 30-60 s; the storm needs them short. Each request
    carries an attempt number, and the storm learns which answers reached the client whole."""

    def __init__(self, seconds: float, storm: Storm) -> None:
        self.inner = httpx.HTTPTransport()
        self.seconds = seconds
        self.storm = storm

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["timeout"] = httpx.Timeout(self.seconds).as_dict()
        attempt = str(next(self.storm.attempts))
        request.headers[ATTEMPT] = attempt
        response = self.inner.handle_request(request)
        response.read()  # a lost or late answer raises here, before the storm hears of it
        with self.storm.lock:
            self.storm.answered.add(attempt)
        return response

    def close(self) -> None:
        self.inner.close()


# --------------------------------------------------------------------------- the vendors


@dataclass
class Vendors:
    meta: FakeMeta
    cio: FakeCustomerIO
    hook: FakeWebhookReceiver
    storm: Storm
    urls: dict[str, str]

    @property
    def audience(self) -> str:
        return next(iter(self.meta.audiences))


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    storm = Storm(SEED)
    meta, cio, hook = FakeMeta(), FakeCustomerIO(), FakeWebhookReceiver(HOOK_SECRET)
    servers = [
        run_in_thread(Stormy(name, fake, storm))
        for name, fake in (("meta", meta), ("cio", cio), ("hook", hook))
    ]
    quiet = _QuietStorm()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    urls = {
        "meta": FakeMeta.base_url(servers[0][0]),
        "cio": servers[1][0],
        "hook": f"{servers[2][0]}{hook.path}",
    }
    try:
        yield Vendors(meta, cio, hook, storm, urls)
    finally:
        storm.active = False
        storm.always.clear()
        for _, stop in servers:
            stop()
        logging.getLogger("uvicorn.error").removeFilter(quiet)


def config_toml(v: Vendors, *, holdout: float = 0.1, delivery: str = "") -> str:
    return f"""
[zendesk]
subdomain = "glowlab"

[[segments]]
name = "suppress"
when = "has_open_ticket"
holdout = {holdout}

[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress"
audience_id = "{v.audience}"
access_token = "{v.meta.access_token}"
base_url = "{v.urls["meta"]}"

[[destinations]]
name = "cio"
type = "customerio"
site_id = "site-1"
api_key = "track-key"
base_url = "{v.urls["cio"]}"

[[destinations]]
name = "hook"
type = "webhook"
url = "{v.urls["hook"]}"
secret = "{HOOK_SECRET}"
{delivery}
"""


@dataclass
class Setup:
    engine: Engine
    worker: DeliveryWorker
    clock: FakeClock
    rows: DeliveryStore  # what ``tactful deliveries [retry]`` uses, on the test's clock


def setup(tmp_path: Path, toml: str, storm: Storm, policy: RetryPolicy | None = None) -> Setup:
    settings = settings_from_toml(toml, environ={})
    clock = FakeClock()
    engine = Engine(
        rules_from_settings(settings), SQLiteStore(f"sqlite:///{tmp_path}/t.db"), clock=clock
    )
    with engine.store.transaction() as tx:  # person ids (and holdouts) the same every run
        tx.set_meta(SALT_KEY, f"fault-storm-{SEED}")
    worker = DeliveryWorker(
        settings,
        engine.store,
        transport=ShortTimeouts(CLIENT_TIMEOUT, storm),
        policy=policy,
        clock=clock,
        rng=random.Random(SEED).random,
    )
    return Setup(engine, worker, clock, DeliveryStore(engine.store, lambda: to_us(clock())))


# --------------------------------------------------------------------------- the story


@dataclass
class Person:
    uid: int
    email: str
    tickets: dict[int, datetime] = field(default_factory=dict)  # ticket id -> created_at
    open: set[int] = field(default_factory=set)
    ads: bool | None = None  # the latest ads consent given, None: never asked

    @property
    def hashed(self) -> str:
        h = hashing.meta_email(self.email)
        assert h is not None
        return h


class Story:
    """People doing support things; the model of who should be in ``suppress`` is ours."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.people = [Person(1000 + i, f"person{i}@example.com") for i in range(n)]
        self.by_email = {p.email: p for p in self.people}
        self.next_ticket = 1
        self.next_rating = 1

    def users(self, when: datetime) -> list[Any]:
        return [user(p.uid, when, emails=(p.email,)) for p in self.people]

    def _version(self, p: Person, tid: int, when: datetime, status: str) -> Any:
        return ticket(tid, when, status, requester_id=p.uid, created_at=p.tickets[tid])

    def step(self, when: datetime, busy: int, consent_changes: bool) -> list[Any]:
        events: list[Any] = []
        for p in self.rng.sample(self.people, busy):
            roll = self.rng.random()
            if p.open and roll < 0.5:  # solved: out of the segment if it was the last one
                tid = self.rng.choice(sorted(p.open))
                p.open.discard(tid)
                events.append(self._version(p, tid, when, "solved"))
            elif p.open and roll < 0.65:  # waiting on the customer: still open
                events.append(self._version(p, self.rng.choice(sorted(p.open)), when, "pending"))
            elif roll < 0.85 or not p.tickets:  # a new ticket
                tid, self.next_ticket = self.next_ticket, self.next_ticket + 1
                p.tickets[tid] = when
                p.open.add(tid)
                events.append(self._version(p, tid, when, "open"))
            elif roll < 0.92:  # a solved ticket reopened
                closed = sorted(set(p.tickets) - p.open)
                if closed:
                    tid = self.rng.choice(closed)
                    p.open.add(tid)
                    events.append(self._version(p, tid, when, "open"))
            else:
                tid = self.rng.choice(sorted(p.tickets))
                score = self.rng.choice(("good", "bad"))
                events.append(
                    rating(self.next_rating, when, score, requester_id=p.uid, ticket_id=tid)
                )
                self.next_rating += 1
            if consent_changes and self.rng.random() < 0.06:
                p.ads = not (p.ads if p.ads is not None else True)
                events.append(consent(when, "ads", p.ads, email=p.email))
        return events


# --------------------------------------------------------------------------- what happened


def all_rows(store: Any) -> list[DeliveryRow]:
    return DeliveryStore(store).listing(["pending", "dead", "done", "skipped"], limit=1_000_000)


def attempts_of(store: Any) -> dict[int, list[tuple[str, int | None, str]]]:
    with store.reader() as reader:
        conn: Any = reader.conn
        found = conn.execute(
            "SELECT delivery_id, outcome, status, error FROM delivery_attempts ORDER BY id"
        ).fetchall()
    out: dict[int, list[tuple[str, int | None, str]]] = defaultdict(list)
    for delivery_id, outcome, status, error in found:
        out[int(delivery_id)].append((outcome, status, error or ""))
    return out


def treated_members(store: Any, segment: str = "suppress") -> tuple[set[str], set[str]]:
    """(non-holdout members, holdout members) of ``segment`` in the store."""
    treated: set[str] = set()
    held: set[str] = set()
    with store.reader() as reader:
        for pid, membership in reader.segment_members(segment, None, 100_000):
            (held if membership.holdout else treated).add(pid)
    return treated, held


def person_ids(store: Any, story: Story) -> dict[str, str]:
    """email -> person id."""
    out = {}
    with store.reader() as reader:
        for p in story.people:
            (pid,) = reader.find_persons("email", p.email)
            out[p.email] = pid
    return out


def meta_ops(requests: list[Any]) -> list[tuple[str, str, int]]:
    """(hashed email, "audience_add"/"audience_remove", session_id) per row the fake applied,
    in the order it applied them."""
    ops = []
    for r in requests:
        if r.status != 200 or r.method == "GET":  # GET: a read of the audience's size
            continue
        form = dict(parse_qsl(r.body.decode(), keep_blank_values=True))
        data = orjson.loads(form["payload"])
        schema = data["schema"]
        session = orjson.loads(form["session"])["session_id"]
        kind = "audience_add" if r.method == "POST" else "audience_remove"
        for row in data["data"]:
            email = dict(zip(schema, row, strict=True))["EMAIL"]
            ops.append((email, kind, session))
    return ops


def cio_entries(requests: list[Any]) -> list[dict[str, Any]]:
    """Every batch entry the fake applied, in order."""
    out = []
    for r in requests:
        if r.path == "/api/v2/batch" and r.status in (200, 207):
            out.extend(orjson.loads(r.body)["batch"])
    return out


@dataclass
class Seen:
    """A request as the storm saw it, shaped like the fakes' ``RecordedRequest``."""

    method: str
    path: str
    body: bytes
    status: int = 200


def _as_requests(unacked: list[tuple[dict[str, str], bytes]], path: str) -> list[Any]:
    """The storm's record of applied-but-unanswered requests, for ``meta_ops``/``cio_entries``."""
    return [Seen(h[":method"], path, body) for h, body in unacked]


def run_groups(rows: list[DeliveryRow]) -> list[tuple[str, list[DeliveryRow]]]:
    """Consecutive rows of one kind grouped: the rows behind each of ``runs``' runs."""
    out: list[tuple[str, list[DeliveryRow]]] = []
    for r in rows:
        if out and out[-1][0] == r.kind:
            out[-1][1].append(r)
        else:
            out.append((r.kind, [r]))
    return out


def runs(seq: list[str]) -> list[tuple[str, int]]:
    """Consecutive repeats collapsed: ["a", "a", "b"] -> [("a", 2), ("b", 1)]."""
    out: list[tuple[str, int]] = []
    for x in seq:
        if out and out[-1][0] == x:
            out[-1] = (x, out[-1][1] + 1)
        else:
            out.append((x, 1))
    return out


def pending(rows: DeliveryStore, destination: str | None = None) -> int:
    return sum(
        1
        for r in rows.listing(["pending"], limit=1_000_000)
        if destination is None or r.destination == destination
    )


# --------------------------------------------------------------------------- the storm test


PERSONS = 200
STEPS = 30
STORM = range(4, 22)  # the steps during which the vendors misbehave
STEP = timedelta(minutes=20)
TICK = timedelta(minutes=4)


def test_fault_storm_exactness(tmp_path: Path, vendors: Vendors) -> None:
    started = time.monotonic()
    policy = RetryPolicy(
        base=timedelta(seconds=5), cap=timedelta(minutes=10), max_age=timedelta(days=30)
    )
    # The storm tests retry exactness; the circuit breaker (tested in
    # tests/integration/test_delivery_faults.py) would hold Meta's adds back until people
    # have left, and an add applied with its answer lost is then skipped, not done, which
    # this test's per-row accounting of what Meta applied does not model.
    no_breaker = "[delivery]\ncircuit_failures = 1000\n"
    s = setup(tmp_path, config_toml(vendors, delivery=no_breaker), vendors.storm, policy)
    story = Story(PERSONS, SEED + 1)
    storm = vendors.storm
    try:
        s.engine.apply(story.users(s.clock()))
        s.worker.sync()
        for step in range(STEPS):
            storm.active = step in STORM
            # Consent moves only outside the storm: see the xfail test at the end.
            calm = step < STORM.start or step >= STORM.stop + 2
            s.engine.apply(story.step(s.clock(), busy=35, consent_changes=calm))
            for _ in range(STEP // TICK):  # the worker polls while time passes
                s.worker.sync()
                s.clock.advance(TICK)
            if step == STORM.stop + 1:  # the backlog drains before consent moves again
                for _ in range(50):
                    if not pending(s.rows):
                        break
                    s.clock.advance(timedelta(minutes=15))
                    s.worker.sync()
        storm.active = False
        for _ in range(100):  # the worker keeps running after the storm
            if not pending(s.rows):
                break
            s.clock.advance(timedelta(minutes=15))
            s.worker.sync()
    finally:
        storm.active = False
        s.worker.close()
    elapsed = time.monotonic() - started

    store = s.engine.store
    rows = all_rows(store)
    attempts = attempts_of(store)
    ids = person_ids(store, story)
    email_of = {pid: email for email, pid in ids.items()}

    # The storm really happened: every kind of fault somewhere, every vendor hit by each
    # class of fault (an error status, a throttle, a request lost before or after the vendor
    # applied it).
    kinds = {name for name, _ in FAULTS}
    assert kinds <= {k for seen in storm.counts.values() for k, n in seen.items() if n}
    for vendor in ("meta", "cio", "hook"):
        seen = storm.counts[vendor]
        classes = (("500", "502", "503"), ("429", "throttle"), ("reset_before", "hang_before"))
        for cls in (*classes, tuple(APPLIED_UNACKED)):
            assert sum(seen[k] for k in cls) > 0, (vendor, cls, dict(seen))
    failed = [a for tries in attempts.values() for a in tries if a[0] != "ok"]
    assert len(failed) >= 100, len(failed)

    # -- 4. every row finished, every attempt recorded ----------------------------------------
    statuses = Counter(r.status for r in rows)
    assert set(statuses) <= {"done", "skipped"}, statuses
    assert sum(len(a) for a in attempts.values()) >= statuses["done"]
    for r in rows:
        tries = attempts.get(r.id, [])
        assert len(tries) == r.attempts, (r, tries)
        if r.status == "done":
            assert tries and tries[-1][0] == "ok", (r, tries)
        for outcome, _, error in tries if r.status == "skipped" else tries[:-1]:
            assert outcome != "ok" and error, (r, tries)  # failures say why
        if r.status == "skipped":  # no ads consent, or a removal of someone never added
            assert r.destination == "meta", r

    # -- the engine did what the story says --------------------------------------------------
    treated, held = treated_members(store)
    in_segment = {ids[p.email] for p in story.people if p.open}
    assert treated | held == in_segment
    assert len(treated) > 30 and held  # the holdout is exercised too

    # -- 1a. Meta: the audience is exactly the treated members who consent to ads ------------
    with store.reader() as reader:
        persons = reader.load_persons(sorted(ids.values()))
    ads_ok = {pid for pid, row in persons.items() if row.facts.consent_for("ads") is not False}
    assert ads_ok == {ids[p.email] for p in story.people if p.ads is not False}
    assert len(ads_ok) < len(ids)  # some people withdrew ads consent
    expected_audience = {
        frozenset({("EMAIL", story.by_email[email_of[pid]].hashed)}) for pid in treated & ads_ok
    }
    audience = set(vendors.meta.snapshot()[vendors.audience])
    assert audience == expected_audience, (
        len(audience - expected_audience),
        len(expected_audience - audience),
    )
    assert s.rows.ledger("meta") == treated & ads_ok

    # -- 1b. Customer.io: each profile equals the final state ---------------------------------
    people = vendors.cio.snapshot()["people"]
    profiled = {r.person_id for r in rows if r.destination == "cio" and r.kind == "profile"}
    assert {email_of[pid] for pid in profiled} == set(people)
    for pid in profiled:
        want = {
            k: v
            for k, v in attributes(state_json(persons[pid].state), "unix").items()
            if v is not None and v != ""
        }
        have = people[email_of[pid]]
        # the inferences from what customers write are not sent without opt-in (issue 25)
        sent = [k for k in state_json(persons[pid].state) if k not in INFERRED_FIELD_NAMES]
        assert {k: have.get(k) for k in sent} == {k: want.get(k) for k in sent}, email_of[pid]
        assert not set(INFERRED_FIELD_NAMES) & set(have)
        assert have["zendesk_ticket_count"] == persons[pid].state["ticket_count"]

    # -- 1c/3. the webhook receiver: every change, in per-person order -----------------------
    hook_rows = sorted((r for r in rows if r.destination == "hook"), key=lambda r: r.id)
    key_of = {webhook_id(f"hook:{r.key}"): r for r in hook_rows}
    assert len(key_of) == len(hook_rows)  # one idempotency key per change
    arrivals: list[str] = [d.webhook_id for d in vendors.hook.deliveries]
    assert set(arrivals) == set(key_of), "every change received, and nothing else"
    first: dict[str, int] = {}
    for index, msg_id in enumerate(arrivals):
        first.setdefault(msg_id, index)
    per_person: dict[str, list[DeliveryRow]] = defaultdict(list)
    for r in hook_rows:
        per_person[r.person_id].append(r)
    for pid, mine in per_person.items():
        order = [first[webhook_id(f"hook:{r.key}")] for r in mine]
        assert order == sorted(order), f"per-person order violated for {email_of.get(pid, pid)}"
    received = vendors.hook.snapshot()
    for pid in ids.values():
        changes = [
            received[webhook_id(f"hook:{r.key}")]["data"]["change"]
            for r in per_person.get(pid, [])
            if r.name == "segment_membership_changed"
        ]
        # entered, exited, entered, ...: an exit never before its entry
        assert changes == ["entered", "exited"] * (len(changes) // 2) + ["entered"] * (
            len(changes) % 2
        ), (email_of[pid], changes)
        assert (bool(changes) and changes[-1] == "entered") == (pid in treated)
    with store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        outbox = conn.execute(
            "SELECT payload FROM outbox WHERE topic = 'segment_membership_changed'"
        ).fetchall()
    expected_changes = sum(1 for (raw,) in outbox if not orjson.loads(raw)["holdout"])
    assert sum(1 for r in hook_rows if r.name == "segment_membership_changed") == expected_changes

    # -- 2. duplicates: at least once, and no more ------------------------------------------
    # A vendor sees a change again exactly as often as it applied a request for it whose
    # answer was lost (the storm records those), under the same idempotency key, and never
    # more often than the change was attempted.
    unacked = storm.unacked
    assert all(unacked[v] for v in ("meta", "cio", "hook")), {k: len(v) for k, v in unacked.items()}

    # Webhooks: one request per change, keyed by ``webhook-id``.
    hook_extra = Counter(arrivals) - Counter(set(arrivals))
    assert hook_extra == Counter(h["webhook-id"] for h, _ in unacked["hook"])
    for msg_id, extra in hook_extra.items():
        r = key_of[msg_id]
        bodies = {
            orjson.dumps(d.payload) for d in vendors.hook.deliveries if d.webhook_id == msg_id
        }
        assert len(bodies) == 1, msg_id  # the same change, byte for byte
        assert 1 + extra <= r.attempts, r
        assert any(o != "ok" for o, _, _ in attempts[r.id]), r

    # Meta: per person, the adds and removes it applied are the done rows, in order, plus any
    # skipped row it applied though its answer was lost (an add that came back late after the
    # person had left: the ledger keeps it, and the removal that follows is done); a row is
    # applied again only after a lost answer, and never more often than it was attempted.
    applied: dict[str, list[str]] = defaultdict(list)
    for hashed, kind, _ in meta_ops(vendors.meta.requests):
        applied[hashed].append(kind)
    meta_extra: Counter[str] = Counter()
    for p in story.people:
        pid = ids[p.email]
        mine_all = sorted(
            (r for r in rows if r.destination == "meta" and r.person_id == pid), key=lambda r: r.id
        )
        done = [r for r in mine_all if r.status == "done"]
        maybe = [r for r in mine_all if r.status == "skipped" and attempts[r.id]]
        seen_runs = runs(applied.get(p.hashed, []))
        kinds = [k for k, _ in seen_runs]
        candidates = (
            run_groups(sorted([*done, *extra], key=lambda r: r.id))
            for n in range(len(maybe) + 1)
            for extra in itertools.combinations(maybe, n)
        )
        row_groups = next((g for g in candidates if [k for k, _ in g] == kinds), None)
        assert row_groups is not None, (p.email, kinds, [(r.kind, r.status) for r in mine_all])
        for (kind, n_seen), (_, group) in zip(seen_runs, row_groups, strict=True):
            assert n_seen <= sum(r.attempts for r in group), (p.email, kind, n_seen, group)
            n_done = sum(1 for r in group if r.status == "done")
            if n_seen > n_done:
                meta_extra[p.hashed] += n_seen - n_done
                assert any(o != "ok" for r in group for o, _, _ in attempts[r.id]), group
    lost_meta = Counter(hashed for hashed, _, _ in meta_ops(_as_requests(unacked["meta"], "/meta")))
    assert meta_extra == lost_meta

    # Customer.io: an event is its ULID (one per row, deduplicated by the vendor); a profile
    # update is (person, timestamp).
    cio_rows = [r for r in rows if r.destination == "cio"]
    event_rows = {
        ulid_for(f"cio:{r.key}", from_us(r.at_us)): r for r in cio_rows if r.kind == "event"
    }
    assert len(event_rows) == sum(1 for r in cio_rows if r.kind == "event")
    assert set(vendors.cio.snapshot()["events"]) == set(event_rows)

    def change(entry: dict[str, Any]) -> tuple[str, str, int]:
        if entry["action"] == "event":
            return ("event", entry["id"], 0)
        return ("profile", entry["identifiers"]["email"], entry["timestamp"])

    def rows_of(key: tuple[str, str, int]) -> list[DeliveryRow]:
        if key[0] == "event":
            return [event_rows[key[1]]]
        return [
            r
            for r in cio_rows
            if r.kind == "profile"
            and r.person_id == ids[key[1]]
            and int(from_us(r.at_us).timestamp()) == key[2]
        ]

    cio_extra: Counter[tuple[str, str, int]] = Counter()
    for key, count in Counter(change(e) for e in cio_entries(vendors.cio.requests)).items():
        mine = rows_of(key)
        assert mine, key
        assert count <= sum(r.attempts for r in mine), (key, mine)
        if count > len(mine):
            cio_extra[key] = count - len(mine)
            assert any(o != "ok" for r in mine for o, _, _ in attempts[r.id]), mine
    lost_cio = Counter(
        change(e) for e in cio_entries(_as_requests(unacked["cio"], "/api/v2/batch"))
    )
    assert cio_extra == lost_cio

    hook_dupes, meta_dupes, cio_dupes = (
        sum(c.values()) for c in (hook_extra, meta_extra, cio_extra)
    )
    print(
        f"\nfault storm: {len(rows)} deliveries ({dict(statuses)}), {len(failed)} failed "
        f"attempts, duplicates hook={hook_dupes} meta={meta_dupes} cio={cio_dupes}, "
        f"storm={ {k: dict(v) for k, v in storm.counts.items()} }, {elapsed:.1f} s"
    )


# --------------------------------------------------------------------------- one destination down


def test_a_failing_destination_does_not_hold_up_a_healthy_one(
    tmp_path: Path, vendors: Vendors
) -> None:
    """Meta answers 503 to everything and Customer.io rejects everything (400) while the
    webhook receiver is fine: the webhook gets every change on the first sync; Meta's rows
    retry with recorded attempts until ``max_age``, then are dead; Customer.io's are dead at
    once. ``tactful deliveries retry --all`` after the fault brings them all home."""
    delivery = '[delivery]\nretry_base = "1m"\nretry_cap = "10m"\nmax_age = "2h"\n'
    s = setup(tmp_path, config_toml(vendors, holdout=0.0, delivery=delivery), vendors.storm)
    story = Story(60, SEED + 2)
    vendors.storm.always = {"meta": "503", "cio": "400"}
    try:
        s.engine.apply(story.users(s.clock()))
        for _ in range(4):  # people only enter (see the xfail test below for exits)
            s.clock.advance(timedelta(minutes=5))
            events = []
            for p in story.rng.sample(story.people, 15):
                tid, story.next_ticket = story.next_ticket, story.next_ticket + 1
                p.tickets[tid] = s.clock()
                p.open.add(tid)
                events.append(ticket(tid, s.clock(), "open", requester_id=p.uid))
            s.engine.apply(events)
            began = time.monotonic()
            s.worker.sync()
            assert time.monotonic() - began < 5
            assert pending(s.rows, "hook") == 0  # promptly, despite the others
        hook_rows = [r for r in all_rows(s.engine.store) if r.destination == "hook"]
        assert hook_rows and all(r.status == "done" and r.attempts == 1 for r in hook_rows)
        assert {webhook_id(f"hook:{r.key}") for r in hook_rows} == set(vendors.hook.snapshot())

        cio_dead = [r for r in all_rows(s.engine.store) if r.destination == "cio"]
        assert cio_dead and all(r.status == "dead" for r in cio_dead)
        assert all("injected 400" in r.last_error for r in cio_dead)

        meta_rows = [r for r in all_rows(s.engine.store) if r.destination == "meta"]
        assert meta_rows and all(r.status == "pending" and r.attempts >= 1 for r in meta_rows)
        for _ in range(40):  # time passes; Meta keeps failing
            s.clock.advance(timedelta(minutes=10))
            s.worker.sync()
        meta_rows = [r for r in all_rows(s.engine.store) if r.destination == "meta"]
        assert all(r.status == "dead" for r in meta_rows)
        assert all(r.last_error.startswith("still failing after 2:00:00") for r in meta_rows)
        attempts = attempts_of(s.engine.store)
        for r in meta_rows:
            # retried until Meta's circuit opened (issue 21 §1), then only probed
            assert len(attempts[r.id]) == r.attempts >= 1, r
            assert all(o == "retry" and st == 503 and e for o, st, e in attempts[r.id]), r
        assert vendors.meta.snapshot()[vendors.audience] == frozenset()

        vendors.storm.always.clear()  # the faults stop
        s.worker.sync()
        assert pending(s.rows) == 0  # dead letters wait for an operator
        requeued = s.rows.retry(None)  # `tactful deliveries retry --all`
        assert requeued == len(meta_rows) + len(cio_dead)
        s.worker.sync()
        final = all_rows(s.engine.store)
        assert all(r.status == "done" for r in final), Counter(r.status for r in final)
        treated, _ = treated_members(s.engine.store)
        email_of = {pid: email for email, pid in person_ids(s.engine.store, story).items()}
        assert set(vendors.meta.snapshot()[vendors.audience]) == {
            frozenset({("EMAIL", story.by_email[email_of[pid]].hashed)}) for pid in treated
        }
        assert set(vendors.cio.snapshot()["people"]) == {
            email_of[r.person_id] for r in final if r.destination == "cio"
        }
    finally:
        s.worker.close()


# --------------------------------------------------------------------------- ledger holes


ANN = "ann@example.com"


def ann_in_audience(v: Vendors) -> bool:
    hashed = hashing.meta_email(ANN)
    return frozenset({("EMAIL", hashed)}) in v.meta.snapshot()[v.audience]


def test_withdrawn_consent_removes_a_member_whose_add_answer_was_lost(
    tmp_path: Path, vendors: Vendors
) -> None:
    s = setup(tmp_path, config_toml(vendors, holdout=0.0), vendors.storm)
    try:
        s.engine.apply([user(1, s.clock(), emails=(ANN,)), ticket(1, s.clock(), "open")])
        vendors.storm.always = {"meta": "reset_after"}  # Meta adds Ann, the answer is lost
        s.worker.sync()
        vendors.storm.always.clear()
        assert ann_in_audience(vendors)
        s.clock.advance(timedelta(minutes=1))
        s.engine.apply([consent(s.clock(), "ads", False, email=ANN)])
        for _ in range(3):
            s.clock.advance(timedelta(minutes=10))
            s.worker.sync()
        meta = [(r.kind, r.status) for r in all_rows(s.engine.store) if r.destination == "meta"]
        # The retried add is skipped (no consent any more); the removal is sent, because an
        # add whose answer was lost is in the ledger (it may have been applied).
        assert meta == [("audience_add", "skipped"), ("audience_remove", "done")]
        assert not ann_in_audience(vendors), "Ann withdrew ads consent but is still in the audience"
    finally:
        s.worker.close()


def test_retrying_a_stale_dead_add_does_not_readd_someone_who_left(
    tmp_path: Path, vendors: Vendors
) -> None:
    delivery = '[delivery]\nretry_base = "1m"\nretry_cap = "10m"\nmax_age = "1h"\n'
    s = setup(tmp_path, config_toml(vendors, holdout=0.0, delivery=delivery), vendors.storm)
    try:
        vendors.storm.always = {"meta": "503"}
        s.engine.apply([user(1, s.clock(), emails=(ANN,)), ticket(1, s.clock(), "open")])
        s.worker.sync()
        for _ in range(10):  # Meta is down for longer than max_age: the add is dead
            s.clock.advance(timedelta(minutes=10))
            s.worker.sync()
        s.engine.apply([ticket(1, s.clock(), "solved")])  # Ann leaves the segment
        s.worker.sync()
        vendors.storm.always.clear()  # Meta is back
        for _ in range(3):
            s.clock.advance(timedelta(minutes=10))
            s.worker.sync()
        meta = [(r.kind, r.status) for r in all_rows(s.engine.store) if r.destination == "meta"]
        # the failed adds may have been applied, so the removal is sent
        assert meta == [("audience_add", "dead"), ("audience_remove", "done")]
        assert s.rows.retry(None) == 1  # the operator: `tactful deliveries retry --all`
        s.worker.sync()
        meta = [(r.kind, r.status) for r in all_rows(s.engine.store) if r.destination == "meta"]
        # the stale add is not sent: Ann is no longer a member
        assert meta == [("audience_add", "skipped"), ("audience_remove", "done")]
        treated, _ = treated_members(s.engine.store)
        assert treated == set()
        assert not ann_in_audience(vendors), "Ann left the segment but was added back"
    finally:
        s.worker.close()

"""Fixtures for the fake Zendesk: a simulator, its API served on loopback, a receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tactful.testing.sim import ZendeskSimulator, run_in_thread


@pytest.fixture
def sim() -> ZendeskSimulator:
    return ZendeskSimulator()


@dataclass
class Served:
    sim: ZendeskSimulator
    base_url: str
    client: httpx.Client


@pytest.fixture
def served(sim: ZendeskSimulator) -> Iterator[Served]:
    base_url, stop = sim.serve()
    client = httpx.Client(base_url=base_url, auth=sim.auth)
    try:
        yield Served(sim, base_url, client)
    finally:
        client.close()
        stop()


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook endpoint that records requests and answers with scripted statuses."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.script.extend((s, headers or {}) for s in statuses)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        with rec.lock:
            rec.received.append(Received(body, dict(request.headers)))
            status, headers = rec.script.pop(0) if rec.script else (200, {})
        return Response(b"", status, headers)

    app = Starlette(routes=[Route("/hooks/zendesk", hook, methods=["POST"])])
    base_url, stop = run_in_thread(app)
    rec.url = f"{base_url}/hooks/zendesk"
    try:
        yield rec
    finally:
        stop()


def story(sim: ZendeskSimulator) -> dict[str, int]:
    """A small account: a solved-and-rated ticket, a merge, a deletion, a user merge."""
    ann = sim.create_user("Ann Lee", "ann@example.com", tags=["subscriber"])
    bob = sim.create_user("Bob Ray", phone="+14155550100", external_id="ext-9")
    dup = sim.create_user("Ann", "Ann@Example.com")
    sim.advance(timedelta(minutes=10))
    t1 = sim.create_ticket(ann, "Rash after the serum", tags=["irritation"], priority="high")
    sim.advance(timedelta(hours=1))
    sim.update_ticket(t1, status="open", custom_fields={360012345: "reaction"})
    sim.advance(timedelta(minutes=5))
    t2 = sim.create_ticket(ann, "Rash again", channel="email")
    sim.advance(timedelta(minutes=5))
    sim.merge_tickets([t2], t1)
    sim.advance(timedelta(hours=2))
    sim.update_ticket(t1, status="pending", priority="urgent", add_tags=["safety"])
    sim.advance(timedelta(hours=3))
    sim.solve(t1)
    sim.advance(timedelta(days=1))
    sim.offer_rating(t1)
    sim.advance(timedelta(hours=5))
    sim.rate(t1, "bad", "still red")
    t3 = sim.create_ticket(bob, "Where is my order?", channel="api")
    sim.advance(timedelta(minutes=30))
    sim.update_ticket(t3, status="hold")
    t4 = sim.create_ticket(dup, "Refund please", tags=["refund"])
    sim.advance(timedelta(minutes=1))
    sim.delete_ticket(t4)
    sim.create_ticket(dup, "Cancel my subscription", channel="native_messaging")
    sim.advance(timedelta(minutes=1))
    sim.merge_users(dup, ann)
    sim.advance(timedelta(days=4))
    sim.close(t1)
    sim.reopen(t3)
    sim.update_user(bob, user_fields={"marketing_consent_email": True}, tags=["vip"])
    gone = sim.create_user("Gone Soon", "gone@example.com")
    sim.advance(timedelta(minutes=1))
    sim.delete_user(gone)
    sim.advance(timedelta(minutes=1))
    return {"ann": ann, "bob": bob, "dup": dup, "gone": gone, "t1": t1, "t2": t2, "t3": t3}

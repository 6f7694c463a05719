"""Same-minute updates are not lost (issue 18 §5).

Trigger bodies carry minute-precision times: New, Open and Solved within one minute render
the same ``updated_at``. Two different bodies for one ticket are never duplicates; when a
body cannot tell whether it is newer than a stored version of the same minute, the ticket is
fetched through the API and the authoritative version applied. A body that repeats a JSON
key is untrusted: kept, not applied, and the ticket fetched the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url
from tactful.testing.sim import WebhookSender, ZendeskSimulator
from tactful.web.app import create_app
from tactful.zendesk.client import ZendeskClient
from tactful.zendesk.signing import sign

pytestmark = pytest.mark.store

SECRET = "dGVzdC13ZWJob29rLXNlY3JldA=="
TOKEN = "t0ken"
CONFIG = f"""
[zendesk]
webhook_secret = "{SECRET}"

[api]
token = "{TOKEN}"

[[segments]]
name = "suppress"
when = "has_open_ticket"
"""


def signed(body: bytes) -> dict[str, str]:
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": sign(SECRET, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


class Account:
    """A simulated Zendesk: Ann's ticket goes New, Open, Solved within one minute."""

    def __init__(self) -> None:
        self.sim = ZendeskSimulator()
        ann = self.sim.create_user("Ann Lee", "ann@example.com")
        self.sim.advance(timedelta(minutes=5, seconds=10))
        self.ticket = self.sim.create_ticket(ann, "Rash after the serum")
        self.sim.advance(timedelta(seconds=5))
        self.sim.update_ticket(self.ticket, status="open")
        self.sim.advance(timedelta(seconds=30))
        self.sim.solve(self.ticket)
        sender = WebhookSender("http://testserver/webhooks/zendesk", SECRET, sim=self.sim)
        sender.mode = "trigger"
        sender.collect()
        self.bodies = [d.body for d in sender.pending]  # New, Open, Solved: one minute


@pytest.fixture
def account() -> Account:
    return Account()


@pytest.fixture
def served(account: Account, tmp_path: Path) -> Iterator[TestClient]:
    """The server with a Zendesk API client (the simulator) that fetches tickets."""
    base_url, stop = account.sim.serve()
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    client = ZendeskClient(base_url, account.sim.email, account.sim.api_token, sleep=lambda s: 0)
    app = create_app(settings, engine, tick_seconds=0, zendesk=client, fetch_seconds=0.05)
    try:
        with TestClient(app) as c:
            yield c
    finally:
        client.close()
        stop()


def state(c: TestClient) -> Any:
    r = c.get("/api/people/ann@example.com", headers={"Authorization": f"Bearer {TOKEN}"})
    return r.json()["state"] if r.status_code == 200 else None


def wait_for(c: TestClient, check: Any) -> Any:
    deadline = time.monotonic() + 30
    while True:
        current = state(c)
        if current is not None and check(current):
            return current
        assert time.monotonic() < deadline, f"never reached: {current}"
        time.sleep(0.05)


def post(c: TestClient, body: bytes) -> Any:
    r = c.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code in (200, 202), r.text
    return r.json()


def test_a_second_body_in_the_same_minute_is_not_a_duplicate(
    account: Account, tmp_path: Path
) -> None:
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    with TestClient(create_app(settings, engine, tick_seconds=0)) as c:
        _, opened, solved = account.bodies
        assert post(c, opened)["duplicates"] == 0
        assert post(c, solved)["duplicates"] == 0  # was: dropped as a duplicate
        assert post(c, solved)["duplicates"] == 1  # a redelivery still is one


@pytest.mark.parametrize("order", ["in order", "solved first"])
def test_the_authoritative_version_wins_whatever_the_arrival_order(
    account: Account, served: TestClient, order: str
) -> None:
    _, opened, solved = account.bodies
    first, second = (opened, solved) if order == "in order" else (solved, opened)
    assert "fetching" not in post(served, first)
    answer = post(served, second)
    assert answer["fetching"] == [account.ticket]
    final = wait_for(served, lambda s: s["last_activity_at"] == "2026-08-01T00:05:45Z")
    assert final["has_open_ticket"] is False
    assert final["last_ticket_status"] == "solved"
    assert final["last_resolved_at"] is not None


def test_duplicate_json_keys_make_a_body_untrusted(account: Account, served: TestClient) -> None:
    _, opened, _ = account.bodies
    forged = opened.replace(b'"status": "Open",', b'"status": "Open", "status": "Pending",')
    assert forged != opened
    answer = post(served, forged)
    assert answer["status"] == "accepted" and answer["ticket_id"] == account.ticket
    final = wait_for(served, lambda s: s["last_ticket_status"] is not None)
    assert final["last_ticket_status"] == "solved"  # what the API says, not either key
    assert final["last_activity_at"] == "2026-08-01T00:05:45Z"

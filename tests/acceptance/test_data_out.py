"""End to end: a signed Zendesk webhook in, and within seconds the real destination clients
deliver to their fake vendors on loopback: Meta audience (hashed), Customer.io profile with
the Zendesk vars, a Standard Webhooks event; solving the ticket removes the member."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url
from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread
from tactful.web.app import create_app
from tactful.zendesk.signing import sign

pytestmark = pytest.mark.store

SECRET = "ZGF0YS1vdXQtdGVzdA=="
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def post(client: TestClient, status: str, minute: int) -> None:
    stamp = datetime.now(UTC).strftime(f"%Y-%m-%dT%H:{minute:02d}Z")
    body = json.dumps(
        {
            "ticket": {
                "id": 42,
                "status": status,
                "priority": "High",
                "tags": "refund",
                "subject": "Refund",
                "via": "Mail",
                "created_at": stamp,
                "updated_at": stamp,
                "requester": {"id": 77, "email": "Ann@Example.com"},
            }
        }
    ).encode()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.post(
        "/webhooks/zendesk",
        content=body,
        headers={
            "X-Zendesk-Webhook-Signature": sign(SECRET, now, body),
            "X-Zendesk-Webhook-Signature-Timestamp": now,
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text


def test_webhook_to_meta_customerio_and_standard_webhook(tmp_path: Path) -> None:
    meta, cio, hook = FakeMeta(), FakeCustomerIO(), FakeWebhookReceiver(HOOK_SECRET)
    servers = [run_in_thread(f.app) for f in (meta, cio, hook)]
    (meta_url, _), (cio_url, _), (hook_url, _) = servers
    audience = next(iter(meta.audiences))
    config = f"""
[zendesk]
subdomain = "glowlab"
webhook_secret = "{SECRET}"

[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress"
audience_id = "{audience}"
access_token = "{meta.access_token}"
base_url = "{FakeMeta.base_url(meta_url)}"

[[destinations]]
name = "cio"
type = "customerio"
site_id = "site-1"
api_key = "track-key"
base_url = "{cio_url}"

[[destinations]]
name = "hook"
type = "webhook"
url = "{hook_url}{hook.path}"
secret = "{HOOK_SECRET}"
"""
    settings = settings_from_toml(config, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    app = create_app(settings, engine, tick_seconds=0, deliver_seconds=0.05)
    hashed = hashlib.sha256(b"ann@example.com").hexdigest()

    def members() -> set[Any]:
        return set(meta.snapshot()[audience])

    try:
        with TestClient(app) as client:
            post(client, "Open", 1)
            wait_for(
                lambda: any(hashed in json.dumps(list(m)) for m in members()),
                "the Meta audience add",
            )
            wait_for(lambda: bool(cio.snapshot()["people"]), "the Customer.io profile")
            profile: dict[str, Any] = next(iter(cio.snapshot()["people"].values()))
            assert profile["has_open_ticket"] is True
            assert profile["zendesk_id"] == "77"
            assert profile["zendesk_profile_url"] == "https://glowlab.zendesk.com/agent/users/77"
            wait_for(
                lambda: any(
                    d.payload.get("type") == "support_state_changed" for d in hook.deliveries
                ),
                "the signed webhook event",
            )
            assert hook.unverified == 0
            post(client, "Solved", 2)
            wait_for(lambda: not members(), "the Meta audience removal")
            wait_for(
                lambda: any(
                    "zendesk_ticket_resolved" in json.dumps(e)
                    for e in cio.snapshot()["events"].values()
                ),
                "the zendesk_ticket_resolved event",
            )
    finally:
        for _, stop in servers:
            stop()

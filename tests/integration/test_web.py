"""The ASGI app: signed webhooks, bearer-protected API, health, metrics, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url
from tactful.web.app import create_app
from tactful.zendesk.signing import sign

pytestmark = pytest.mark.store

SECRET = "dGhpcyBpcyBhIHRlc3Qgc2VjcmV0"
TOKEN = "s3cret-token"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "zendesk"

CONFIG = f"""
[zendesk]
webhook_secret = "{SECRET}"

[api]
token = "{TOKEN}"

[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"

[[segments]]
name = "unhappy"
when = 'health == "unsatisfied"'
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    app = create_app(settings, engine, tick_seconds=0)
    with TestClient(app) as c:
        yield c


def signed(body: bytes, *, secret: str = SECRET, when: datetime | None = None) -> dict[str, str]:
    ts = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": sign(secret, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def trigger_body(ticket_id: int = 42, status: str = "Open", updated: str | None = None) -> bytes:
    now = datetime.now(UTC)
    stamp = updated or now.strftime("%Y-%m-%dT%H:%MZ")
    return json.dumps(
        {
            "ticket": {
                "id": ticket_id,
                "status": status,
                "priority": "-",
                "tags": "refund vip",
                "subject": "Where is my order",
                "via": "Mail",
                "created_at": stamp,
                "updated_at": stamp,
                "requester": {"id": 7, "email": "Ann@Example.com", "phone": "", "external_id": ""},
            }
        }
    ).encode()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def person(client: TestClient, key: str) -> Any:
    return client.get(f"/api/people/{key}", headers=auth())


def test_signed_trigger_webhook_is_applied_and_redelivery_changes_nothing(
    client: TestClient,
) -> None:
    body = trigger_body()
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 1
    p = person(client, "ann@example.com").json()
    assert p["state"]["has_open_ticket"] is True
    assert p["segments"]["suppress"]["member"] is True
    assert p["identifiers"]["zendesk_user_id"] == ["7"]
    again = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1
    assert person(client, "ann@example.com").json() == p


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Zendesk-Webhook-Signature": "AAAA", "X-Zendesk-Webhook-Signature-Timestamp": "x"},
        "wrong-secret",
        "stale",
    ],
)
def test_bad_or_stale_signatures_are_401_and_store_nothing(
    client: TestClient, headers: Any
) -> None:
    body = trigger_body()
    if headers == "wrong-secret":
        headers = signed(body, secret="other")
    elif headers == "stale":
        headers = signed(body, when=datetime.now(UTC) - timedelta(minutes=6))
    r = client.post("/webhooks/zendesk", content=body, headers=headers)
    assert r.status_code == 401
    assert person(client, "ann@example.com").status_code == 404


def test_oversized_body_is_413(client: TestClient) -> None:
    body = b'{"ticket": {"id": 1, "x": "' + b"a" * (1024 * 1024) + b'"}}'
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 413


def test_not_json_with_ticket_id_is_kept_for_fetch_else_400(client: TestClient) -> None:
    body = b'{"ticket": {"id": 987, "subject": "broken "quotes" here"}}'
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 202
    assert r.json()["ticket_id"] == 987
    assert 987 in client.app.state.ctx.pending_fetches  # type: ignore[attr-defined]
    junk = b"\xff\xfe not json at all"
    r = client.post("/webhooks/zendesk", content=junk, headers=signed(junk))
    assert r.status_code == 400


def test_unknown_event_type_is_stored_and_counted_not_5xx(client: TestClient) -> None:
    body = orjson.dumps(
        {
            "type": "zen:event-type:organization.created",
            "id": "e1",
            "time": "2026-11-22T10:00:00Z",
            "detail": {"id": "1"},
            "event": {},
        }
    )
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 200
    metrics = client.get("/metrics").text
    assert "tactful_events_rejected_total" in metrics


def test_recorded_real_zendesk_delivery_parses_and_applies(client: TestClient) -> None:
    data = json.loads((FIXTURES / "webhook-invocation-attempts.json").read_text())
    payload = data["attempts"][0]["request"]["payload"].encode()
    r = client.post("/webhooks/zendesk", content=payload, headers=signed(payload))
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 1  # zen:event-type:user.deleted


def test_api_requires_the_bearer_token(client: TestClient) -> None:
    assert client.get("/api/segments").status_code == 401
    assert client.get("/api/segments", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.get("/api/segments", headers=auth())
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["segments"]] == ["suppress", "unhappy"]


def test_events_api_health_flows_to_segments_and_bad_events_change_nothing(
    client: TestClient,
) -> None:
    good = {
        "events": [
            {
                "type": "health",
                "person": {"email": "bob@example.com"},
                "health": "unsatisfied",
                "at": "2026-11-22T10:00:00Z",
                "id": "h1",
            }
        ]
    }
    r = client.post("/api/events", json=good, headers=auth())
    assert r.status_code == 200, r.text
    p = person(client, "bob@example.com").json()
    assert p["state"]["health"] == "unsatisfied"
    assert p["segments"]["unhappy"]["member"] is True
    bad = {
        "events": [
            {
                "type": "health",
                "person": {"email": "carol@example.com"},
                "health": "happy",
                "at": "2026-11-22T10:00:00Z",
            },
            {
                "type": "consent",
                "person": {"email": "carol@example.com"},
                "purpose": "ads",
                "granted": False,
                "at": "2026-11-22T10:00:00",
            },
        ]
    }
    r = client.post("/api/events", json=bad, headers=auth())
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert any("health" in loc for loc in locs) and any("at" in loc for loc in locs)
    assert person(client, "carol@example.com").status_code == 404


def test_members_are_paged(client: TestClient) -> None:
    for i in range(5):
        body = trigger_body(ticket_id=100 + i)
        doc = json.loads(body)
        doc["ticket"]["requester"] = {"id": 200 + i, "email": f"u{i}@example.com"}
        raw = json.dumps(doc).encode()
        assert client.post("/webhooks/zendesk", content=raw, headers=signed(raw)).status_code == 200
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        page = client.get("/api/segments/suppress/members", params=params, headers=auth()).json()
        seen += [m["person_id"] for m in page["members"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == 5 == len(set(seen))
    assert client.get("/api/segments/nope/members", headers=auth()).status_code == 404


def test_health_metrics_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics").text
    for name in (
        "tactful_webhook_requests_total",
        "tactful_http_request_duration_seconds",
        "tactful_segment_members",
        "tactful_events_applied_total",
    ):
        assert name in text
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/webhooks/zendesk", "/api/events", "/api/people/{key}"} <= set(doc["paths"])


def test_serve_refuses_public_bind_without_token(tmp_path: Path) -> None:
    from tactful.cli.main import main

    config = tmp_path / "t.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n')
    assert main(["--config", str(config), "serve", "--host", "0.0.0.0"]) == 1


def test_unparsable_body_is_fetched_through_the_api(tmp_path: Path) -> None:
    """A signed body that is not JSON (a quote in a subject) names its ticket: the server
    keeps it, answers 202 and fetches the ticket from Zendesk (here: the simulator)."""
    import time

    from tactful.testing.sim import ZendeskSimulator
    from tactful.zendesk.client import ZendeskClient

    sim = ZendeskSimulator()
    user = sim.create_user("Eve Stone", "eve@example.com")
    ticket = sim.create_ticket(user, 'My "broken" order', tags=["shipping"])
    base_url, stop = sim.serve()
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    app = create_app(settings, engine, tick_seconds=0, zendesk=client, fetch_seconds=0.05)
    try:
        with TestClient(app) as c:
            body = f'{{"ticket": {{"id": {ticket}, "subject": "My "broken" order"}}}}'.encode()
            r = c.post("/webhooks/zendesk", content=body, headers=signed(body))
            assert r.status_code == 202
            deadline = time.monotonic() + 10
            while person(c, "eve@example.com").status_code != 200:
                assert time.monotonic() < deadline, "ticket was never fetched"
                time.sleep(0.05)
            state = person(c, "eve@example.com").json()["state"]
            assert state["has_open_ticket"] is True
            assert state["ticket_tags"] == ["shipping"]
    finally:
        client.close()
        stop()

"""The simulator's API: auth, rate limits, faults, request log, users, webhooks, triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tactful.testing.sim import ZendeskSimulator, run_in_thread

from .conftest import Served

TICKETS = "/api/v2/incremental/tickets/cursor.json?start_time=0"


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("admin@glowlab.example/token", "wrong-token"),
        ("admin@glowlab.example", "sim-api-token"),  # password form, not the token form
        ("someone@else.example/token", "sim-api-token"),
    ],
)
def test_auth_failures_answer_zendesk_401(served: Served, auth: tuple[str, str] | None) -> None:
    response = httpx.get(served.base_url + TICKETS, auth=auth)
    assert response.status_code == 401
    assert response.json() == {"error": "Couldn't authenticate you"}
    assert served.sim.requests[-1].status == 401


def test_eleventh_incremental_request_in_a_minute_gets_429(served: Served) -> None:
    sim = served.sim
    for _ in range(10):
        assert served.client.get(TICKETS).status_code == 200
        sim.advance(timedelta(seconds=3))
    limited = served.client.get(TICKETS)
    assert limited.status_code == 429
    assert limited.json() == {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed incremental export API requests per minute exceeded",
    }
    assert limited.headers["Retry-After"] == "30"  # the first request leaves the window then
    # Other endpoints have their own (account) limit.
    assert served.client.get("/api/v2/satisfaction_ratings").status_code == 200
    sim.advance(timedelta(seconds=30))
    assert served.client.get(TICKETS).status_code == 200


def test_limits_are_configurable_and_can_use_real_time() -> None:
    sim = ZendeskSimulator(
        rate_limit_per_minute=2,
        general_rate_limit_per_minute=3,
        rate_clock=lambda: datetime.now(UTC),
    )
    base, stop = run_in_thread(sim.app)
    try:
        with httpx.Client(base_url=base, auth=(f"{sim.email}/token", sim.api_token)) as client:
            assert [client.get(TICKETS).status_code for _ in range(3)] == [200, 200, 429]
            statuses = [client.get("/api/v2/satisfaction_ratings").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            assert int(client.get("/api/v2/triggers").headers["Retry-After"]) in range(1, 61)
    finally:
        stop()


def test_fail_next_and_rate_limit_next(served: Served) -> None:
    sim = served.sim
    sim.fail_next(2, status=503)
    sim.rate_limit_next(1, retry_after=7, path_prefix="/api/v2/incremental/")
    assert served.client.get("/api/v2/satisfaction_ratings").status_code == 503
    assert served.client.get(TICKETS).status_code == 503
    throttled = served.client.get(TICKETS)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert served.client.get(TICKETS).status_code == 200
    log = [(r.method, r.path, r.status) for r in sim.requests]
    assert log == [
        ("GET", "/api/v2/satisfaction_ratings", 503),
        ("GET", "/api/v2/incremental/tickets/cursor.json", 503),
        ("GET", "/api/v2/incremental/tickets/cursor.json", 429),
        ("GET", "/api/v2/incremental/tickets/cursor.json", 200),
    ]
    assert sim.requests[-1].query == {"start_time": "0"}


def test_slow_next_delays_in_real_time(served: Served) -> None:
    served.sim.slow_next(1, seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        served.client.get(TICKETS, timeout=0.1)
    assert served.client.get(TICKETS, timeout=5).status_code == 200


def test_show_update_and_tag_users(served: Served) -> None:
    sim = served.sim
    user = sim.create_user("Ann Lee", "ann@example.com", tags=["subscriber"])
    shown = served.client.get(f"/api/v2/users/{user}.json").json()["user"]
    assert shown["email"] == "ann@example.com" and shown["tags"] == ["subscriber"]
    body = {"user": {"user_fields": {"zendesk_health": "unsatisfied"}, "tags": ["vip"]}}
    updated = served.client.put(f"/api/v2/users/{user}.json", json=body).json()["user"]
    assert updated["user_fields"] == {"zendesk_health": "unsatisfied"}
    assert updated["tags"] == ["vip"]
    added = served.client.put(
        f"/api/v2/users/{user}/tags.json", json={"tags": ["sailthru_highvalue"]}
    )
    assert added.status_code == 200 and added.json() == {"tags": ["vip", "sailthru_highvalue"]}
    removed = served.client.request("DELETE", f"/api/v2/users/{user}/tags", json={"tags": ["vip"]})
    assert removed.json() == {"tags": ["sailthru_highvalue"]}
    assert sim.users[user].tags == ["sailthru_highvalue"]
    kinds = [e for a in sim.activities for e, _ in a.events]
    assert kinds.count("user.tags_changed") == 3 and "user.custom_field_changed" in kinds
    missing = served.client.get("/api/v2/users/42.json")
    assert missing.status_code == 404 and missing.json()["error"] == "RecordNotFound"
    bad = served.client.put(f"/api/v2/users/{user}.json", content=b"{nope")
    assert bad.status_code == 400


def test_show_ticket_and_deleted_ticket(served: Served) -> None:
    sim = served.sim
    ticket = sim.create_ticket(sim.create_user("Ann", "ann@example.com"), "Hi")
    assert served.client.get(f"/api/v2/tickets/{ticket}.json").json()["ticket"]["id"] == ticket
    sim.delete_ticket(ticket)
    assert served.client.get(f"/api/v2/tickets/{ticket}.json").status_code == 404
    assert served.client.get("/api/v2/nowhere").json()["error"] == "InvalidEndpoint"


def test_webhook_and_trigger_admin_flow(served: Served) -> None:
    client = served.client
    hook = {
        "name": "Tactful support events",
        "endpoint": "https://tactful.example/zendesk/webhook",
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": ["conditional_ticket_events"],
    }
    created = client.post("/api/v2/webhooks", json={"webhook": hook})
    assert created.status_code == 201
    webhook = created.json()["webhook"]
    assert isinstance(webhook["id"], str) and len(webhook["id"]) == 26
    secret = client.get(f"/api/v2/webhooks/{webhook['id']}/signing_secret").json()
    assert secret["signing_secret"]["algorithm"] == "SHA256"
    assert secret["signing_secret"]["secret"] == served.sim.signing_secrets[webhook["id"]]
    listed = client.get("/api/v2/webhooks", params={"filter[name_contains]": "tactful"}).json()
    assert [w["id"] for w in listed["webhooks"]] == [webhook["id"]]
    assert client.get("/api/v2/webhooks?filter[name_contains]=other").json()["webhooks"] == []
    patch = {"webhook": {"endpoint": "https://tactful.example/v2"}}
    assert client.patch(f"/api/v2/webhooks/{webhook['id']}", json=patch).status_code == 204
    assert served.sim.webhooks[webhook["id"]]["endpoint"] == "https://tactful.example/v2"
    switch = {"webhook": {"subscriptions": ["zen:event-type:user.deleted"]}}
    assert client.patch(f"/api/v2/webhooks/{webhook['id']}", json=switch).status_code == 400
    bad = client.post(
        "/api/v2/webhooks",
        json={
            "webhook": {
                **hook,
                "http_method": "GET",
                "subscriptions": ["zen:event-type:user.deleted"],
            }
        },
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "InvalidValue"

    trigger: dict[str, Any] = {
        "title": "Tactful: notify on ticket create/update",
        "conditions": {
            "all": [],
            "any": [{"field": "update_type", "operator": "is", "value": "Create"}],
        },
        "actions": [
            {"field": "notification_webhook", "value": [webhook["id"], '{"id": {{ticket.id}}}']}
        ],
    }
    made = client.post("/api/v2/triggers.json", json={"trigger": trigger})
    assert made.status_code == 201
    trig = made.json()["trigger"]
    assert trig["url"].endswith(f"/api/v2/triggers/{trig['id']}.json") and trig["active"] is True
    found = client.get("/api/v2/triggers/search.json", params={"query": "tactful"}).json()
    assert found["count"] == 1 and found["triggers"][0]["id"] == trig["id"]
    assert client.get("/api/v2/triggers/search", params={"query": "zzz"}).json()["count"] == 0
    trigger["conditions"]["any"].append(
        {"field": "update_type", "operator": "is", "value": "Change"}
    )
    put = client.put(f"/api/v2/triggers/{trig['id']}.json", json={"trigger": trigger})
    assert put.status_code == 200 and len(put.json()["trigger"]["conditions"]["any"]) == 2
    assert client.get("/api/v2/triggers").json()["count"] == 1
    orphan = {**trigger, "actions": [{"field": "notification_webhook", "value": ["nope", "{}"]}]}
    assert client.post("/api/v2/triggers", json={"trigger": orphan}).status_code == 422

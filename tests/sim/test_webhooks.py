"""Webhook deliveries: Zendesk's headers, signatures, payload shapes, retries, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tactful.testing.sim import WebhookSender, ZendeskSimulator, senders_from_api
from tactful.zendesk.signing import verify

from .conftest import Receiver, Served

SECRET = "dGhlIHNlY3JldA=="


OPEN: list[WebhookSender] = []


@pytest.fixture(autouse=True)
def close_senders() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def no_sleep(seconds: float) -> None:
    return None


def sender(sim: ZendeskSimulator, receiver: Receiver, **kw: object) -> WebhookSender:
    out = WebhookSender(receiver.url, SECRET, sim=sim, sleep=no_sleep, **kw)  # type: ignore[arg-type]
    OPEN.append(out)
    return out


def a_ticket(sim: ZendeskSimulator) -> tuple[int, int]:
    user = sim.create_user("Ann Lee", "ann@example.com", phone="+14155550100")
    sim.advance(timedelta(minutes=3))
    return user, sim.create_ticket(user, "Rash after the serum", tags=["irritation", "safety"])


def test_envelopes_are_signed_and_shaped_like_zendesk(
    sim: ZendeskSimulator, receiver: Receiver
) -> None:
    _, ticket = a_ticket(sim)
    sim.advance(timedelta(hours=1))
    sim.solve(ticket)
    out = sender(sim, receiver)
    done = out.deliver_pending()
    assert [d.state for d in done] == ["delivered"] * len(done)
    assert [d.source for d in done] == [
        "user.created",
        "ticket.created",
        "ticket.status_changed",
        "ticket.agent_assignment_changed",
        "ticket.comment_added",
    ]
    now = datetime.now(UTC)
    for got in receiver.received:
        h = got.headers
        verify(
            SECRET,
            h["x-zendesk-webhook-signature"],
            h["x-zendesk-webhook-signature-timestamp"],
            got.body,
            now,
        )
        assert h["user-agent"] == "Zendesk Webhook"
        assert h["content-type"] == "application/json; charset=utf-8"
        assert h["x-zendesk-webhook-invocation-id"]
        assert h["x-zendesk-account-id"] == str(sim.account_id)
        assert h["x-zendesk-webhook-signature-timestamp"].endswith("Z")
    status = json.loads(receiver.received[2].body)
    assert status["type"] == "zen:event-type:ticket.status_changed"
    assert status["event"] == {"current": "SOLVED", "previous": "NEW"}
    assert status["subject"] == f"zen:ticket:{ticket}"
    assert status["zendesk_event_version"] == "2022-11-06"
    assert status["detail"]["id"] == str(ticket) and status["detail"]["status"] == "SOLVED"
    assert status["detail"]["via"] == {"channel": "web_form"}
    assert status["detail"]["tags"] == ["irritation", "safety"]
    assert status["time"].endswith("000Z") and len(status["time"]) == len(
        "2026-08-01T00:00:00.000000000Z"
    )
    assert set(status) == {
        "account_id",
        "detail",
        "event",
        "id",
        "subject",
        "time",
        "type",
        "zendesk_event_version",
    }
    assert receiver.received[0].body.startswith(b'{\n   "account_id": ')  # recorded layout
    user = json.loads(receiver.received[0].body)
    assert user["detail"]["default_group_id"] == "0" and user["detail"]["external_id"] == ""


def test_trigger_body_is_display_text(sim: ZendeskSimulator, receiver: Receiver) -> None:
    user, ticket = a_ticket(sim)
    sim.advance(timedelta(minutes=30, seconds=17))
    sim.update_ticket(ticket, status="hold")
    out = sender(sim, receiver, mode="trigger")
    assert [d.source for d in out.deliver_pending()] == ["trigger:sim", "trigger:sim"]
    held = json.loads(receiver.received[1].body)
    assert held["ticket"] == {
        "id": ticket,
        "status": "On-hold",
        "priority": "-",
        "tags": "irritation safety",
        "subject": "Rash after the serum",
        "via": "Web Form",
        "created_at": "2026-08-01T00:03Z",
        "updated_at": "2026-08-01T00:33Z",
        "requester": {
            "id": user,
            "email": "ann@example.com",
            "phone": "+14155550100",
            "external_id": "",
        },
    }


def test_trigger_free_text_is_not_escaped(sim: ZendeskSimulator, receiver: Receiver) -> None:
    user = sim.create_user("Ann Lee", "ann@example.com")
    sim.create_ticket(user, 'The "gentle" cleanser burns')
    out = sender(sim, receiver, mode="trigger")
    out.deliver_pending()
    with pytest.raises(json.JSONDecodeError):
        json.loads(receiver.received[0].body)


def test_trigger_conditions(sim: ZendeskSimulator, receiver: Receiver) -> None:
    _, ticket = a_ticket(sim)
    conditions = {"all": [{"field": "status", "operator": "value", "value": "solved"}], "any": []}
    out = sender(
        sim,
        receiver,
        mode="trigger",
        trigger_conditions=conditions,
        trigger_body='{"solved": {{ticket.id}}}',
    )
    sim.update_ticket(ticket, status="open")
    sim.solve(ticket)
    sim.update_ticket(ticket, priority="high")
    sim.delete_ticket(ticket)  # deletions run no triggers
    assert [d.body for d in out.deliver_pending()] == [b'{"solved": %d}' % ticket]


def test_retries_like_zendesk(sim: ZendeskSimulator, receiver: Receiver) -> None:
    sim.create_user("Ann Lee", "ann@example.com")
    sim.create_user("Bob Ray", "bob@example.com")
    sim.create_user("Cy Ng", "cy@example.com")
    sim.create_user("Di Wu", "di@example.com")
    receiver.answer(409, 409, 200)  # conflict: retried
    receiver.answer(503, headers={"Retry-After": "2"})  # retried after Retry-After
    receiver.answer(200)
    receiver.answer(503)  # no Retry-After: not retried
    receiver.answer(500)  # other errors: not retried
    waits: list[float] = []
    out = WebhookSender(receiver.url, SECRET, sim=sim, sleep=waits.append, backoff_seconds=1)
    OPEN.append(out)
    done = out.deliver_pending()
    assert [(d.state, [a.status for a in d.attempts]) for d in done] == [
        ("delivered", [409, 409, 200]),
        ("delivered", [503, 200]),
        ("failed", [503]),
        ("failed", [500]),
    ]
    assert waits == [1, 2, 2.0]
    ids = [r.headers["x-zendesk-webhook-invocation-id"] for r in receiver.received]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert receiver.received[0].body == receiver.received[2].body


def test_conflicts_and_timeouts_are_bounded(sim: ZendeskSimulator, receiver: Receiver) -> None:
    sim.create_user("Ann Lee", "ann@example.com")
    receiver.answer(409, 409, 409, 409, 409)
    out = sender(sim, receiver)
    assert [a.status for a in out.deliver_pending()[0].attempts] == [409] * 4
    sim.create_user("Bob Ray", "bob@example.com")
    dead = WebhookSender("http://127.0.0.1:9/hook", SECRET, sim=sim, sleep=no_sleep, timeout=0.5)
    OPEN.append(dead)
    dead.skip_to(1)
    [lost] = dead.deliver_pending()
    assert lost.state == "failed" and len(lost.attempts) == 6 and lost.attempts[0].status is None


def test_drop_duplicate_reorder(sim: ZendeskSimulator, receiver: Receiver) -> None:
    for name in ("Ann", "Bob", "Cy", "Di"):
        sim.create_user(name, f"{name.lower()}@example.com")
    out = sender(sim, receiver)
    out.reorder_pending("reverse")
    out.drop_next(1)
    out.duplicate_next(1)
    done = out.deliver_pending()
    assert [d.state for d in done] == ["dropped", "delivered", "delivered", "delivered"]
    emails = [json.loads(r.body)["detail"]["email"] for r in receiver.received]
    assert emails == ["cy@example.com", "cy@example.com", "bob@example.com", "ann@example.com"]
    assert len(done[1].attempts) == 2


def test_senders_from_api_follow_registered_webhooks(served: Served, receiver: Receiver) -> None:
    sim, client = served.sim, served.client
    sim.create_user("Before Hook", "before@example.com")
    hook = {
        "name": "Tactful",
        "endpoint": receiver.url,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
    }
    events = client.post(
        "/api/v2/webhooks",
        json={
            "webhook": {
                **hook,
                "subscriptions": ["zen:event-type:user.deleted", "zen:event-type:user.created"],
            }
        },
    )
    triggered = client.post(
        "/api/v2/webhooks",
        json={"webhook": {**hook, "subscriptions": ["conditional_ticket_events"]}},
    )
    trigger_hook = triggered.json()["webhook"]["id"]
    trigger = {
        "title": "Tactful",
        "conditions": {"all": [{"field": "update_type", "operator": "is", "value": "Create"}]},
        "actions": [
            {
                "field": "notification_webhook",
                "value": [trigger_hook, '{"ticket": {"id": {{ticket.id}}}}'],
            }
        ],
    }
    assert client.post("/api/v2/triggers", json={"trigger": trigger}).status_code == 201
    user = sim.create_user("Ann Lee", "ann@example.com")
    ticket = sim.create_ticket(user, "Hello")
    sim.solve(ticket)
    sim.delete_user(user)
    senders = senders_from_api(sim, sleep=no_sleep)
    OPEN.extend(senders)
    for s in senders:
        s.deliver_pending()
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b.get("type", "trigger") for b in bodies] == [
        "zen:event-type:user.created",
        "zen:event-type:user.deleted",
        "trigger",
    ]
    assert bodies[2] == {"ticket": {"id": ticket}}
    secret = sim.signing_secrets[events.json()["webhook"]["id"]]
    first = receiver.received[0]
    verify(
        secret,
        first.headers["x-zendesk-webhook-signature"],
        first.headers["x-zendesk-webhook-signature-timestamp"],
        first.body,
        datetime.now(UTC),
    )
    assert first.headers["x-zendesk-webhook-id"] == events.json()["webhook"]["id"]


def test_inactive_webhook_sends_nothing(served: Served, receiver: Receiver) -> None:
    hook = {
        "name": "off",
        "endpoint": receiver.url,
        "http_method": "POST",
        "request_format": "json",
        "status": "inactive",
        "subscriptions": ["zen:event-type:user.created"],
    }
    assert served.client.post("/api/v2/webhooks", json={"webhook": hook}).status_code == 201
    served.sim.create_user("Ann", "ann@example.com")
    [s] = senders_from_api(served.sim)
    OPEN.append(s)
    assert s.deliver_pending() == [] and receiver.received == []


def test_sender_without_simulator_sends_what_it_is_given(receiver: Receiver) -> None:
    out = WebhookSender(receiver.url, SECRET, client=httpx.Client(timeout=5))
    out.enqueue(b'{"ticket": {"id": 1}}')
    assert [d.state for d in out.deliver_pending()] == ["delivered"]
    out.close()

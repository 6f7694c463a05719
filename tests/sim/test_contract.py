"""The key contract: Tactful's parser understands everything the simulator produces.

Every export page (followed to the end) and every webhook body (envelopes and trigger bodies)
from a story with every kind of change goes through ``tactful.zendesk.parse.parse_object``;
the only skipped records are the ones Tactful is meant to skip (a rating that was offered
but not given, user events that carry no canonical fact).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tactful.core.events import (
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserMerged,
)
from tactful.testing.sim import WebhookSender, ZendeskSimulator
from tactful.testing.sim.exports import cursor_page, ratings_page, ticket_events_page
from tactful.zendesk.parse import Parsed, parse_object
from tactful.zendesk.signing import verify

from .conftest import Receiver, Served, story

FIXTURES = Path(__file__).parents[1] / "fixtures" / "zendesk"
NOT_CANONICAL = {"user.name_changed"}  # a name is not something Tactful keeps
# Ticket changes that are not status changes: their envelope carries a full ticket version.
NON_STATUS_CHANGES = {
    "ticket.priority_changed",
    "ticket.requester_changed",
    "ticket.subject_changed",
    "ticket.custom_field_changed",
}


def all_pages(served: Served) -> dict[str, list[dict[str, Any]]]:
    client = served.client
    pages: dict[str, list[dict[str, Any]]] = {}
    for key, first in (
        ("tickets", "/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=3"),
        ("users", "/api/v2/incremental/users/cursor.json?start_time=0&per_page=3"),
    ):
        url, pages[key] = first, []
        while True:
            page = client.get(url).json()
            pages[key].append(page)
            if page["end_of_stream"]:
                break
            url = page["after_url"]
    url, pages["ticket_events"] = (
        "/api/v2/incremental/ticket_events.json?start_time=0&per_page=4",
        [],
    )
    while True:
        page = client.get(url).json()
        pages["ticket_events"].append(page)
        if page["end_of_stream"]:
            break
        url = page["next_page"]
    url, pages["satisfaction_ratings"] = "/api/v2/satisfaction_ratings?page[size]=1", []
    while url:
        page = client.get(url).json()
        pages["satisfaction_ratings"].append(page)
        url = page["links"]["next"]
    return pages


def offered_only(sim: ZendeskSimulator) -> int:
    user = sim.create_user("Cy Ng", "cy@example.com")
    ticket = sim.create_ticket(user, "Thanks!")
    sim.solve(ticket)
    sim.advance(timedelta(days=1))
    return sim.offer_rating(ticket)


def test_every_export_page_parses(served: Served) -> None:
    sim = served.sim
    ids = story(sim)
    offered = offered_only(sim)
    shapes = {"tickets": "tickets_page", "users": "users_page"}
    shapes.update(ticket_events="ticket_events_page", satisfaction_ratings="ratings_page")
    parsed: dict[str, list[Parsed]] = {}
    for key, pages in all_pages(served).items():
        parsed[key] = [parse_object(json.loads(json.dumps(p))) for p in pages]
        assert {p.shape for p in parsed[key]} == {shapes[key]}
    skipped = [s for ps in parsed.values() for p in ps for s in p.skipped]
    assert [(s.where.split(" ")[-1], s.reason) for s in skipped] == [
        (f"{offered})", "rating offered, not given")
    ]
    versions = [e for p in parsed["tickets"] for e in p.events if isinstance(e, TicketVersion)]
    assert {v.ticket_id: v.status for v in versions} == {
        t.id: t.status for t in sim.tickets.values()
    }
    merged = next(v for v in versions if v.ticket_id == ids["t2"])
    assert merged.status == "closed" and "closed_by_merge" in merged.tags
    changes = [e for p in parsed["ticket_events"] for e in p.events]
    assert all(isinstance(e, TicketStatusChanged) for e in changes)
    triples = {
        (e.ticket_id, e.status, e.previous_status)
        for e in changes
        if isinstance(e, TicketStatusChanged)
    }
    assert (ids["t1"], "solved", "pending") in triples
    [rating] = [e for p in parsed["satisfaction_ratings"] for e in p.events]
    assert (
        isinstance(rating, RatingGiven) and rating.score == "bad" and rating.ticket_id == ids["t1"]
    )


def test_single_objects_parse(served: Served) -> None:
    ids = story(served.sim)
    for path in (f"/api/v2/tickets/{ids['t1']}.json", f"/api/v2/users/{ids['bob']}.json"):
        result = parse_object(served.client.get(path).json())
        kept = [e for e in result.events if not isinstance(e, TicketText)]  # + its description
        assert result.skipped == [] and len(kept) == 1


def test_every_webhook_body_parses(receiver: Receiver) -> None:
    sim = ZendeskSimulator()
    ids = story(sim)
    with WebhookSender(receiver.url, "s3cret", sim=sim, mode="both", sleep=lambda s: None) as out:
        done = out.deliver_pending()
    assert all(d.state == "delivered" for d in done)
    kinds = Counter(d.source for d in done)
    assert kinds["trigger:sim"] == sum(1 for a in sim.activities if a.update_type)
    assert {
        "ticket.created",
        "ticket.status_changed",
        "ticket.soft_deleted",
        "user.merged",
        "user.deleted",
        "ticket.requester_changed",
    } <= set(kinds)
    now = datetime.now(UTC)
    events = []
    for delivery, got in zip(done, receiver.received, strict=True):
        h = got.headers
        verify(
            "s3cret",
            h["x-zendesk-webhook-signature"],
            h["x-zendesk-webhook-signature-timestamp"],
            got.body,
            now,
        )
        result = parse_object(json.loads(got.body))
        expected = "trigger_ticket" if delivery.source.startswith("trigger") else "envelope"
        assert result.shape == expected
        if delivery.source in NOT_CANONICAL:
            assert [s.reason for s in result.skipped] == [
                f"unknown event type zen:event-type:{delivery.source}"
            ]
        else:
            assert result.skipped == [], (delivery.source, result.skipped)
            assert result.events
        events.extend(result.events)
    assert UserMerged("", events[0].at, ids["dup"], ids["ann"]).source_user_id in {
        e.source_user_id for e in events if isinstance(e, UserMerged)
    }
    triggered = [
        e for e in events if isinstance(e, TicketVersion) and e.key.startswith("zendesk:ticket:")
    ]
    assert {e.status for e in triggered} >= {"new", "open", "pending", "hold", "solved", "closed"}


def test_envelope_detail_matches_the_recorded_invocation() -> None:
    recorded = json.loads((FIXTURES / "webhook-invocation-attempts.json").read_text())
    payload = json.loads(recorded["attempts"][0]["request"]["payload"])
    sim = ZendeskSimulator()
    user = sim.create_user("Gone", "gone@example.com")
    sim.delete_user(user)
    from tactful.testing.sim.payloads import envelope

    activity = sim.activities[-1]
    ours = envelope(activity, "user.deleted", {}, sim.account_id, sim.new_uuid())
    assert set(ours) == set(payload)
    assert set(ours["detail"]) == set(payload["detail"])
    assert ours["type"] == payload["type"] and ours["event"] == payload["event"] == {}
    recorded_headers = {h["key"].lower() for h in recorded["attempts"][0]["request"]["headers"]}
    assert recorded_headers == {
        "x-zendesk-webhook-signature-timestamp",
        "x-zendesk-webhook-signature",
        "content-type",
        "user-agent",
        "x-zendesk-account-id",
        "x-zendesk-webhook-id",
        "x-zendesk-webhook-invocation-id",
    }


def test_pages_without_http_parse_too() -> None:
    sim = ZendeskSimulator()
    story(sim)
    for page in (
        cursor_page(sim, "tickets", {"start_time": "0"}, ""),
        cursor_page(sim, "users", {"start_time": "0"}, ""),
        ticket_events_page(sim, {"start_time": "0"}, ""),
        ratings_page(sim, {}, ""),
    ):
        assert parse_object(page).skipped == []


def test_non_status_change_events_keep_their_ticket_version() -> None:
    sim = ZendeskSimulator()
    ann = sim.create_user("Ann Lee", "ann@example.com")
    bob = sim.create_user("Bob Ray", "bob@example.com")
    ticket = sim.create_ticket(ann, "Refund", priority="normal")
    sim.update_ticket(ticket, priority="high", requester_id=bob, subject="Refund now")
    from tactful.testing.sim.payloads import envelope

    activity = sim.activities[-1]
    for event_type, event in activity.events:
        if event_type in NON_STATUS_CHANGES:
            result = parse_object(envelope(activity, event_type, event, 1, event_type))
            assert result.skipped == [], (event_type, result.skipped)

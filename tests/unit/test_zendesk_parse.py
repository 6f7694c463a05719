"""Zendesk JSON → canonical events, pinned against real recorded Zendesk responses.

The recordings in tests/fixtures/zendesk/ are real API response bodies (see its README).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from tactful.core.events import (
    Event,
    Identifier,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserDeleted,
    UserMerged,
    UserSeen,
)
from tactful.zendesk.files import Chunk, ParseError, read_file
from tactful.zendesk.parse import Parsed, Skipped, parse_object

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "zendesk"
E = TypeVar("E")


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def ticket(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 42,
        "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-03T10:00:00Z",
        "subject": "Refund please",
        "raw_subject": "Refund please",
        "priority": "high",
        "status": "open",
        "requester_id": 7,
        "tags": ["Refund", "vip"],
        "custom_fields": [],
    }
    base.update(over)
    return base


def of(kind: type[E], events: list[Event]) -> list[E]:
    """The events of ``kind``; any other is a failure, except the texts read from the same
    records (descriptions and comments, issue 25)."""
    assert all(isinstance(e, kind | TicketText) for e in events)
    return [e for e in events if isinstance(e, kind)]


def only(parsed: Parsed, kind: type[E]) -> E:
    assert parsed.skipped == []
    assert len(parsed.events) == 1
    return of(kind, parsed.events)[0]


def assert_utc(*values: datetime) -> None:
    for value in values:
        assert value.tzinfo is UTC


# --- recorded responses ------------------------------------------------------------------


def test_recorded_cursor_tickets_page() -> None:
    parsed = parse_object(load("incremental-tickets-cursor-page.json"))
    assert parsed.shape == "tickets_page"
    assert parsed.skipped == []
    tickets = of(TicketVersion, parsed.events)
    assert len(tickets) == 1000
    assert Counter(e.status for e in tickets) == {"new": 485, "deleted": 515}
    assert len({e.key for e in tickets}) == 1000
    first = tickets[0]
    assert first == TicketVersion(
        key="zendesk:ticket:28:2023-09-18T15:57:42Z",
        at=utc(2023, 9, 18, 15, 57, 42),
        ticket_id=28,
        created_at=utc(2023, 9, 18, 15, 57, 42),
        updated_at=utc(2023, 9, 18, 15, 57, 42),
        status="new",
        priority=None,
        tags=(),
        subject="test",
        channel="api",
        requester_id=6130907993114,
        brand_id=6130830354842,  # recorded: every ticket names its brand
    )
    for event in tickets:
        assert_utc(event.at, event.created_at, event.updated_at)


def test_recorded_time_based_full_export() -> None:
    doc = load("incremental-tickets-time-full.json")
    parsed = parse_object(doc)
    assert parsed.shape == "tickets_page"
    assert parsed.skipped == []
    tickets = of(TicketVersion, parsed.events)
    assert len(tickets) == 87 == doc["count"]
    statuses = Counter(e.status for e in tickets)
    assert statuses == {"new": 77, "pending": 8, "deleted": 1, "open": 1}
    assert Counter(e.priority for e in tickets) == {None: 80, "high": 6, "normal": 1}
    assert Counter(e.channel for e in tickets) == {"api": 84, "web": 2, "sample_ticket": 1}
    tagged = {e.tags for e in tickets if e.tags}
    assert tagged == {("foo", "new", "tag"), ("sample", "support", "zendesk")}


def test_recorded_users_page() -> None:
    doc = load("incremental-users-cursor-page.json")
    parsed = parse_object(doc)
    assert parsed.shape == "users_page"
    assert parsed.skipped == []
    assert len(parsed.events) == 1000
    users = {e.zendesk_user_id: e for e in of(UserSeen, parsed.events)}
    assert sum(not e.active for e in users.values()) == 760
    for raw in doc["users"]:
        seen = users[raw["id"]]
        assert seen.emails == ((raw["email"],) if raw["email"] else ())
        assert seen.external_ids == ((raw["external_id"],) if raw["external_id"] else ())
        assert seen.active is raw["active"]
    assert sum(bool(e.emails) for e in users.values()) == 19
    assert users[6130869168922].emails == ("customer@example.com",)
    assert users[6130869168922].key == "zendesk:user:6130869168922:2023-09-09T23:52:06Z"


def test_recorded_ticket_audits() -> None:
    parsed = parse_object(load("ticket-audits.json"))
    assert parsed.shape == "audits_page"
    assert parsed.skipped == []
    changes = of(TicketStatusChanged, parsed.events)
    assert len(changes) == 88  # 86 status on create + 2 status changes
    ticket_1 = [e for e in changes if e.ticket_id == 1]
    assert [(e.status, e.previous_status, e.at) for e in ticket_1] == [
        ("open", None, utc(2023, 9, 9, 23, 52, 5)),
        ("deleted", "open", utc(2023, 9, 19, 0, 19, 17)),
        ("open", "deleted", utc(2023, 9, 19, 0, 25, 38)),
    ]
    assert ticket_1[1].key == "zendesk:ticket_event:6164235644058"


def test_recorded_webhook_user_deleted_body() -> None:
    attempts = load("webhook-invocation-attempts.json")
    body = attempts["attempts"][0]["request"]["payload"]
    parsed = parse_object(orjson.loads(body))
    assert parsed.shape == "envelope"
    assert only(parsed, UserDeleted) == UserDeleted(
        key="zendesk:envelope:b3695d61-2ef4-4e9c-97af-1f065c099564",
        at=utc(2023, 9, 18, 23, 30, 3),
        zendesk_user_id=6164069643162,
        permanent=False,
    )
    # The saved attempts list itself (as the webhooks API returns it) imports too.
    from_attempts = parse_object(attempts)
    assert from_attempts.shape == "webhook_attempts"
    assert from_attempts.events == parsed.events


# --- tickets -----------------------------------------------------------------------------


def test_cursor_and_time_based_pages_and_plain_lists() -> None:
    cursor: dict[str, Any] = {"tickets": [ticket()], "after_cursor": "x", "before_cursor": None}
    cursor |= {"after_url": None, "end_of_stream": True}
    timed: dict[str, Any] = {"tickets": [ticket()], "count": 1, "end_time": 1, "next_page": None}
    timed["end_of_stream"] = True
    for doc in (cursor, timed, {"tickets": [ticket()]}):
        parsed = parse_object(doc)
        assert parsed.shape == "tickets_page"
        assert only(parsed, TicketVersion).key == "zendesk:ticket:42:2026-01-03T10:00:00Z"
    assert parse_object({"tickets": [], "end_of_stream": True}) == Parsed([], [], "tickets_page")


def test_ticket_fields() -> None:
    event = only(
        parse_object({"ticket": ticket(status="Pending", priority="URGENT")}), TicketVersion
    )
    assert event == TicketVersion(
        key="zendesk:ticket:42:2026-01-03T10:00:00Z",
        at=utc(2026, 1, 3, 10),
        ticket_id=42,
        created_at=utc(2026, 1, 2, 3, 4, 5),
        updated_at=utc(2026, 1, 3, 10),
        status="pending",
        priority="urgent",
        tags=("refund", "vip"),
        subject="Refund please",
        channel="email",
        requester_id=7,
    )


def test_custom_field_values_become_text_pairs() -> None:
    fields = [
        {"id": 1, "value": "refund_request"},
        {"id": 2, "value": ["a", "b"]},
        {"id": 3, "value": True},
        {"id": 4, "value": False},
        {"id": 5, "value": 12},
        {"id": 6, "value": 2.5},
        {"id": 7, "value": None},
        {"id": 8, "value": []},
    ]
    event = only(parse_object({"tickets": [ticket(custom_fields=fields)]}), TicketVersion)
    assert event.custom_fields == (
        ("1", "refund_request"),
        ("2", "a"),
        ("2", "b"),
        ("3", "true"),
        ("4", "false"),
        ("5", "12"),
        ("6", "2.5"),
    )


def test_subject_falls_back_to_raw_subject_then_empty() -> None:
    raw = parse_object({"ticket": ticket(subject=None, raw_subject="Raw")})
    assert only(raw, TicketVersion).subject == "Raw"
    empty = parse_object({"ticket": ticket(subject=None, raw_subject=None)})
    assert only(empty, TicketVersion).subject == ""


def test_times_with_offsets_become_utc_and_keys_canonical() -> None:
    doc = {"ticket": ticket(updated_at="2026-01-03T12:00:00.5+02:00")}
    event = only(parse_object(doc), TicketVersion)
    assert event.updated_at == datetime(2026, 1, 3, 10, 0, 0, 500000, tzinfo=UTC)
    assert_utc(event.at, event.updated_at)
    assert event.key == "zendesk:ticket:42:2026-01-03T10:00:00.500000Z"


def test_bad_records_are_skipped_not_the_page() -> None:
    page = {
        "tickets": [
            ticket(id=1),
            ticket(id=2, updated_at="2026-01-03T10:00:00"),  # naive
            ticket(id=3, created_at="yesterday"),
            ticket(id=4, requester_id=None),
            ticket(id=5, status="weird"),
            "not a ticket",
            ticket(id=6, requester_id=None, requester={"email": "a@example.com"}),
        ]
    }
    parsed = parse_object(page)
    tickets = of(TicketVersion, parsed.events)
    assert [e.ticket_id for e in tickets] == [1, 6]
    assert tickets[1].requester == (Identifier("email", "a@example.com"),)
    assert tickets[1].requester_id is None
    reasons = {s.where: s.reason for s in parsed.skipped}
    assert reasons == {
        "tickets[1] (id 2)": "updated_at without a UTC offset: '2026-01-03T10:00:00'",
        "tickets[2] (id 3)": "bad created_at: 'yesterday'",
        "tickets[3] (id 4)": "ticket without requester",
        "tickets[4] (id 5)": "unknown ticket status 'weird'",
        "tickets[5]": "not an object",
    }


def test_parsing_is_deterministic() -> None:
    doc = load("incremental-tickets-time-full.json")
    assert parse_object(doc) == parse_object(doc)


# --- users and ratings -------------------------------------------------------------------


def test_user_object_fields() -> None:
    user = {
        "id": 9,
        "email": "Ann@Example.com",
        "phone": "+1 555 0100",
        "external_id": 1234,
        "active": False,
        "tags": ["VIP"],
        "updated_at": "2026-02-01T00:00:00Z",
        "user_fields": {"consent_ads": True, "plan": "gold", "score": 3, "empty": None},
    }
    parsed = parse_object({"user": user})
    assert parsed.shape == "user"
    assert only(parsed, UserSeen) == UserSeen(
        key="zendesk:user:9:2026-02-01T00:00:00Z",
        at=utc(2026, 2, 1),
        zendesk_user_id=9,
        emails=("Ann@Example.com",),
        phones=("+1 555 0100",),
        external_ids=("1234",),
        active=False,
        tags=("vip",),
        # an unset field (null) is known to be empty: consent read from it is not granted
        fields=(("consent_ads", "true"), ("plan", "gold"), ("score", "3"), ("empty", "")),
    )


def test_users_page_merges_sideloaded_identities() -> None:
    page = {
        "users": [{"id": 9, "email": "a@example.com", "updated_at": "2026-02-01T00:00:00Z"}],
        "identities": [
            {"user_id": 9, "type": "email", "value": "a@example.com"},
            {"user_id": 9, "type": "email", "value": "b@example.com"},
            {"user_id": 9, "type": "phone_number", "value": "+15550100"},
            {"user_id": 9, "type": "twitter", "value": "@ann"},
        ],
        "end_of_stream": True,
    }
    event = only(parse_object(page), UserSeen)
    assert event.emails == ("a@example.com", "b@example.com")
    assert event.phones == ("+15550100",)


def test_user_without_times_is_skipped() -> None:
    parsed = parse_object({"users": [{"id": 9, "email": "a@example.com"}]})
    assert parsed.events == []
    assert parsed.skipped == [Skipped("users[0] (id 9)", "updated_at missing")]


def rating(rid: int, score: Any, **over: Any) -> dict[str, Any]:
    base = {"id": rid, "score": score, "ticket_id": 42, "requester_id": 7}
    base |= {"created_at": "2026-03-01T00:00:00Z", "updated_at": "2026-03-02T00:00:00Z"}
    return base | over


def test_satisfaction_ratings_page() -> None:
    page = {
        "satisfaction_ratings": [
            rating(1, "good"),
            rating(2, "bad"),
            rating(3, 4),
            rating(4, "5"),
            rating(5, "offered"),
            rating(6, "unoffered"),
            rating(7, 9),
            rating(8, "good", updated_at=None),
        ],
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
        "links": {"prev": None, "next": None},
    }
    parsed = parse_object(page)
    assert parsed.shape == "ratings_page"
    ratings = of(RatingGiven, parsed.events)
    scores = {e.rating_id: e.score for e in ratings}
    assert scores == {1: "good", 2: "bad", 3: 4, 4: 5, 8: "good"}
    assert ratings[0] == RatingGiven(
        key="zendesk:rating:1:2026-03-02T00:00:00Z",
        at=utc(2026, 3, 2),
        rating_id=1,
        ticket_id=42,
        requester_id=7,
        score="good",
    )
    assert ratings[-1].at == utc(2026, 3, 1)  # falls back to created_at
    assert [s.reason for s in parsed.skipped] == [
        "rating offered, not given",
        "rating unoffered, not given",
        "unknown rating score 9",
    ]


# --- ticket events -----------------------------------------------------------------------


def test_incremental_ticket_events_page() -> None:
    page = {
        "ticket_events": [
            {
                "id": 100,
                "ticket_id": 42,
                "timestamp": 1767225600,
                "created_at": "2026-01-01T00:00:00Z",
                "updater_id": 7,
                "via": "Web form",
                "event_type": "Audit",
                "child_events": [
                    {
                        "id": 101,
                        "via": "Web form",
                        "comment_present": True,
                        "event_type": "Comment",
                    },
                    {
                        "id": 102,
                        "status": "solved",
                        "previous_value": "open",
                        "event_type": "Change",
                    },
                    {"id": 103, "tags": ["a"], "added_tags": ["a"], "event_type": "Change"},
                ],
            },
            {
                "id": 200,
                "ticket_id": 43,
                "timestamp": 1767225660,  # no created_at: epoch seconds are used
                "child_events": [{"id": 201, "status": "new", "event_type": "Create"}],
            },
            {
                "id": 300,
                "ticket_id": 44,
                "timestamp": 1,
                "child_events": [{"id": 301, "status": "zzz"}],
            },
        ],
        "next_page": None,
        "end_of_stream": True,
        "end_time": 1767225660,
        "count": 3,
    }
    parsed = parse_object(page)
    assert parsed.shape == "ticket_events_page"
    assert parsed.events == [
        TicketStatusChanged("zendesk:ticket_event:102", utc(2026, 1, 1), 42, "solved", "open"),
        TicketStatusChanged("zendesk:ticket_event:201", utc(2026, 1, 1, 0, 1), 43, "new", None),
    ]
    assert parsed.skipped == [
        Skipped("ticket_events[2].child_events[0] (id 301)", "unknown ticket status 'zzz'")
    ]


# --- webhook envelopes -------------------------------------------------------------------


def envelope(kind: str, detail: dict[str, Any], event: dict[str, Any] | None = None) -> Any:
    return {
        "account_id": 1,
        "id": "ev-1",
        "time": "2026-04-01T12:00:00.123456789Z",
        "type": f"zen:event-type:{kind}",
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:thing:1",
        "detail": detail,
        "event": event or {},
    }


FULL_TICKET = {
    "actor_id": "7",
    "assignee_id": "8",
    "created_at": "2026-03-31T09:00:00Z",
    "id": "42",
    "priority": "HIGH",
    "requester_id": "7",
    "status": "SOLVED",
    "subject": "Refund",
    "tags": ["refund"],
    "type": "PROBLEM",
    "updated_at": "2026-04-01T12:00:00Z",
    "via": {"channel": "web_service"},
}


def test_envelope_ticket_status_changed_with_full_detail() -> None:
    doc = envelope("ticket.status_changed", FULL_TICKET, {"current": "SOLVED", "previous": "OPEN"})
    parsed = parse_object(doc)
    assert parsed.shape == "envelope"
    assert parsed.skipped == []
    version, change = parsed.events
    assert isinstance(version, TicketVersion)
    assert version.key == "zendesk:envelope:ev-1:0"
    assert (version.ticket_id, version.status, version.priority) == (42, "solved", "high")
    assert (version.requester_id, version.channel, version.at) == (7, "api", utc(2026, 4, 1, 12))
    assert change == TicketStatusChanged(
        "zendesk:envelope:ev-1:1", utc(2026, 4, 1, 12, 0, 0, 123456), 42, "solved", "open"
    )


def test_envelope_ticket_events_with_partial_detail() -> None:
    partial = {"id": "42", "status": "SOLVED", "updated_at": "2026-04-01T12:00:00Z"}
    doc = envelope("ticket.status_changed", partial, {"current": "SOLVED", "previous": "NEW"})
    change = only(parse_object(doc), TicketStatusChanged)
    assert change.key == "zendesk:envelope:ev-1"
    assert (change.ticket_id, change.status, change.previous_status) == (42, "solved", "new")
    created = only(parse_object(envelope("ticket.created", FULL_TICKET)), TicketVersion)
    assert created.key == "zendesk:envelope:ev-1"
    version, deletion = parse_object(envelope("ticket.soft_deleted", FULL_TICKET)).events
    assert isinstance(version, TicketVersion)
    assert isinstance(deletion, TicketStatusChanged)
    assert version.status == deletion.status == "deleted"
    priority = parse_object(envelope("ticket.priority_changed", partial))
    assert priority.events == []
    assert priority.skipped[0].reason.startswith("ticket.priority_changed without a full ticket")


def test_envelope_user_events() -> None:
    detail = {"id": "9", "email": "ann@example.com", "external_id": "", "role": "end-user"}
    created = only(parse_object(envelope("user.created", detail)), UserSeen)
    assert created == UserSeen("zendesk:envelope:ev-1", created.at, 9, emails=("ann@example.com",))
    ext = only(
        parse_object(envelope("user.external_id_changed", detail, {"current": "C-1"})), UserSeen
    )
    assert ext.external_ids == ("C-1",)
    inactive = only(
        parse_object(envelope("user.active_changed", detail, {"current": False})), UserSeen
    )
    assert inactive.active is False
    ident = {"current": {"type": "phone_number", "value": "+15550100"}}
    phone = only(parse_object(envelope("user.identity_created", detail, ident)), UserSeen)
    assert phone.phones == ("+15550100",)
    into = {"merged_into": {"id": "10"}}
    merged = only(parse_object(envelope("user.merged", detail, into)), UserMerged)
    assert merged == UserMerged("zendesk:envelope:ev-1", merged.at, 9, 10)
    gone = only(parse_object(envelope("user.permanently_deleted", detail)), UserDeleted)
    assert gone == UserDeleted("zendesk:envelope:ev-1", gone.at, 9, permanent=True)
    no_target = parse_object(envelope("user.merged", detail))
    assert no_target.events == []
    assert "merged into" in no_target.skipped[0].reason


def test_envelope_unknown_type_and_bad_time_are_skipped() -> None:
    unknown = parse_object(envelope("organization.created", {"id": "1"}))
    assert unknown == Parsed(
        [],
        [Skipped("envelope (id ev-1)", "unknown event type zen:event-type:organization.created")],
        "envelope",
    )
    bad_time = envelope("user.deleted", {"id": "9"})
    bad_time["time"] = "2026-04-01 12:00"
    parsed = parse_object(bad_time)
    assert parsed.events == []
    assert parsed.skipped[0].reason.startswith("time without a UTC offset")


# --- trigger bodies ----------------------------------------------------------------------


def trigger(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 123,
        "status": "Open",
        "priority": "-",
        "tags": "refund  VIP order_issue",
        "subject": "Where is my order?",
        "via": "Web Form",
        "created_at": "November 22, 2026 10:32",
        "updated_at": "2026-11-22T10:35Z",
        "requester": {"id": 5, "email": "ann@example.com", "phone": "", "external_id": "C-9"},
    }
    body.update(over)
    return {"ticket": body}


def test_same_minute_trigger_bodies_are_two_versions_and_a_redelivery_is_one() -> None:
    """Open then Solved within one minute: the same minute-precision updated_at, but two
    different bodies, so two keys (issue 18 §5); the same body again keeps its key."""
    opened = only(parse_object(trigger()), TicketVersion)
    solved = only(parse_object(trigger(status="Solved")), TicketVersion)
    assert opened.updated_at == solved.updated_at
    assert opened.key != solved.key
    assert only(parse_object(trigger()), TicketVersion).key == opened.key
    precise = only(parse_object(trigger(updated_at="2026-11-22T10:35:07Z")), TicketVersion)
    assert precise.key == "zendesk:ticket:123:2026-11-22T10:35:07Z"  # seconds tell the order


def test_trigger_body_with_display_text() -> None:
    parsed = parse_object(trigger())
    assert parsed.shape == "trigger_ticket"
    version = only(parsed, TicketVersion)
    # minute precision: the key carries a digest of the body (see the same-minute test)
    assert version.key.startswith("zendesk:ticket:123:2026-11-22T10:35:00Z:")
    assert version == TicketVersion(
        key=version.key,
        at=utc(2026, 11, 22, 10, 35),
        ticket_id=123,
        created_at=utc(2026, 11, 22, 10, 32),
        updated_at=utc(2026, 11, 22, 10, 35),
        status="open",
        priority=None,
        tags=("refund", "vip", "order_issue"),
        subject="Where is my order?",
        channel="web",
        requester_id=5,
        requester=(Identifier("email", "ann@example.com"), Identifier("external_id", "C-9")),
    )


@pytest.mark.parametrize(
    ("over", "field", "expected"),
    [
        ({"status": "On-hold"}, "status", "hold"),
        ({"status": "Solved"}, "status", "solved"),
        ({"priority": "Urgent"}, "priority", "urgent"),
        ({"priority": ""}, "priority", None),
        ({"via": "Mail"}, "channel", "email"),
        ({"via": "Chat"}, "channel", "chat"),
        ({"via": "Web service"}, "channel", "api"),
        ({"via": "Phone call (incoming)"}, "channel", "voice"),
        ({"via": "Facebook Post"}, "channel", "facebook_post"),
        ({"tags": ""}, "tags", ()),
        ({"updated_at": "Nov 22, 2026 10:35:07"}, "updated_at", utc(2026, 11, 22, 10, 35, 7)),
        ({"updated_at": "November 22, 2026 10:35 PM"}, "updated_at", utc(2026, 11, 22, 22, 35)),
        ({"updated_at": "2026-11-22T10:35:00+01:00"}, "updated_at", utc(2026, 11, 22, 9, 35)),
    ],
)
def test_trigger_display_values(over: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(only(parse_object(trigger(**over)), TicketVersion), field) == expected


def test_trigger_requester_inline_only() -> None:
    requester = {"id": "", "email": " ann@example.com ", "phone": "", "external_id": ""}
    event = only(parse_object(trigger(requester=requester)), TicketVersion)
    assert event.requester_id is None
    assert event.requester == (Identifier("email", "ann@example.com"),)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"requester": {"id": "", "email": "", "phone": "", "external_id": ""}}, "requester"),
        ({"updated_at": "22/11/2026 10:35"}, "bad updated_at"),
        ({"updated_at": "2026-11-22T10:35"}, "updated_at without a UTC offset"),
        ({"created_at": "Smarch 22, 2026 10:32"}, "bad created_at"),
        ({"status": "Offen"}, "unknown ticket status"),
    ],
)
def test_bad_trigger_bodies_are_skipped(over: dict[str, Any], reason: str) -> None:
    parsed = parse_object(trigger(**over))
    assert parsed.events == []
    assert len(parsed.skipped) == 1
    assert parsed.skipped[0].where == "ticket (id 123)"
    assert reason in parsed.skipped[0].reason


# --- unknown shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"foo": 1, "bar": [1]}, "unknown object shape: keys bar, foo"),
        ({}, "unknown object shape: empty"),
        ("hello", "unknown object shape: str, not an object"),
        (42, "unknown object shape: int, not an object"),
        ({"ticket": "nope"}, "unknown object shape: keys ticket"),
    ],
)
def test_unknown_shapes_are_reported_not_raised(doc: Any, reason: str) -> None:
    assert parse_object(doc) == Parsed([], [Skipped("document", reason)], "unknown")


def test_array_of_documents() -> None:
    parsed = parse_object([trigger(), {"what": 1}])
    assert parsed.shape == "list"
    assert len(parsed.events) == 1
    assert parsed.skipped == [Skipped("[1] document", "unknown object shape: keys what")]


# --- files -------------------------------------------------------------------------------


def test_read_json_file_is_one_chunk() -> None:
    path = FIXTURES / "incremental-tickets-time-full.json"
    chunks = list(read_file(path))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert isinstance(chunk, Chunk)
    assert (chunk.path, chunk.line, chunk.raw_size) == (str(path), 1, path.stat().st_size)
    assert len(of(TicketVersion, chunk.parsed.events)) == 87


def test_read_jsonl_streams_lines_and_skips_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "bodies.jsonl"
    lines = [json.dumps(trigger()), "", "   ", json.dumps({"tickets": [ticket(id=1)]})]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    chunks = list(read_file(str(path)))
    assert [(c.line, c.parsed.shape) for c in chunks] == [
        (1, "trigger_ticket"),
        (4, "tickets_page"),
    ]
    assert chunks[1].raw_size == len(lines[3]) + 1


def test_jsonl_bad_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bodies.jsonl"
    path.write_text(json.dumps(trigger()) + "\n\n{not json\n" + json.dumps(trigger()) + "\n")
    chunks = read_file(path)
    assert next(chunks).line == 1
    with pytest.raises(ParseError) as error:
        next(chunks)
    assert (error.value.path, error.value.line) == (str(path), 3)
    assert str(error.value).startswith(f"{path}:3: invalid JSON")


def test_json_bad_document_and_unknown_extension(tmp_path: Path) -> None:
    bad = tmp_path / "page.json"
    bad.write_text('{"tickets": [\n  {"id": 1,}\n]}')
    with pytest.raises(ParseError) as error:
        list(read_file(bad))
    assert error.value.line == 2
    with pytest.raises(ParseError) as error:
        read_file(tmp_path / "page.csv")
    assert error.value.line == 0
    assert "unknown file type .csv" in str(error.value)
    with pytest.raises(ParseError, match="cannot read"):
        list(read_file(tmp_path / "missing.json"))


def test_user_custom_field_and_tags_envelopes_feed_consent_fields() -> None:
    from tactful.core.events import UserSeen

    base = {
        "id": "e9",
        "time": "2026-11-22T10:00:00Z",
        "account_id": 1,
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:user:55",
        "detail": {"id": "55", "email": "ann@example.com", "external_id": ""},
    }
    field = parse_object(
        {
            **base,
            "type": "zen:event-type:user.custom_field_changed",
            "event": {
                "field": {"key": "marketing_consent_ads"},
                "current": False,
                "previous": True,
            },
        }
    )
    (seen,) = field.events
    assert isinstance(seen, UserSeen)
    assert seen.fields == (("marketing_consent_ads", "false"),)
    tags = parse_object(
        {
            **base,
            "type": "zen:event-type:user.tags_changed",
            "event": {"current": ["VIP", "wholesale"], "previous": []},
        }
    )
    (seen,) = tags.events
    assert isinstance(seen, UserSeen) and seen.tags == ("vip", "wholesale")

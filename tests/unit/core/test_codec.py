"""The event codec (``tactful.core.codec``): every event kind survives the event log's JSON,
and times are written and read in one form, refused outside the range Tactful accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tactful.core import codec
from tactful.core.events import (
    EVENT_TYPES,
    ConsentSet,
    Event,
    HealthSet,
    Identifier,
    OutcomeRecorded,
    OverrideSet,
    PersonErased,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserDeleted,
    UserMerged,
    UserSeen,
)

AT = datetime(2026, 3, 10, 12, 0, 0, 250_000, tzinfo=UTC)
ANN = Identifier("email", "ann@example.com")

SAMPLES: dict[str, Event] = {
    "ticket_version": TicketVersion(
        "t1",
        AT,
        1,
        AT - timedelta(days=1),
        AT,
        "open",
        "high",
        ("vip", "refund"),
        "Où est",
        "email",
        9001,
        (ANN, Identifier("phone", "+14155550100")),
        (("360", "refund"),),
        7,
    ),
    "ticket_status_changed": TicketStatusChanged("s1", AT, 1, "solved", "open"),
    "ticket_text": TicketText("x1", AT, 1, None, ("late", "parcel"), -0.62, "en"),
    "user_seen": UserSeen(
        "u1",
        AT,
        9001,
        ("ann@example.com",),
        ("+14155550100",),
        ("CUST-1",),
        True,
        ("vip",),
        (("tier", "gold"),),
        "Ann",
    ),
    "user_merged": UserMerged("m1", AT, 9002, 9001),
    "user_deleted": UserDeleted("d1", AT, 9001, permanent=True),
    "rating_given": RatingGiven("r1", AT, "01HZ", 1, 9001, 4, (ANN,), scale=5),
    "health_set": HealthSet("h1", AT, ANN, "unsatisfied", "agent:7"),
    "consent_set": ConsentSet("c1", AT, ANN, "ads", False, "form"),
    "outcome_recorded": OutcomeRecorded("o1", AT, ANN, "order", 12.5, "EUR", (("sku", "A"),)),
    "person_erased": PersonErased("e1", AT, ANN, "dpo"),
    "override_set": OverrideSet("v1", AT, ANN, None, "agent:7"),
}


def test_every_event_kind_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_encode_then_decode_gives_the_same_event(kind: str) -> None:
    event = SAMPLES[kind]
    encoded = codec.encode(event)
    assert encoded["kind"] == kind
    assert codec.decode(encoded) == event


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_the_stored_bytes_load_back_to_the_same_event(kind: str) -> None:
    event = SAMPLES[kind]
    assert codec.loads(kind, codec.dumps(event)) == event


def test_a_legacy_good_bad_score_and_an_override_until_survive() -> None:
    good = RatingGiven("r2", AT, 17, 1, 9001, "good")
    until = OverrideSet("v2", AT, ANN, AT + timedelta(days=30))
    for event in (good, until):
        assert codec.decode(codec.encode(event)) == event


def test_an_identifier_may_be_stored_as_an_object() -> None:
    data = {
        "kind": "health_set",
        "key": "h",
        "at": "2026-03-10T12:00:00Z",
        "person": {"kind": "email", "value": "ann@example.com"},
        "health": "neutral",
    }
    assert codec.decode(data) == HealthSet("h", AT.replace(microsecond=0), ANN, "neutral")


FORMATS = {
    "whole seconds": (datetime(2026, 3, 10, 12, tzinfo=UTC), "2026-03-10T12:00:00Z"),
    "microseconds": (AT, "2026-03-10T12:00:00.250000Z"),
    "another offset": (
        datetime(2026, 3, 10, 14, tzinfo=timezone(timedelta(hours=2))),
        "2026-03-10T12:00:00Z",
    ),
}


@pytest.mark.parametrize(("value", "text"), FORMATS.values(), ids=FORMATS.keys())
def test_format_time(value: datetime, text: str) -> None:
    assert codec.format_time(value) == text
    assert codec.parse_time(text) == value


PARSED = {
    "Z": ("2026-03-10T12:00:00Z", datetime(2026, 3, 10, 12, tzinfo=UTC)),
    "an offset is turned into UTC": (
        "2026-03-10T07:00:00-05:00",
        datetime(2026, 3, 10, 12, tzinfo=UTC),
    ),
    "the first moment accepted": ("1970-01-01T00:00:00Z", codec.EARLIEST),
    "the last microsecond accepted": (
        "2199-12-31T23:59:59.999999Z",
        codec.LATEST - timedelta(microseconds=1),
    ),
}


@pytest.mark.parametrize(("text", "value"), PARSED.values(), ids=PARSED.keys())
def test_parse_time(text: str, value: datetime) -> None:
    parsed = codec.parse_time(text)
    assert parsed == value and parsed.tzinfo is UTC


REFUSED = {
    "no offset": ("2026-03-10T12:00:00", "without a UTC offset"),
    "before 1970": ("1969-12-31T23:59:59.999999Z", "out of range"),
    "from 2200 on": ("2200-01-01T00:00:00Z", "out of range"),
    "past year 9999 once in UTC": ("9999-12-31T23:59:00-05:00", "out of range"),
    "not a time": ("yesterday", "Invalid isoformat"),
}


@pytest.mark.parametrize(("text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_parse_time_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.parse_time(text)


def test_exact_keeps_the_bytes() -> None:
    blob = codec.dumps(SAMPLES["ticket_version"])
    assert codec.exact(blob) == blob

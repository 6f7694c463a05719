"""The one ``Retry-After`` parser and retry policy (``tactful.http.retry``), as the
destinations and the Zendesk client use it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tactful.destinations import base as destinations
from tactful.http.retry import Backoff, parse_retry_after, retryable
from tactful.zendesk import client as zendesk

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def test_seconds_form() -> None:
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after(" 1.5 ", NOW) == 1.5
    assert parse_retry_after("0", NOW) == 0.0
    assert parse_retry_after("-3", NOW) == 0.0


def test_http_date_form_from_the_given_clock() -> None:
    later = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    assert parse_retry_after(later, NOW) == 45.0
    assert parse_retry_after("Sun, 06 Dec 2026 12:02:00 GMT", NOW) == 120.0
    # obsolete RFC 850 and asctime forms are HTTP dates too
    assert parse_retry_after("Sunday, 06-Dec-26 12:00:10 GMT", NOW) == 10.0
    # "-0000" (no zone claimed) is read as UTC
    assert parse_retry_after("Sun, 06 Dec 2026 12:00:20 -0000", NOW) == 20.0


def test_a_date_in_the_past_is_no_wait() -> None:
    earlier = format_datetime(NOW - timedelta(days=3), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize(
    "bad", [None, "", "   ", "soon", "nan", "inf", "-inf", "30s", "Sun, 99 Foo 2026", "1e999"]
)
def test_garbage_is_none(bad: str | None) -> None:
    assert parse_retry_after(bad, NOW) is None


def test_the_destinations_and_zendesk_share_the_parser() -> None:
    """The destinations' parser read neither a fraction ("1.5" was None) nor a date without
    a zone ("-0000" raised TypeError); the Zendesk client had its own copy."""
    assert destinations.parse_retry_after is parse_retry_after
    assert destinations.parse_retry_after("1.5") == 1.5
    no_zone = format_datetime(datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1))
    assert 3500 < (destinations.parse_retry_after(no_zone) or 0) <= 3600
    assert zendesk.parse_retry_after is parse_retry_after


def test_which_failures_are_retried() -> None:
    assert all(retryable(s) for s in (None, 408, 409, 425, 429, 500, 502, 503, 599))
    assert not any(retryable(s) for s in (400, 401, 403, 404, 410, 422))


def test_backoff_doubles_to_the_cap_with_equal_jitter() -> None:
    policy = Backoff(base=1.0, cap=60.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [policy.backoff(n, jitter=0.0) for n in (1, 2)] == [0.5, 1.0]
    assert policy.backoff(7) == 60.0 and policy.backoff(10_000) == 60.0  # no overflow


def test_retry_after_is_followed_up_to_its_cap() -> None:
    give_up = Backoff(retry_after_cap=3600.0, over_cap="give_up")
    assert give_up.wait(1, 30.0) == 30.0
    assert give_up.wait(1, 7200.0) is None  # hours: an outage, not a wait
    clamp = Backoff(base=1.0, cap=900.0, floor=1.0, retry_after_cap=900.0, over_cap="clamp")
    assert clamp.wait(1, 0.0) == 1.0  # no tight loop
    assert clamp.wait(1, 1e15) == 900.0
    assert clamp.wait(1, math.nan) == 1.0


def test_next_wait_gives_up_on_permanent_errors_and_after_the_attempts() -> None:
    policy = Backoff()
    assert policy.next_wait(503, 1, None, max_attempts=3) == 1.0
    assert policy.next_wait(503, 3, None, max_attempts=3) is None
    assert policy.next_wait(404, 1, None, max_attempts=3) is None
    assert policy.next_wait(429, 2, 12.0, max_attempts=3) == 12.0

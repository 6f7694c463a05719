"""One retry policy and one ``Retry-After`` parser for every outgoing HTTP call.

``parse_retry_after`` reads both forms of the header (RFC 9110 §10.2.3): delta-seconds
(``"120"``; a fraction is accepted) and an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``),
as seconds from ``now`` (the caller's injected clock); a date in the past is 0, garbage is
None. ``Backoff`` is the policy: which failures are retried, the exponential backoff with
jitter, and how far a vendor's ``Retry-After`` is followed. It is pure: the caller sleeps
(the Zendesk client) or schedules the next attempt (the delivery worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from tactful.clock import system_now


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait from ``now`` (default: the machine's clock, which
    is the one a vendor's HTTP date is written in); None when absent or not readable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, with no claim about the local zone
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or system_now())).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retryable(status: int | None) -> bool:
    """Worth another attempt: a timeout or connection error (None), 408 Request Timeout,
    409 Conflict, 425 Too Early, 429 Too Many Requests and any 5xx. Other 4xx will not heal."""
    return status is None or status in (408, 409, 425, 429) or status >= 500


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between attempts.

    Without a ``Retry-After``: ``base * 2**(attempt-1)``, at most ``cap``, with equal jitter
    (between half and all of it, so that many clients do not retry in step). With one: the
    vendor's wait, at least ``floor`` (a ``0`` must not make a tight loop). A wait longer
    than ``retry_after_cap`` is cut to it (``over_cap="clamp"``: the durable delivery
    schedule, which asks again then) or ends the retries (``"give_up"``: a caller that
    would otherwise sleep for hours).
    """

    base: float = 1.0
    cap: float = 60.0
    floor: float = 0.0
    retry_after_cap: float = 3600.0
    over_cap: Literal["clamp", "give_up"] = "give_up"

    def backoff(self, attempt: int, jitter: float = 1.0) -> float:
        """The wait after failed attempt ``attempt`` (1-based); ``jitter`` in [0, 1]."""
        step = min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 62))
        return step * (0.5 + 0.5 * jitter)

    def wait(self, attempt: int, retry_after: float | None, jitter: float = 1.0) -> float | None:
        """The wait before the next attempt, or None to give up."""
        if retry_after is None:
            return self.backoff(attempt, jitter)
        if math.isnan(retry_after):
            return max(self.floor, self.base)
        if retry_after > self.retry_after_cap:
            return None if self.over_cap == "give_up" else self.retry_after_cap
        return max(self.floor, retry_after)

    def next_wait(
        self,
        status: int | None,
        attempt: int,
        retry_after: float | None,
        *,
        jitter: float = 1.0,
        max_attempts: int,
    ) -> float | None:
        """For a caller that retries in place: the wait after failed attempt ``attempt``
        (1-based) with HTTP ``status`` (None: timeout or connection error), or None to give
        up (not ``retryable``, or ``max_attempts`` made)."""
        if attempt >= max_attempts or not retryable(status):
            return None
        return self.wait(attempt, retry_after, jitter)

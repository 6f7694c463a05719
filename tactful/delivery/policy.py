"""Retry as a pure decision (procrastinate's style): the shell does the waiting.

Rules:
- ``ok`` → done.
- ``reject`` → dead-lettered at once with the vendor's error (a 4xx will not heal).
- ``retry`` → next attempt after ``Retry-After`` when the vendor gave one, clamped to
  [``base``, ``cap``] (a vendor's ``Retry-After: 99999999999999`` or ``0`` must neither
  overflow nor make a tight loop), else exponential backoff ``base * 2**attempts`` capped at
  ``cap``, with full jitter in [50%, 100%]; dead-lettered once the delivery is older than
  ``max_age`` (an operator can retry it).
- ``skip`` → nothing this destination can act on (no identifier it can match): skipped,
  neither retried nor dead-lettered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tactful.destinations.base import Outcome


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["done", "retry", "dead", "skipped"]
    at: datetime | None = None  # when to try again (retry)
    reason: str = ""


def decide(
    outcome: Outcome,
    attempts: int,
    now: datetime,
    created: datetime,
    policy: RetryPolicy,
    jitter: float,
) -> Decision:
    """``attempts``: attempts made so far including this one; ``jitter`` in [0, 1)."""
    if outcome.kind == "ok":
        return Decision("done")
    if outcome.kind == "reject":
        return Decision("dead", None, outcome.error or "rejected by the destination")
    if outcome.kind == "skip":
        return Decision("skipped", None, outcome.error or "nothing this destination can match")
    if outcome.retry_after is not None:
        wait = clamp_retry_after(outcome.retry_after, policy)
    else:
        backoff = min(policy.cap, policy.base * (2 ** min(attempts - 1, 30)))
        wait = backoff * (0.5 + 0.5 * jitter)
    at = now + wait
    if at - created > policy.max_age:
        age = policy.max_age
        return Decision("dead", None, f"still failing after {age} ({outcome.error})")
    return Decision("retry", at, outcome.error)


def clamp_retry_after(seconds: float, policy: RetryPolicy) -> timedelta:
    """A vendor's ``Retry-After`` within [``base``, ``cap``]; NaN counts as ``base``."""
    low, high = policy.base.total_seconds(), policy.cap.total_seconds()
    if math.isnan(seconds):
        return policy.base
    return timedelta(seconds=min(high, max(low, seconds)))

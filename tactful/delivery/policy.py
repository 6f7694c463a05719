"""Retry as a pure decision (procrastinate's style): the shell does the waiting.

Rules (the numbers of ``tactful.http.retry.Backoff``, the one retry policy):
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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tactful.destinations.base import Outcome
from tactful.http.retry import Backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=3)

    @property
    def backoff(self) -> Backoff:
        """``tactful.http.retry``'s policy with these numbers: a ``Retry-After`` within
        [``base``, ``cap``] (NaN counts as ``base``), else exponential with equal jitter."""
        base, cap = self.base.total_seconds(), self.cap.total_seconds()
        return Backoff(base=base, cap=cap, floor=base, retry_after_cap=cap, over_cap="clamp")


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
    seconds = policy.backoff.wait(attempts, outcome.retry_after, jitter)
    assert seconds is not None  # over_cap="clamp": never gives up
    at = now + timedelta(seconds=seconds)
    if at - created > policy.max_age:
        age = policy.max_age
        return Decision("dead", None, f"still failing after {age} ({outcome.error})")
    return Decision("retry", at, outcome.error)

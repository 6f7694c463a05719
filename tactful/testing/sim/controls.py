"""Request-level behaviour of the fake Zendesk: request log, rate limits, injected faults."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from tactful.testing.sim.model import Clock

INCREMENTAL_PREFIX = "/api/v2/incremental/"
INCREMENTAL_LIMIT_TEXT = "Number of allowed incremental export API requests per minute exceeded"
GENERAL_LIMIT_TEXT = "Number of allowed API requests per minute exceeded"
WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (``at`` is simulated time)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: datetime


class RateLimiter:
    """A sliding one-minute window of accepted requests (rejected ones are not counted)."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: deque[datetime] = deque()

    def _trim(self, now: datetime) -> None:
        while self._seen and now - self._seen[0] >= WINDOW:
            self._seen.popleft()

    def check(self) -> int | None:
        """None when the request may go ahead (and count it); else Retry-After seconds."""
        now = self.clock()
        self._trim(now)
        if len(self._seen) >= self.per_minute:
            wait = (self._seen[0] + WINDOW - now).total_seconds()
            return max(1, math.ceil(wait))
        self._seen.append(now)
        return None

    def remaining(self) -> int:
        self._trim(self.clock())
        return max(0, self.per_minute - len(self._seen))

    def reset(self) -> None:
        self._seen.clear()


@dataclass
class Fault:
    """An injected failure or delay for the next ``count`` matching requests."""

    count: int
    status: int | None  # None: answer normally (slow only)
    seconds: float
    path_prefix: str
    retry_after: int | None


class Faults:
    def __init__(self) -> None:
        self._queue: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.count > 0:
            self._queue.append(fault)

    def take(self, path: str) -> Fault | None:
        """The first pending fault for ``path``, consuming one of its requests."""
        for fault in self._queue:
            if path.startswith(fault.path_prefix):
                fault.count -= 1
                if fault.count <= 0:
                    self._queue.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._queue.clear()

"""Brute-force protection: failed authentications, per client and overall.

A client may fail ``free`` times; after that it must wait before each new attempt, the wait
doubling with every further failure (``base``, 2×, 4×, … up to ``cap``). Failures are forgotten
``forget`` seconds after the last one, or at a success. Overall, more than ``global_limit``
failures within ``global_window`` seconds make everyone wait until the oldest falls out of
the window (a spread-out attack cannot try more than that many guesses a minute).

Per process, in memory (at most ``max_clients`` clients are tracked; the least recently seen
are dropped first). Attempts are refused *before* the credential is checked, so a 429 says
nothing about whether a guess was right.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Client:
    failures: int = 0
    last: float = 0.0


@dataclass
class Throttle:
    free: int = 5
    base: float = 1.0
    cap: float = 300.0
    forget: float = 900.0
    global_limit: int = 200
    global_window: float = 60.0
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _clients: OrderedDict[str, _Client] = field(default_factory=OrderedDict)
    _recent: deque[float] = field(default_factory=deque)

    def retry_after(self, client: str) -> float | None:
        """Seconds ``client`` must wait before its next attempt, or None when it may try."""
        now = self.clock()
        while self._recent and self._recent[0] <= now - self.global_window:
            self._recent.popleft()
        waits: list[float] = []
        if len(self._recent) >= self.global_limit:
            waits.append(self._recent[0] + self.global_window - now)
        state = self._clients.get(client)
        if state is not None:
            if now - state.last >= self.forget:
                del self._clients[client]
            elif state.failures >= self.free:
                delay = min(self.cap, self.base * 2 ** (state.failures - self.free))
                waits.append(state.last + delay - now)
        wait = max(waits, default=0.0)
        return wait if wait > 0 else None

    def failed(self, client: str) -> int:
        """Record a failure; returns the client's count of recent failures."""
        now = self.clock()
        self._recent.append(now)
        state = self._clients.pop(client, None) or _Client()
        state.failures += 1
        state.last = now
        self._clients[client] = state
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return state.failures

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

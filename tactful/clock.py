"""The one place the wall clock is read.

Business logic asks an injected ``Clock`` for "now": the engine's ``wall_clock``, which
``bootstrap(settings, clock=...)`` hands to the engine, the delivery worker, the web app and
its background work, so a simulation or a test moves time for all of them at once.
``system_now`` is the real clock, the default of every such injection.

``epoch_seconds`` is for protocols that carry the real time to another party (signed JWT
``iat``/``exp``, webhook signature timestamps, a vendor's rate-limit reset time): those must
follow the machine's clock even in a simulation. Durations use ``time.monotonic`` or
``time.perf_counter``, never this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_now() -> datetime:
    """The machine's wall clock, in UTC."""
    return datetime.now(UTC)


def epoch_seconds() -> float:
    """The machine's wall clock as Unix seconds (for protocol timestamps)."""
    return time.time()


def now_or(clock: Clock | None) -> Clock:
    """``clock``, or the machine's clock when none was injected."""
    return clock or system_now


def now_us() -> int:
    """The machine's wall clock in Unix microseconds: the store's own stamps (when a
    document was received, a migration applied, a claim taken) and figures read against
    them."""
    return time.time_ns() // 1000

"""Refused Zendesk webhook signatures, counted across processes for the
``signature_failures`` rule.

Each ``serve`` process counts the webhooks it refused (``Metrics.bad_signatures``, in
memory: a refused request writes nothing). Before each alert check, a process adds what it
refused since its last check to per-minute counts in the store's ``meta``
(``signature_failures``, kept for a day), under a lock, so the process that checks sees the
refusals of all of them (to within one check interval, 30 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import orjson

from tactful.store.base import Store

META_KEY = "signature_failures"
MINUTE_US = 60_000_000
KEEP = timedelta(days=1)
_KEEP_MINUTES = KEEP // timedelta(minutes=1)


def _loads(text: str | None) -> dict[int, int]:
    if not text:
        return {}
    return {int(k): int(v) for k, v in dict(orjson.loads(text)).items()}


class SignatureTally:
    """Carries one process's running total of refused signatures into the store."""

    def __init__(self, total: Callable[[], int]) -> None:
        self.total = total
        self.flushed = 0

    def flush(self, store: Store, now_us: int) -> None:
        total = self.total()
        new = total - self.flushed
        if new <= 0:
            return
        minute = now_us // MINUTE_US
        with store.transaction() as tx:
            tx.lock([META_KEY])
            counts = _loads(tx.get_meta(META_KEY))
            counts[minute] = counts.get(minute, 0) + new
            kept = {m: n for m, n in counts.items() if m > minute - _KEEP_MINUTES}
            tx.set_meta(META_KEY, orjson.dumps({str(m): n for m, n in kept.items()}).decode())
        self.flushed = total


def refused(store: Store, windows: Iterable[int], now_us: int) -> dict[int, int]:
    """Per window (µs), the refusals counted in the minutes it overlaps."""
    with store.reader() as reader:
        counts = _loads(reader.get_meta(META_KEY))
    return {
        w: sum(n for m, n in counts.items() if (m + 1) * MINUTE_US > now_us - w) for w in windows
    }

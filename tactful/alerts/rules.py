"""Alert rules over delivery health, as a pure function of a snapshot (no I/O, no clock).

``evaluate`` gives, for every rule and every destination it watches, a ``Finding``: whether
the condition holds now, the measured value and a one-line summary an operator can act on.
Whether that means telling anyone is ``tactful.alerts.policy``'s decision (``for``,
de-duplication, ``repeat``, resolved notices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from tactful.alerts.config import (
    AlertSettings,
    CircuitOpen,
    DeadLetters,
    Lag,
    NoSuccess,
    RejectRate,
)


@dataclass(frozen=True)
class Answered:
    """What a destination's runs did in a window: rows delivered and rows rejected."""

    delivered: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.rejected


@dataclass(frozen=True)
class Health:
    """One destination, as the store shows it now."""

    pending: int = 0
    dead: int = 0
    oldest_pending_us: int | None = None
    last_success_us: int | None = None
    circuit: str = "closed"  # closed | open | half_open
    last_error: str = ""
    # Answered rows per window length (µs), for the reject_rate rules' windows.
    answered: Mapping[int, Answered] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    rule: str
    destination: str
    holds: bool
    value: float
    summary: str


def window_us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def windows(rules: Sequence[AlertSettings]) -> set[int]:
    """The reject-rate windows (µs) the snapshot must count answered rows over."""
    return {window_us(r.kind.window) for r in rules if isinstance(r.kind, RejectRate)}


def short(us: float) -> str:
    """A duration for people: ``42s``, ``17m``, ``3h 05m``, ``2d 4h``."""
    seconds = int(us // 1_000_000)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def evaluate(
    rules: Sequence[AlertSettings], health: Mapping[str, Health], now_us: int
) -> list[Finding]:
    """Every rule against every destination it watches (``destinations``, else all)."""
    out: list[Finding] = []
    for rule in rules:
        names = rule.destinations if rule.destinations is not None else sorted(health)
        for name in names:
            h = health.get(name, Health())
            holds, value, summary = _check(rule, h, now_us)
            out.append(Finding(rule.name, name, holds, value, f"{name}: {summary}"))
    return out


def _check(rule: AlertSettings, h: Health, now_us: int) -> tuple[bool, float, str]:
    kind = rule.kind
    if isinstance(kind, DeadLetters):
        return h.dead > kind.above, h.dead, f"{h.dead} dead letters (alert above {kind.above})"
    if isinstance(kind, CircuitOpen):
        state = h.circuit.replace("_", "-")
        why = f" (last error: {h.last_error})" if h.last_error and h.circuit != "closed" else ""
        return h.circuit != "closed", float(h.circuit != "closed"), f"circuit {state}{why}"
    if isinstance(kind, Lag):
        age = 0 if h.oldest_pending_us is None else max(0, now_us - h.oldest_pending_us)
        limit = window_us(kind.above)
        summary = f"oldest pending row waited {short(age)} (alert above {short(limit)})"
        return age > limit, age / 1e6, f"{summary}; {h.pending} pending"
    if isinstance(kind, RejectRate):
        answered = h.answered.get(window_us(kind.window), Answered())
        rate = answered.rejected / answered.total if answered.total else 0.0
        over = f"{short(window_us(kind.window))}"
        summary = (
            f"{rate:.0%} of {answered.total} rows rejected in the last {over} "
            f"(alert above {kind.above:.0%}, from {kind.min_rows} rows)"
        )
        return answered.total >= kind.min_rows and rate > kind.above, rate, summary
    if isinstance(kind, NoSuccess):
        if h.pending == 0 or h.oldest_pending_us is None:
            return False, 0.0, "nothing waiting"
        since = max(h.last_success_us or 0, h.oldest_pending_us)
        quiet = max(0, now_us - since)
        limit = window_us(kind.above)
        summary = (
            f"nothing delivered for {short(quiet)} while {h.pending} rows waited "
            f"(alert above {short(limit)})"
        )
        return quiet > limit, quiet / 1e6, summary
    raise AssertionError(f"unknown alert kind {type(kind).__name__}")

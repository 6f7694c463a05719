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

from tactful.config.alerts import (
    AlertSettings,
    CircuitOpen,
    DeadLetters,
    Lag,
    MatchRate,
    NoSuccess,
    RejectRate,
    SegmentSize,
    SignatureFailures,
    ZendeskSilence,
)

ZENDESK = "zendesk"  # the subject of the rules about what Zendesk sends


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
class Segment:
    """A segment's members now and their net change (entries − exits) per window (µs)."""

    members: int = 0
    net: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Readings:
    """What the rules that are not about delivery read: per destination the match rates its
    platform reported (``(at_µs, percent)``, oldest first), per segment its size, when
    Zendesk last sent an event, and refused webhook signatures per window (µs)."""

    match_rates: Mapping[str, Sequence[tuple[int, float]]] = field(default_factory=dict)
    segments: Mapping[str, Segment] = field(default_factory=dict)
    last_zendesk_us: int | None = None
    signature_failures: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    rule: str
    destination: str
    holds: bool
    value: float
    summary: str


def window_us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def windows(
    rules: Sequence[AlertSettings],
    kind: type[RejectRate | MatchRate | SegmentSize | SignatureFailures] = RejectRate,
) -> set[int]:
    """The windows (µs) of the rules of ``kind`` the snapshot must count over."""
    out: set[int] = set()
    for rule in rules:
        k = rule.kind
        windowed = isinstance(k, RejectRate | MatchRate | SegmentSize | SignatureFailures)
        if windowed and isinstance(k, kind):
            out.add(window_us(k.window))
    return out


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


def subjects(
    rule: AlertSettings, destinations: Sequence[str], segments: Sequence[str]
) -> list[str]:
    """What ``rule`` watches: destinations (``destinations``, else all), segments
    (``segments``, else all) or Zendesk."""
    kind = rule.kind
    if isinstance(kind, SegmentSize):
        return list(kind.segments) if kind.segments is not None else sorted(segments)
    if isinstance(kind, ZendeskSilence | SignatureFailures):
        return [ZENDESK]
    return list(rule.destinations) if rule.destinations is not None else sorted(destinations)


def evaluate(
    rules: Sequence[AlertSettings],
    health: Mapping[str, Health],
    now_us: int,
    readings: Readings | None = None,
) -> list[Finding]:
    """Every rule against everything it watches (``subjects``)."""
    seen = readings or Readings()
    out: list[Finding] = []
    for rule in rules:
        for name in subjects(rule, list(health), list(seen.segments)):
            holds, value, summary = _check(rule, name, health.get(name, Health()), seen, now_us)
            out.append(Finding(rule.name, name, holds, value, f"{name}: {summary}"))
    return out


def _check(
    rule: AlertSettings, name: str, h: Health, seen: Readings, now_us: int
) -> tuple[bool, float, str]:
    kind = rule.kind
    if isinstance(kind, MatchRate | SegmentSize | ZendeskSilence | SignatureFailures):
        return _check_reading(kind, name, seen, now_us)
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


def _check_reading(
    kind: MatchRate | SegmentSize | ZendeskSilence | SignatureFailures,
    name: str,
    seen: Readings,
    now_us: int,
) -> tuple[bool, float, str]:
    if isinstance(kind, MatchRate):
        return _match_rate(kind, seen.match_rates.get(name, ()), now_us)
    if isinstance(kind, SegmentSize):
        return _segment_size(kind, seen.segments.get(name, Segment()))
    if isinstance(kind, ZendeskSilence):
        limit = window_us(kind.above)
        if seen.last_zendesk_us is None:
            return False, 0.0, "no event from Zendesk yet"
        quiet = max(0, now_us - seen.last_zendesk_us)
        summary = f"no event from Zendesk for {short(quiet)} (alert above {short(limit)})"
        return quiet > limit, quiet / 1e6, summary
    refused = seen.signature_failures.get(window_us(kind.window), 0)
    summary = (
        f"{refused} webhooks refused for a bad signature in the last "
        f"{short(window_us(kind.window))} (alert above {kind.above})"
    )
    return refused > kind.above, float(refused), summary


def _match_rate(
    kind: MatchRate, readings: Sequence[tuple[int, float]], now_us: int
) -> tuple[bool, float, str]:
    recent = [rate for at, rate in readings if at >= now_us - window_us(kind.window)]
    if not recent:
        return False, 0.0, f"no match rate reported in the last {short(window_us(kind.window))}"
    latest, best = recent[-1], max(recent)
    low = kind.below is not None and latest < kind.below
    fell = kind.drop is not None and best - latest > kind.drop
    limits = []
    if kind.below is not None:
        limits.append(f"below {kind.below:g}%")
    if kind.drop is not None:
        limits.append(f"a drop over {kind.drop:g} points in {short(window_us(kind.window))}")
    summary = f"match rate {latest:g}% (highest {best:g}%; alert on {' or '.join(limits)})"
    return low or fell, latest, summary


def _segment_size(kind: SegmentSize, seg: Segment) -> tuple[bool, float, str]:
    net = seg.net.get(window_us(kind.window), 0)
    before = seg.members - net
    change = 100.0 * abs(net) / max(before, 1)
    over = short(window_us(kind.window))
    sign = "-" if net < 0 else "+"
    summary = (
        f"{before} → {seg.members} members in the last {over} ({sign}{change:.0f}%; "
        f"alert above {kind.above:g}% from {kind.min_members} members)"
    )
    big = max(before, seg.members) >= kind.min_members
    return big and change > kind.above, change, summary

"""Prometheus metrics (names prefixed ``tactful_``), one registry per app instance."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.clock import Clock, system_now
from tactful.engine.batch import BatchStats

# Label values of ``tactful_events_rejected``: a fixed set, never text from a request (a
# reason such as "unknown ticket status 'ann@example.com'" would put an email in a label and
# let anyone create series without end).
REASONS = (
    "bad_signature",
    "malformed_body",
    "event_in_future",
    "duplicate_keys",
    "invalid_api_event",
    "bad_host",
    "slow_client",
    "unknown_event_type",
    "unknown_value",
    "missing_field",
    "bad_time",
    "bad_value",
    "unsupported",
    "identity",
    "other",
)
_REASON_PATTERNS = (
    (re.compile(r"^unknown (event type|object shape)"), "unknown_event_type"),
    (re.compile(r"^unknown "), "unknown_value"),
    (
        re.compile(r"\b(time|timestamp|created_at|updated_at)\b.*\b(out of range|offset)\b"),
        "bad_time",
    ),
    (re.compile(r"\b(missing|without|no \w+ id|not given)\b"), "missing_field"),
    (re.compile(r"^bad |not (a list|text|an object|valid json)|out of range"), "bad_value"),
    (re.compile(r"\bno canonical event\b"), "unsupported"),
    (re.compile(r"identif|email|phone|person|merge", re.I), "identity"),
)


def reason_code(reason: str) -> str:
    """One of ``REASONS`` for a rejection reason (a code already, or a human sentence)."""
    if reason in REASONS:
        return reason
    for pattern, code in _REASON_PATTERNS:
        if pattern.search(reason):
            return code
    return "other"


class _StoreCollector(Collector):
    """Segment sizes, support states and timer lag, read from the store at scrape time."""

    def __init__(
        self,
        read: Callable[[], tuple[dict[str, tuple[int, int]], dict[str, int], datetime | None]],
        wall_clock: Clock,
    ) -> None:
        self.read = read
        self.wall_clock = wall_clock

    def collect(self) -> Iterable[Metric]:
        segments, states, clock = self.read()
        size = GaugeMetricFamily("tactful_segment_members", "Segment members", labels=["segment"])
        hold = GaugeMetricFamily(
            "tactful_segment_holdout_members", "Segment members in the holdout", labels=["segment"]
        )
        for name, (members, holdout) in sorted(segments.items()):
            size.add_metric([name], members)
            hold.add_metric([name], holdout)
        state = GaugeMetricFamily(
            "tactful_support_state_persons", "Persons by support state", labels=["support_state"]
        )
        for name, count in sorted(states.items()):
            state.add_metric([name], count)
        lag = GaugeMetricFamily(
            "tactful_engine_clock_lag_seconds",
            "Wall clock minus the engine clock (how far time-based changes are behind)",
        )
        if clock is not None:
            lag.add_metric([], (self.wall_clock() - clock).total_seconds())
        yield from (size, hold, state, lag)


class Metrics:
    """``wall_clock``: the process's injected clock (the engine clock's lag is read
    against it)."""

    def __init__(self, wall_clock: Clock = system_now) -> None:
        self.wall_clock = wall_clock
        self.registry = CollectorRegistry()
        self.bad_signatures = 0
        r = self.registry
        self.received = Counter(
            "tactful_events_received", "Canonical events received", ["source"], registry=r
        )
        self.applied = Counter("tactful_events_applied", "Events applied (new)", registry=r)
        self.duplicates = Counter("tactful_events_duplicate", "Events already applied", registry=r)
        self.rejected = Counter(
            "tactful_events_rejected", "Events or requests rejected", ["reason"], registry=r
        )
        self.segment_changes = Counter(
            "tactful_segment_changes", "Segment entries and exits", ["change"], registry=r
        )
        self.timers = Counter("tactful_timers_fired", "Time-based evaluations fired", registry=r)
        self.webhooks = Counter(
            "tactful_webhook_requests", "Webhook requests by outcome", ["status"], registry=r
        )
        self.auth_failures = Counter(
            "tactful_auth_failures",
            "Failed authentications by surface (api, metrics, dashboard, sidebar)",
            ["surface"],
            registry=r,
        )
        self.auth_throttled = Counter(
            "tactful_auth_throttled",
            "Authentication attempts refused with 429 (too many failures)",
            ["surface"],
            registry=r,
        )
        self.store_writable = Gauge(
            "tactful_store_writable",
            "1 when the store took the last write (tick or readiness probe), 0 when it refused",
            registry=r,
        )
        self.store_writable.set(1)
        self.latency = Histogram(
            "tactful_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )

    def watch_store(
        self, read: Callable[[], tuple[dict[str, tuple[int, int]], dict[str, int], datetime | None]]
    ) -> None:
        self.registry.register(_StoreCollector(read, self.wall_clock))

    def record(self, stats: BatchStats) -> None:
        self.applied.inc(stats.applied)
        self.duplicates.inc(stats.duplicates)
        self.timers.inc(stats.timers_fired)
        self.segment_changes.labels("entered").inc(stats.entered)
        self.segment_changes.labels("exited").inc(stats.exited)
        for _, reason in stats.rejected:
            self.reject(reason)

    def reject(self, reason: str, count: int = 1) -> None:
        code = reason_code(reason)
        self.rejected.labels(code).inc(count)
        if code == "bad_signature":  # the signature_failures alert rule's count
            self.bad_signatures += count

    def render(self) -> bytes:
        return generate_latest(self.registry)

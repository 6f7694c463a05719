"""``/metrics`` for deliveries, per destination, read from the store at scrape time (so every
process sharing a database reports the same figures):

- ``tactful_destination_circuit_state{destination,state}``: 1 for the breaker's state;
- ``tactful_destination_consecutive_failures{destination}``;
- ``tactful_delivery_pending{destination}``: rows waiting to be sent;
- ``tactful_delivery_oldest_pending_age_seconds{destination}``: how long the oldest has
  waited (lag; 0 when none waits);
- ``tactful_delivery_dead_letters{destination}``: rows given up on (``tactful deliveries
  retry`` sends them again);
- ``tactful_delivery_last_success_timestamp_seconds{destination}``: the last row delivered;
- ``tactful_delivery_last_run_timestamp_seconds{destination}``: the last sync run started;
- ``tactful_delivery_rows_last_hour{destination,outcome}``: what the runs of the last hour
  did, by outcome (``delivered``, ``rejected``, ``retried``, ``dead``, ``skipped``);
- ``tactful_destination_audience_size{destination,bound}``: an ad audience's size as the
  platform last reported it (``lower`` and ``upper`` bound; ``tactful.delivery.platform``),
  beside ``tactful_segment_members`` (Tactful's own count);
- ``tactful_destination_match_rate_percent{destination}``: the match rate the platform last
  reported (a range, such as Google's ``61-70%``, as its middle).

A destination with nothing recorded yet reports zeros (and no timestamps), so every
configured destination has its series from the first scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.clock import now_us as system_us
from tactful.delivery import platform
from tactful.delivery.breaker import circuits
from tactful.delivery.store import DeliveryStore
from tactful.store.base import Store
from tactful.store.runs import RunCounts, RunStore

STATES = ("closed", "open", "half_open")
OUTCOMES = ("delivered", "rejected", "retried", "dead", "skipped")
HOUR_US = 3600 * 1_000_000


def _outcomes(c: RunCounts) -> dict[str, int]:
    return {
        "delivered": c.delivered,
        "rejected": c.rejected,
        "retried": c.retried,
        "dead": c.dead,
        "skipped": c.skipped,
    }


class DeliveryCollector(Collector):
    def __init__(self, store: Store, destinations: Sequence[str]) -> None:
        self.store = store
        self.destinations = destinations

    def collect(self) -> Iterable[Metric]:
        def gauge(
            name: str, doc: str, labels: Sequence[str] = ("destination",)
        ) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        state = gauge(
            "tactful_destination_circuit_state",
            "1 for the destination's circuit breaker state (open: nothing is sent)",
            ("destination", "state"),
        )
        failures = gauge(
            "tactful_destination_consecutive_failures",
            "Failed sends in a row (the circuit opens at [delivery] circuit_failures)",
        )
        pending = gauge("tactful_delivery_pending", "Rows waiting to be sent")
        lag = gauge(
            "tactful_delivery_oldest_pending_age_seconds",
            "How long the oldest waiting row has waited (0: none waits)",
        )
        dead = gauge("tactful_delivery_dead_letters", "Rows given up on (dead letters)")
        success = gauge(
            "tactful_delivery_last_success_timestamp_seconds", "When a row was last delivered"
        )
        last_run = gauge(
            "tactful_delivery_last_run_timestamp_seconds", "When the last sync run started"
        )
        rows = gauge(
            "tactful_delivery_rows_last_hour",
            "Rows handled by the sync runs of the last hour, by outcome",
            ("destination", "outcome"),
        )
        size = gauge(
            "tactful_destination_audience_size",
            "The ad audience's size as the platform last reported it (a range: lower, upper)",
            ("destination", "bound"),
        )
        match = gauge(
            "tactful_destination_match_rate_percent",
            "The match rate the platform last reported, in percent (a range as its middle)",
            ("destination",),
        )
        now_us = system_us()
        health = DeliveryStore(self.store).health()
        runs = RunStore(self.store)
        totals = runs.totals(now_us - HOUR_US)
        started = runs.last_started()
        with self.store.reader() as reader:
            found = circuits(reader, self.destinations)
        for name in sorted(self.destinations):
            circuit = found[name]
            for s in STATES:
                state.add_metric([name, s], 1.0 if circuit.state == s else 0.0)
            failures.add_metric([name], circuit.failures)
            h = health.get(name, {})
            pending.add_metric([name], int(h.get("pending", 0)))
            dead.add_metric([name], int(h.get("dead", 0)))
            oldest = h.get("oldest_pending_us")
            lag.add_metric([name], 0.0 if oldest is None else max(0, now_us - oldest) / 1e6)
            if h.get("last_success_us") is not None:
                success.add_metric([name], h["last_success_us"] / 1e6)
            if name in started:
                last_run.add_metric([name], started[name] / 1e6)
            for outcome, count in _outcomes(totals.get(name, RunCounts())).items():
                rows.add_metric([name, outcome], count)
            read = platform.latest(self.store, name)
            for bound in ("lower", "upper"):
                value = None if read is None else getattr(read[1], f"audience_{bound}")
                if value is not None:
                    size.add_metric([name, bound], value)
            rate = None if read is None else platform.match_percent(read[1].match_rate)
            if rate is not None:
                match.add_metric([name], rate)
        yield from (state, failures, pending, lag, dead, success, last_run, rows, size, match)

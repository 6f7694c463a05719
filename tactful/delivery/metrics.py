"""``/metrics`` for deliveries: each destination's circuit, read from the store at scrape
time (so every process sharing a database reports the same state)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.delivery.breaker import circuits
from tactful.store.base import Store

STATES = ("closed", "open", "half_open")


class CircuitCollector(Collector):
    def __init__(self, store: Store, destinations: Sequence[str]) -> None:
        self.store = store
        self.destinations = destinations

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "tactful_destination_circuit_state",
            "1 for the destination's circuit breaker state (open: nothing is sent)",
            labels=["destination", "state"],
        )
        failures = GaugeMetricFamily(
            "tactful_destination_consecutive_failures",
            "Failed sends in a row (the circuit opens at [delivery] circuit_failures)",
            labels=["destination"],
        )
        with self.store.reader() as reader:
            found = circuits(reader, self.destinations)
        for name, circuit in sorted(found.items()):
            for s in STATES:
                state.add_metric([name, s], 1.0 if circuit.state == s else 0.0)
            failures.add_metric([name], circuit.failures)
        yield from (state, failures)

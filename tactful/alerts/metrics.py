"""``tactful_alert_firing{alert,destination,severity}``: 1 while an ``[[alerts]]`` rule fires
on a destination (held for its ``for``), else 0; read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.alerts.service import Alerter


class AlertCollector(Collector):
    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter

    def collect(self) -> Iterable[Metric]:
        firing = GaugeMetricFamily(
            "tactful_alert_firing",
            "1 while the alert rule fires on the destination",
            labels=["alert", "destination", "severity"],
        )
        for s in self.alerter.statuses():
            firing.add_metric([s.rule, s.destination, s.severity], float(s.state == "firing"))
        yield firing

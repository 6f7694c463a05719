"""``tactful_alert_firing{alert,destination,severity}``: 1 while an ``[[alerts]]`` rule fires
on a destination (held for its ``for``), else 0; and
``tactful_zendesk_last_event_timestamp_seconds``: when the latest event from Zendesk was
received (the ``zendesk_silence`` rule's reading). Both read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.alerts.service import Alerter
from tactful.store.base import Store
from tactful.store.watch import WatchStore


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


class ZendeskCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.watch = WatchStore(store)

    def collect(self) -> Iterable[Metric]:
        last = GaugeMetricFamily(
            "tactful_zendesk_last_event_timestamp_seconds",
            "When the latest event from Zendesk (webhook, fetch, backfill, import) was received",
        )
        at_us = self.watch.last_zendesk_us()
        if at_us is not None:
            last.add_metric([], at_us / 1e6)
        yield last

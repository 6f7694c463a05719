"""Checking the ``[[alerts]]``: read the delivery health, evaluate, notify, remember.

One process checks at a time (the store's ``claim("alerts")``), so ``serve`` and ``worker``
processes sharing a database send each notice once; the alerts' state lives in the store's
``meta`` table (``tactful.alerts.policy``), so a restart neither repeats nor forgets one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tactful.alerts import policy
from tactful.alerts.notify import Notifier, NotifyError, notifier
from tactful.alerts.policy import AlertState, Notice
from tactful.alerts.rules import (
    Answered,
    Finding,
    Health,
    Readings,
    Segment,
    evaluate,
    subjects,
    windows,
)
from tactful.alerts.signatures import SignatureTally, refused
from tactful.clock import now_us
from tactful.config.alerts import (
    AlertSettings,
    MatchRate,
    SegmentSize,
    SignatureFailures,
    ZendeskSilence,
)
from tactful.delivery.breaker import circuits
from tactful.delivery.platform import match_percent
from tactful.delivery.store import DeliveryStore
from tactful.store.base import Store
from tactful.store.runs import RunStore
from tactful.store.watch import WatchStore

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0  # seconds between checks in ``serve`` and ``worker``


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    sent: list[Notice] = field(default_factory=list)
    failed: list[tuple[Notice, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AlertStatus:
    rule: str
    destination: str
    severity: str
    state: str  # firing | pending (holds, not yet for ``for``) | resolving | ok
    since_us: int | None
    summary: str


class Alerter:
    def __init__(
        self,
        settings: Any,
        store: Store,
        *,
        transport: Any = None,
        notifiers: Mapping[str, Notifier] | None = None,
        clock_us: Callable[[], int] = now_us,
        bad_signatures: Callable[[], int] | None = None,
    ) -> None:
        """``bad_signatures``: this process's running total of refused webhook signatures
        (``serve``), carried into the store before each check."""
        self.rules: list[AlertSettings] = list(settings.alerts)
        self.destinations = [d.name for d in settings.destinations]
        self.segments = [s.name for s in settings.segments]
        self.tally = None if bad_signatures is None else SignatureTally(bad_signatures)
        self.store = store
        self.clock_us = clock_us
        self.stopping = threading.Event()  # set by close(): owed notices wait for next time
        self.notifiers: dict[str, Notifier] = (
            dict(notifiers)
            if notifiers is not None
            else {c.name: notifier(c, transport) for c in settings.alert_channels}
        )

    def health(self, now: int) -> dict[str, Health]:
        """Every destination's delivery health now (``tactful.alerts.rules.Health``)."""
        rows = DeliveryStore(self.store).health()
        with self.store.reader() as reader:
            found = circuits(reader, self.destinations)
        runs = RunStore(self.store)
        answered = {
            w: {d: Answered(c.delivered, c.rejected) for d, c in runs.totals(now - w).items()}
            for w in sorted(windows(self.rules))
        }
        out: dict[str, Health] = {}
        for name in self.destinations:
            h = rows.get(name, {})
            circuit = found[name]
            out[name] = Health(
                pending=int(h.get("pending", 0)),
                dead=int(h.get("dead", 0)),
                oldest_pending_us=h.get("oldest_pending_us"),
                last_success_us=h.get("last_success_us"),
                circuit=circuit.state,
                last_error=circuit.last_error or str(h.get("last_error", "")),
                answered={w: counts.get(name, Answered()) for w, counts in answered.items()},
            )
        return out

    def readings(self, now: int) -> Readings:
        """What the rules beyond delivery read, only for the kinds configured."""
        kinds = {type(r.kind) for r in self.rules}
        watch = WatchStore(self.store)
        rates: dict[str, list[tuple[int, float]]] = {}
        if MatchRate in kinds:
            longest = max(windows(self.rules, MatchRate))
            for name, found in watch.match_rates(now - longest).items():
                numbers = [(at, match_percent(text)) for at, text in found]
                rates[name] = [(at, rate) for at, rate in numbers if rate is not None]
        segments: dict[str, Segment] = {}
        if SegmentSize in kinds:
            members = watch.segment_members()
            nets = {w: watch.segment_net(now - w) for w in windows(self.rules, SegmentSize)}
            segments = {
                name: Segment(members.get(name, 0), {w: n.get(name, 0) for w, n in nets.items()})
                for name in self.segments
            }
        last = watch.last_zendesk_us() if ZendeskSilence in kinds else None
        sigs = windows(self.rules, SignatureFailures)
        return Readings(rates, segments, last, refused(self.store, sigs, now) if sigs else {})

    def _evaluate(self, now: int) -> list[Finding]:
        return evaluate(self.rules, self.health(now), now, self.readings(now))

    def findings(self) -> list[Finding]:
        """Every rule on everything it watches, now; tells no one, changes nothing."""
        return self._evaluate(self.clock_us())

    def test(self, channel: str) -> None:
        """Send a test notice to ``channel`` (raises ``NotifyError`` when it does not take it)."""
        now = self.clock_us()
        notice = Notice(
            channel, "firing", "test", "-", "warning", now,
            "a test notice from `tactful alerts test`: this channel works", 0.0, now,
        )  # fmt: skip
        self.notifiers[channel].send(notice)

    def check(self) -> CheckReport | None:
        """Evaluate every rule and deliver the notices owed; None when another process is
        checking now."""
        if self.tally is not None:  # every process, whether it checks or not
            self.tally.flush(self.store, self.clock_us())
        with self.store.claim("alerts") as got:
            if not got:
                return None
            now = self.clock_us()
            report = CheckReport(self._evaluate(now))
            by_name = {r.name: r for r in self.rules}
            for finding in report.findings:
                self._settle(by_name[finding.rule], finding, now, report)
            return report

    def _settle(self, rule: AlertSettings, finding: Finding, now: int, report: CheckReport) -> None:
        key = policy.meta_key(rule.name, finding.destination)
        with self.store.reader() as reader:
            before = AlertState.loads(reader.get_meta(key))
        state, owed = policy.due(
            before,
            finding,
            notify=rule.notify,
            hold=rule.kind.hold,
            repeat=rule.repeat,
            severity=rule.severity,
            now_us=now,
        )
        for notice in owed:
            if self.stopping.is_set():  # shutting down: what is owed stays owed
                break
            channel = self.notifiers.get(notice.channel)
            if channel is not None:  # a channel no longer configured owes nothing
                try:
                    channel.send(notice)
                except NotifyError as exc:
                    report.failed.append((notice, str(exc)))
                    log.warning("alert %s to %s: %s", notice.key, notice.channel, exc)
                    continue
                report.sent.append(notice)
            state = policy.delivered(state, notice, now)
        state = policy.settled(state, finding)
        if state != before:
            with self.store.transaction() as tx:
                tx.set_meta(key, "" if state is None else state.dumps())

    def statuses(self) -> list[AlertStatus]:
        """Each rule on each destination it watches, from the stored state (no evaluation)."""
        now = self.clock_us()
        out: list[AlertStatus] = []
        with self.store.reader() as reader:
            for rule in self.rules:
                for name in subjects(rule, self.destinations, self.segments):
                    state = AlertState.loads(reader.get_meta(policy.meta_key(rule.name, name)))
                    if state is None:
                        out.append(AlertStatus(rule.name, name, rule.severity, "ok", None, ""))
                        continue
                    if not state.holds:
                        label = "resolving"
                    else:
                        label = "firing" if state.firing(rule.kind.hold, now) else "pending"
                    out.append(
                        AlertStatus(
                            rule.name, name, rule.severity, label, state.since_us, state.summary
                        )
                    )
        return out

    def close(self) -> None:
        self.stopping.set()
        for channel in self.notifiers.values():
            channel.close()


async def run_alerts(alerter: Alerter, every: float | None = None) -> None:
    """Check the alerts every ``every`` seconds (default ``CHECK_EVERY``; ``serve``); a
    failed check is logged and the next one tries again (what was owed stays owed)."""
    while True:
        try:
            await asyncio.to_thread(alerter.check)
        except Exception:
            log.exception("alert check failed")
        await asyncio.sleep(CHECK_EVERY if every is None else every)

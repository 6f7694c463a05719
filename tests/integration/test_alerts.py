"""Issue 21 §5: ``[[alerts]]`` over delivery health, told to a Slack incoming webhook, SMTP
email and a signed webhook (each a fake on loopback), once when they fire, again only per
``repeat``, and once when they resolve; the state survives a restart (a new ``Alerter``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from tactful.alerts.fakes import FakeSlack, FakeSMTP
from tactful.alerts.policy import Notice
from tactful.alerts.service import Alerter
from tactful.config import settings_from_toml
from tactful.delivery.breaker import Circuit, meta_key
from tactful.delivery.store import DeliveryStore
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations import standard_webhooks
from tactful.destinations.base import Outcome
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.runs import RunCounts, RunStore
from tactful.store.sqlite import open_store
from tactful.testing import RecordingDestination, at, new_store_url, ticket, user
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread

pytestmark = pytest.mark.store

SECRET = "whsec_dGFjdGZ1bC1hbGVydC10ZXN0LXNlY3JldC0zMmJ5dGU="
MINUTE = 60_000_000


@dataclass
class Channels:
    slack: FakeSlack
    smtp: FakeSMTP
    hook: FakeWebhookReceiver
    slack_url: str
    hook_url: str

    def counts(self) -> tuple[int, int, int]:
        return len(self.slack.messages), len(self.smtp.mails), len(self.hook.deliveries)


@pytest.fixture
def channels() -> Iterator[Channels]:
    slack, smtp, hook = FakeSlack(), FakeSMTP("alerts", "pw"), FakeWebhookReceiver(SECRET)
    slack.burst = 100.0
    slack_base, stop_slack = run_in_thread(slack.app)
    hook_base, stop_hook = run_in_thread(hook.app)
    try:
        yield Channels(slack, smtp, hook, slack_base + slack.hook, hook_base + hook.path)
    finally:
        stop_slack()
        stop_hook()
        smtp.close()


def config(ch: Channels, rules: str) -> str:
    return f"""
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/t"
secret = "{SECRET}"

[[alert_channels]]
name = "ops-slack"
type = "slack"
url = "{ch.slack_url}"

[[alert_channels]]
name = "ops-mail"
type = "email"
host = "{ch.smtp.host}"
port = {ch.smtp.port}
security = "none"
username = "alerts"
password = "pw"
from = "tactful@example.com"
to = ["ops@example.com", "oncall@example.com"]

[[alert_channels]]
name = "pager"
type = "webhook"
url = "{ch.hook_url}"
secret = "{SECRET}"
{rules}
"""


DEAD = """
[[alerts]]
name = "dead_letters"
when = "dead_letters"
notify = ["ops-slack", "ops-mail", "pager"]
repeat = "1h"
severity = "critical"
"""


class Clock:
    def __init__(self) -> None:
        self.us = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.us


def sent(alerter: Alerter) -> list[Notice]:
    report = alerter.check()
    assert report is not None
    return report.sent


def setup(
    tmp_path: Path, text: str, url: str | None = None
) -> tuple[Any, Engine, RecordingDestination]:
    settings = settings_from_toml(text, environ={})
    engine = Engine(rules_from_settings(settings), open_store(url or new_store_url(tmp_path)))
    return settings, engine, RecordingDestination("hook")


class Watched(NamedTuple):
    settings: Any
    engine: Engine
    dest: RecordingDestination
    clock: Clock
    alerter: Alerter


@contextmanager
def watching(tmp_path: Path, text: str, **alerter_args: Any) -> Iterator[Watched]:
    """A store and an alerter on a settable clock over ``text``'s alerts; both closed after."""
    settings, engine, dest = setup(tmp_path, text)
    clock = Clock()
    alerter = Alerter(settings, engine.store, clock_us=clock, **alerter_args)
    try:
        yield Watched(settings, engine, dest, clock, alerter)
    finally:
        alerter.close()
        engine.store.close()


def dead_letter(settings: Any, engine: Engine, dest: RecordingDestination, n: int = 1) -> None:
    for i in range(n):
        engine.apply([user(10 + i, emails=(f"p{i}@example.com",)), ticket(10 + i, at(i), "open")])
    dest.script = [Outcome("reject", "HTTP 400: bad", status=400)] * 100
    worker = DeliveryWorker(settings, engine.store, destinations={"hook": dest})
    try:
        worker.sync()
    finally:
        worker.close()
    dest.script = []


def test_an_alert_is_told_once_per_channel_repeated_and_resolved(
    tmp_path: Path, channels: Channels
) -> None:
    with watching(tmp_path, config(channels, DEAD)) as (settings, engine, dest, clock, alerter):
        report = alerter.check()
        assert report is not None and not report.sent  # healthy: nothing to say
        dead_letter(settings, engine, dest)

        report = alerter.check()
        assert report is not None
        assert sorted((n.channel, n.kind) for n in report.sent) == [
            ("ops-mail", "firing"), ("ops-slack", "firing"), ("pager", "firing"),
        ]  # fmt: skip
        assert channels.counts() == (1, 1, 1)
        assert "dead_letters" in channels.slack.messages[0]["text"]
        assert re.search(
            r"hook: \d+ dead letters \(alert above 0\)", channels.slack.messages[0]["text"]
        )
        mail = channels.smtp.mails[0]
        assert mail.login == "alerts"
        assert mail.recipients == ("ops@example.com", "oncall@example.com")
        assert mail.message["Subject"] == ("[Tactful] FIRING dead_letters (critical): hook")
        signed = channels.hook.deliveries[0]
        assert signed.payload["type"] == "alert.firing"
        assert signed.payload["data"]["destination"] == "hook"
        assert signed.payload["data"]["severity"] == "critical"
        assert channels.hook.unverified == 0

        # de-duplicated: still firing, nothing new; a restart (a new Alerter) neither
        clock.us += 10 * MINUTE
        assert sent(alerter) == []
        restarted = Alerter(settings, engine.store, clock_us=clock)
        assert sent(restarted) == []
        restarted.close()
        assert [s.state for s in alerter.statuses()] == ["firing"]

        # repeat = 1h: each channel is told again once
        clock.us += 55 * MINUTE
        repeats = sent(alerter)
        assert sorted(n.kind for n in repeats) == ["repeat"] * 3
        assert channels.counts() == (2, 2, 2)
        assert channels.hook.deliveries[1].webhook_id != signed.webhook_id
        assert "STILL FIRING" in channels.slack.messages[1]["text"]

        # the dead letter is retried and delivered: resolved, once per channel
        DeliveryStore(engine.store).retry(None)
        worker = DeliveryWorker(settings, engine.store, destinations={"hook": dest})
        worker.sync()
        worker.close()
        resolved = sent(alerter)
        assert sorted(n.kind for n in resolved) == ["resolved"] * 3
        assert channels.counts() == (3, 3, 3)
        assert channels.hook.deliveries[2].payload["type"] == "alert.resolved"
        assert "RESOLVED" in channels.smtp.mails[2].message["Subject"]
        assert sent(alerter) == []
        assert [s.state for s in alerter.statuses()] == ["ok"]


def test_a_failing_channel_is_retried_alone_and_never_repeats_the_others(
    tmp_path: Path, channels: Channels
) -> None:
    with watching(tmp_path, config(channels, DEAD)) as (settings, engine, dest, clock, alerter):
        dead_letter(settings, engine, dest)
        channels.slack.archived = True  # 410 channel_is_archived
        channels.smtp.down = True  # 421
        report = alerter.check()
        assert report is not None
        assert [n.channel for n in report.sent] == ["pager"]
        failed = {n.channel: why for n, why in report.failed}
        assert "410" in failed["ops-slack"] and "channel_is_archived" in failed["ops-slack"]
        assert "421" in failed["ops-mail"] or "SMTP" in failed["ops-mail"]

        channels.slack.archived = False
        channels.smtp.down = False
        clock.us += MINUTE
        again = alerter.check()
        assert again is not None
        assert sorted(n.channel for n in again.sent) == ["ops-mail", "ops-slack"]
        assert channels.counts() == (1, 1, 1)  # the pager was not told twice


def test_for_holds_back_an_alert_that_clears_in_time(tmp_path: Path, channels: Channels) -> None:
    rules = """
[[alerts]]
name = "circuit"
when = "circuit_open"
for = "5m"
notify = ["pager"]
"""

    def circuit(state: str) -> None:
        with engine.store.transaction() as tx:
            tx.set_meta(meta_key("hook"), Circuit(state, 5, 0, 0, "HTTP 503").dumps())

    with watching(tmp_path, config(channels, rules)) as (_, engine, _, clock, alerter):
        circuit("open")
        assert sent(alerter) == []
        assert [s.state for s in alerter.statuses()] == ["pending"]
        clock.us += 3 * MINUTE
        circuit("closed")
        assert sent(alerter) == []  # cleared: never told
        circuit("open")
        clock.us += MINUTE
        assert sent(alerter) == []  # a new 5 minutes
        clock.us += 5 * MINUTE
        [notice] = sent(alerter)
        assert notice.kind == "firing"
        assert "circuit open (last error: HTTP 503)" in notice.summary
        circuit("closed")
        [notice] = sent(alerter)
        assert notice.kind == "resolved"
        payload = channels.hook.deliveries[-1].payload
        assert payload["type"] == "alert.resolved"
        assert standard_webhooks.verify(
            SECRET,
            channels.hook.requests[-1].body,
            channels.hook.requests[-1].headers,
        )


def test_lag_reject_rate_and_no_success(tmp_path: Path, channels: Channels) -> None:
    rules = """
[[alerts]]
name = "lag"
when = "lag"
above = "15m"
notify = ["pager"]

[[alerts]]
name = "rejects"
when = "reject_rate"
above = 0.1
window = "1h"
min_rows = 10
notify = ["pager"]

[[alerts]]
name = "stuck"
when = "no_success"
above = "30m"
notify = ["pager"]
"""

    def fired() -> set[str]:
        report = alerter.check()
        assert report is not None
        return {n.rule for n in report.sent if n.kind == "firing"}

    with watching(tmp_path, config(channels, rules)) as (settings, engine, _, clock, alerter):
        engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
        DeliveryWorker(settings, engine.store).route_outbox()  # pending rows, not sent
        runs = RunStore(engine.store)
        run = runs.open("hook", clock.us)
        runs.close(run, 1000, RunCounts(events=8, rejected=1), "", None)  # 9 rows: too few
        assert fired() == set()

        clock.us += 20 * MINUTE  # the pending row has waited 20 minutes
        run = runs.open("hook", clock.us)
        runs.close(run, 1000, RunCounts(events=1, rejected=2), "", None)  # 3 of 12 rejected
        assert fired() == {"lag", "rejects"}
        clock.us += 15 * MINUTE  # 35 minutes without a success while rows waited
        assert fired() == {"stuck"}
        text = channels.hook.deliveries[-1].payload["data"]["summary"]
        assert re.match(r"hook: nothing delivered for 3\dm while \d+ rows waited", text), text


def test_the_cli_checks_tests_and_shows_alerts(
    tmp_path: Path, channels: Channels, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tactful.cli.main import main

    url = new_store_url(tmp_path)
    text = config(channels, DEAD) + f'\n[store]\nurl = "{url}"\n'
    path = tmp_path / "tactful.toml"
    path.write_text(text)
    settings, engine, dest = setup(tmp_path, text, url)
    dead_letter(settings, engine, dest)
    engine.store.close()

    def run(*args: str) -> Any:
        capsys.readouterr()
        code = main(["--config", str(path), "alerts", *args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, dry = run("check", "--dry-run")
    assert code == 0 and [h["alert"] for h in dry["holding"]] == ["dead_letters"]
    assert channels.counts() == (0, 0, 0)  # a dry run tells no one
    code, checked = run("check")
    assert code == 0 and len(checked["sent"]) == 3 and checked["failed"] == []
    code, shown = run()
    assert [(s["alert"], s["destination"], s["state"]) for s in shown] == [
        ("dead_letters", "hook", "firing")
    ]
    assert main(["--config", str(path), "alerts", "test", "ops-mail"]) == 0
    assert "test notice" in channels.smtp.mails[-1].message.get_payload()
    channels.slack.archived = True
    assert main(["--config", str(path), "alerts", "test", "ops-slack"]) == 1
    assert "channel_is_archived" in capsys.readouterr().err


def test_serve_checks_the_alerts_and_exports_them(tmp_path: Path, channels: Channels) -> None:
    from starlette.testclient import TestClient

    from tactful.web.app import create_app

    settings, engine, dest = setup(tmp_path, config(channels, DEAD))
    dead_letter(settings, engine, dest)
    app = create_app(settings, engine, tick_seconds=0, deliver_seconds=0)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            deadline = time.monotonic() + 10
            while channels.counts() != (1, 1, 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert channels.counts() == (1, 1, 1)
            text = client.get("/metrics").text
        line = 'tactful_alert_firing{alert="dead_letters",destination="hook",severity="critical"}'
        assert f"{line} 1.0" in text
        assert 'tactful_delivery_dead_letters{destination="hook"}' in text
    finally:
        engine.store.close()


def test_a_hanging_channel_is_cut_off_at_the_deadline(
    tmp_path: Path, channels: Channels, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tactful.alerts import notify
    from tests.integration.fault_servers import fault_servers

    monkeypatch.setattr(notify, "DEADLINE", 1.0)
    with fault_servers("hang") as servers:
        hanging = f"http://127.0.0.1:{servers['hang'].port}/h"
        text = config(channels, DEAD).replace(f'url = "{channels.hook_url}"', f'url = "{hanging}"')
        settings, engine, dest = setup(tmp_path, text)
        alerter = Alerter(settings, engine.store)
        try:
            dead_letter(settings, engine, dest)
            began = time.monotonic()
            report = alerter.check()
            took = time.monotonic() - began
            assert report is not None
            assert took < 4.0
            [(notice, error)] = report.failed
            assert notice.channel == "pager" and "Timeout" in error
            assert sorted(n.channel for n in report.sent) == ["ops-mail", "ops-slack"]
        finally:
            alerter.close()
            engine.store.close()


def test_email_requires_starttls_unless_told_the_relay_is_trusted() -> None:
    """``security = "starttls"`` (the default) never sends credentials in clear: a server
    that does not offer STARTTLS is a failure, not a fallback."""
    from tactful.alerts.notify import EmailNotifier, NotifyError
    from tactful.config.alerts import EmailChannel

    smtp = FakeSMTP("alerts", "pw")
    try:
        keys = {"host": smtp.host, "port": smtp.port, "username": "alerts", "password": "pw"}
        keys |= {"from": "tactful@example.com", "to": ["ops@example.com"]}
        notice = Notice("mail", "firing", "r", "hook", "warning", 0, "hook: x", 1.0)
        strict = EmailNotifier(EmailChannel.model_validate(keys))
        with pytest.raises(NotifyError, match="STARTTLS"):
            strict.send(notice)
        assert smtp.mails == []
        wrong = EmailNotifier(
            EmailChannel.model_validate({**keys, "security": "none", "password": "x"})
        )
        with pytest.raises(NotifyError, match="535"):
            wrong.send(notice)
        EmailNotifier(EmailChannel.model_validate({**keys, "security": "none"})).send(notice)
        assert len(smtp.mails) == 1 and smtp.mails[0].login == "alerts"
    finally:
        smtp.close()


BEYOND = """
[[alerts]]
name = "match"
when = "match_rate"
below = 50
drop = 15
notify = ["pager"]

[[alerts]]
name = "size"
when = "segment_size"
above = 50
min_members = 2
notify = ["pager"]

[[alerts]]
name = "quiet"
when = "zendesk_silence"
above = "6h"
notify = ["pager"]

[[alerts]]
name = "forged"
when = "signature_failures"
above = 3
window = "10m"
notify = ["pager"]
"""


def test_match_rate_segment_size_zendesk_silence_and_signature_failures(
    tmp_path: Path, channels: Channels
) -> None:
    """Each kind beyond delivery reads what the store keeps: the platform readings of the
    sync runs, the segment's membership history, when events arrived, and the refused
    signatures every process carries into the store."""
    from tactful.alerts.signatures import META_KEY
    from tactful.core.platform import PlatformReport

    refused = [0]
    hour = 60 * MINUTE

    def firing() -> set[tuple[str, str]]:
        report = alerter.check()
        assert report is not None
        return {(n.rule, n.destination) for n in report.sent if n.kind == "firing"}

    watched = watching(tmp_path, config(channels, BEYOND), bad_signatures=lambda: refused[0])
    with watched as (_, engine, _, clock, alerter):
        # three people join "suppress" at T0 (the membership history's time); an hour later
        clock.us = int(at(0).timestamp() * 1_000_000) + 10 * MINUTE
        for i in range(3):
            person = user(i + 1, emails=(f"s{i}@example.com",))
            engine.apply([person, ticket(i + 1, at(0), "open", requester_id=i + 1)])
        runs = RunStore(engine.store)
        for ago, rate in ((3 * hour, "81-90%"), (2 * hour, "71-80%"), (hour, "61-70%")):
            run = runs.open("hook", clock.us - ago)
            runs.close(run, 1000, RunCounts(), "", PlatformReport(match_rate=rate))
        assert firing() == {("match", "hook"), ("size", "suppress")}
        summaries = {d.payload["data"]["alert"]: d.payload["data"]["summary"]
                     for d in channels.hook.deliveries}  # fmt: skip
        assert summaries["match"].startswith("hook: match rate 65.5% (highest 85.5%")
        assert summaries["size"].startswith("suppress: 0 → 3 members in the last 1h 00m")

        # 7 hours after the events were received (wall clock): Zendesk has gone quiet; the
        # segment has not changed in the last hour and the readings are over a day old
        clock.us = time.time_ns() // 1000 + 7 * hour
        report = alerter.check()
        assert report is not None
        assert {(n.rule, n.kind) for n in report.sent} == {
            ("quiet", "firing"), ("match", "resolved"), ("size", "resolved"),
        }  # fmt: skip

        # 4 refused signatures (this process's count), carried into the store's counts
        refused[0] = 4
        assert firing() == {("forged", "zendesk")}
        with engine.store.reader() as reader:
            assert sum(orjson.loads(reader.get_meta(META_KEY) or "{}").values()) == 4
        assert ("forged", "zendesk", "firing") in {
            (s.rule, s.destination, s.state) for s in alerter.statuses()
        }
        clock.us += 11 * MINUTE  # out of the 10-minute window
        assert {n.rule for n in sent(alerter) if n.kind == "resolved"} == {"forged"}


def test_serve_counts_refused_signatures_across_processes_for_the_alert(
    tmp_path: Path, channels: Channels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webhooks refused for a bad signature by a running app reach the rule (through the
    store), and the alert fires from serve's own check loop."""
    from starlette.testclient import TestClient

    from tactful.alerts import service
    from tactful.web.app import create_app

    monkeypatch.setattr(service, "CHECK_EVERY", 0.1)
    rules = BEYOND.split("[[alerts]]")[-1]
    text = config(channels, "[[alerts]]" + rules) + '\n[zendesk]\nwebhook_secret = "s3cret"\n'
    settings, engine, _ = setup(tmp_path, text)
    app = create_app(settings, engine, tick_seconds=0, deliver_seconds=0)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for _ in range(4):
                answer = client.post(
                    "/webhooks/zendesk",
                    content=b'{"type": "x"}',
                    headers={
                        "X-Zendesk-Webhook-Signature": "forged",
                        "X-Zendesk-Webhook-Signature-Timestamp": "2026-12-06T10:00:00Z",
                    },
                )
                assert answer.status_code == 401
            deadline = time.monotonic() + 10
            while not channels.hook.deliveries and time.monotonic() < deadline:
                time.sleep(0.05)
        [delivery] = channels.hook.deliveries
        assert delivery.payload["type"] == "alert.firing"
        assert delivery.payload["data"]["summary"] == (
            "zendesk: 4 webhooks refused for a bad signature in the last 10m (alert above 3)"
        )
    finally:
        engine.store.close()

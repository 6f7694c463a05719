"""Issue 21 §5: the pure parts of alerting: rules over a health snapshot, the de-duplication
policy, and the typed ``[[alerts]]`` / ``[[alert_channels]]`` config."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tactful.alerts import policy
from tactful.alerts.config import AlertSettings
from tactful.alerts.policy import AlertState
from tactful.alerts.rules import Answered, Finding, Health, evaluate, short
from tactful.config import ConfigError, settings_from_toml

MIN = 60_000_000
NOW = 1_800_000_000_000_000


def rule(**keys: object) -> AlertSettings:
    return AlertSettings.model_validate({"name": "r", "notify": ["a"], **keys})


def test_each_kind_holds_exactly_past_its_threshold() -> None:
    h = Health(
        pending=3,
        dead=2,
        oldest_pending_us=NOW - 16 * MIN,
        last_success_us=NOW - 90 * MIN,
        circuit="half_open",
        last_error="HTTP 503",
        answered={60 * MIN: Answered(delivered=18, rejected=2)},
    )
    rules = [
        rule(name="dead", when="dead_letters", above=1),
        rule(name="dead_more", when="dead_letters", above=2),
        rule(name="circuit", when="circuit_open"),
        rule(name="lag", when="lag", above="15m"),
        rule(name="lag_more", when="lag", above="20m"),
        rule(name="rate", when="reject_rate", above=0.09),
        rule(name="rate_more", when="reject_rate", above=0.1),
        rule(name="rate_few", when="reject_rate", above=0.01, min_rows=21),
        rule(name="stuck", when="no_success", above="15m"),
        rule(name="stuck_more", when="no_success", above="20m"),
    ]
    found = {f.rule: f for f in evaluate(rules, {"meta": h}, NOW)}
    holding = {name for name, f in found.items() if f.holds}
    assert holding == {"dead", "circuit", "lag", "rate", "stuck"}
    assert found["circuit"].summary == "meta: circuit half-open (last error: HTTP 503)"
    assert found["rate"].summary.startswith("meta: 10% of 20 rows rejected in the last 1h 00m")
    # no_success counts from when rows started waiting, not from the last success
    assert found["stuck"].value == pytest.approx(16 * 60)


def test_no_success_needs_rows_waiting_and_rules_watch_their_destinations() -> None:
    idle = Health(last_success_us=NOW - 1000 * MIN)
    only_b = rule(name="stuck", when="no_success", above="1m", destinations=["b"])
    [finding] = evaluate([only_b], {"a": idle, "b": idle}, NOW)
    assert (finding.destination, finding.holds) == ("b", False)


def test_short_durations() -> None:
    assert [short(s * 1e6) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "5s", "2m", "3h 05m", "2d 4h",
    ]  # fmt: skip


def finding(holds: bool) -> Finding:
    return Finding("r", "meta", holds, 1.0, "meta: something")


def step(
    state: AlertState | None, holds: bool, now: int, *, hold: int = 0, repeat: int | None = None
) -> tuple[AlertState | None, list[policy.Notice]]:
    new, owed = policy.due(
        state,
        finding(holds),
        notify=["a", "b"],
        hold=timedelta(minutes=hold),
        repeat=None if repeat is None else timedelta(minutes=repeat),
        severity="warning",
        now_us=now,
    )
    for notice in owed:
        new = policy.delivered(new, notice, now)
    return policy.settled(new, finding(holds)), owed


def test_fire_once_repeat_then_resolve() -> None:
    state, owed = step(None, True, NOW, repeat=60)
    assert [(n.channel, n.kind) for n in owed] == [("a", "firing"), ("b", "firing")]
    state, owed = step(state, True, NOW + 59 * MIN, repeat=60)
    assert owed == []
    state, owed = step(state, True, NOW + 60 * MIN, repeat=60)
    assert [n.kind for n in owed] == ["repeat", "repeat"]
    assert owed[0].key != policy.due(None, finding(True), notify=["a"], hold=timedelta(0),
                                     repeat=None, severity="w", now_us=NOW)[1][0].key  # fmt: skip
    state, owed = step(state, False, NOW + 61 * MIN)
    assert [n.kind for n in owed] == ["resolved", "resolved"]
    assert state is None


def test_for_and_an_alert_that_clears_before_anyone_was_told() -> None:
    state, owed = step(None, True, NOW, hold=5)
    assert owed == [] and state is not None and not state.firing(timedelta(minutes=5), NOW)
    state, owed = step(state, False, NOW + 4 * MIN, hold=5)
    assert owed == [] and state is None  # nobody was told: nothing to resolve
    state, owed = step(None, True, NOW + 5 * MIN, hold=5)
    state, owed = step(state, True, NOW + 10 * MIN, hold=5)
    assert [n.kind for n in owed] == ["firing", "firing"]


def test_an_undelivered_notice_stays_owed_to_that_channel_only() -> None:
    state, owed = policy.due(
        None, finding(True), notify=["a", "b"], hold=timedelta(0), repeat=None,
        severity="warning", now_us=NOW,
    )  # fmt: skip
    state = policy.delivered(state, owed[0], NOW)  # "a" took it, "b" failed
    state, owed = policy.due(
        state, finding(True), notify=["a", "b"], hold=timedelta(0), repeat=None,
        severity="warning", now_us=NOW + MIN,
    )  # fmt: skip
    assert [(n.channel, n.kind) for n in owed] == [("b", "firing")]
    # it resolves before "b" heard of it: only "a" is told it resolved
    state = policy.delivered(state, owed[0], NOW + MIN)
    assert state is not None
    restored = AlertState.loads(state.dumps())
    assert restored == state


def test_config_rejects_unknown_keys_per_kind_and_unknown_names() -> None:
    text = """
[[alert_channels]]
name = "ops"
type = "slack"
url = "https://hooks.slack.com/services/T/B/x"
token = "x"

[[alert_channels]]
name = "hook"
type = "webhook"
url = "https://alerts.example.com/in"
secret = "short"

[[alerts]]
name = "lag"
when = "lag"
above = 0.5
window = "1h"
notify = ["ops", "pager"]

[[alerts]]
name = "rate"
when = "reject_rate"
above = 2
notify = ["ops"]

[[alerts]]
name = "nobody"
when = "dead_letters"
notify = []

[[alerts]]
name = "x"
when = "sometimes"
notify = ["ops"]
"""
    with pytest.raises(ConfigError) as err:
        settings_from_toml(text, environ={})
    errors = err.value.errors
    assert "alert_channels[0] (ops).token: unknown key for type = 'slack' (its keys: url)" in errors
    assert any(e.startswith("alert_channels[1] (hook).secret: ") for e in errors)
    assert "alerts[0] (lag).window: unknown key for when = 'lag' (its keys: for, above)" in errors
    assert any(e.startswith("alerts[0] (lag).above: ") for e in errors)
    assert "alerts[0] (lag).notify: unknown alert_channel 'pager' (defined: hook, ops)" in errors
    assert any(e.startswith("alerts[1] (rate).above: ") for e in errors)
    assert any(e.startswith("alerts[2] (nobody).notify: ") for e in errors)
    assert any(e.startswith("alerts[3] (x).when: ") for e in errors)


def test_channel_secrets_are_masked() -> None:
    text = """
[[alert_channels]]
name = "ops"
type = "slack"
url = "https://hooks.slack.com/services/T/B/secretpart"

[[alert_channels]]
name = "mail"
type = "email"
host = "smtp.example.com"
username = "u"
password = "hunter2"
from = "t@example.com"
to = ["ops@example.com"]
"""
    masked = settings_from_toml(text, environ={}).masked()
    assert "secretpart" not in str(masked) and "hunter2" not in str(masked)
    assert masked["alert_channels"][1]["host"] == "smtp.example.com"

"""Issue 21 §5: the pure parts of alerting: rules over a health snapshot, the de-duplication
policy, and the typed ``[[alerts]]`` / ``[[alert_channels]]`` config."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tactful.alerts import policy
from tactful.alerts.policy import AlertState
from tactful.alerts.rules import (
    Answered,
    Finding,
    Health,
    Readings,
    Segment,
    evaluate,
    short,
)
from tactful.config import ConfigError, settings_from_toml
from tactful.config.alerts import AlertSettings
from tactful.delivery.platform import match_percent

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


def test_match_rate_below_or_dropping_from_the_platform_readings() -> None:
    hour = 60 * MIN
    seen = Readings(
        match_rates={
            "google": [(NOW - 30 * hour, 90.0), (NOW - 5 * hour, 72.0), (NOW - hour, 55.5)],
            "steady": [(NOW - 2 * hour, 70.0), (NOW - hour, 69.0)],
        }
    )
    rules = [
        rule(name="low", when="match_rate", below=56),
        rule(name="low_less", when="match_rate", below=55.5),
        rule(name="drop", when="match_rate", drop=16),
        rule(name="drop_more", when="match_rate", drop=16.5),
        rule(name="drop_2d", when="match_rate", drop=30, window="2d"),
    ]
    found = {(f.rule, f.destination): f for f in evaluate(rules, {"google": Health()}, NOW, seen)}
    holding = {key for key, f in found.items() if f.holds}
    # the 90% reading is older than the 1-day window; 72 -> 55.5 is a 16.5-point drop
    assert holding == {("low", "google"), ("drop", "google"), ("drop_2d", "google")}
    assert found["low", "google"].value == 55.5
    assert found["drop", "google"].summary == (
        "google: match rate 55.5% (highest 72%; alert on a drop over 16 points in 1d 0h)"
    )
    # watched destinations without readings never hold
    [quiet] = evaluate([rule(name="q", when="match_rate", below=99)], {"meta": Health()}, NOW)
    assert not quiet.holds and quiet.summary == "meta: no match rate reported in the last 1d 0h"


def test_match_percent_reads_the_platforms_wordings() -> None:
    assert match_percent("63%") == 63
    assert match_percent("61-70%") == 65.5
    assert match_percent("less than 20%") == 10
    assert match_percent("not eligible") is None
    assert match_percent("") is None


def test_segment_size_change_in_a_window_both_ways() -> None:
    hour = 60 * MIN
    seen = Readings(
        segments={
            "vip": Segment(members=130, net={hour: 30}),  # 100 -> 130: +30%
            "churn": Segment(members=70, net={hour: -30}),  # 100 -> 70: -30%
            "tiny": Segment(members=9, net={hour: 8}),  # 1 -> 9: too small to judge
            "new": Segment(members=60, net={hour: 60}),  # 0 -> 60
        }
    )
    rules = [rule(name="size", when="segment_size", above=25)]
    found = {f.destination: f for f in evaluate(rules, {"hook": Health()}, NOW, seen)}
    assert {name for name, f in found.items() if f.holds} == {"vip", "churn", "new"}
    assert found["churn"].summary == (
        "churn: 100 → 70 members in the last 1h 00m (-30%; alert above 25% from 50 members)"
    )
    only = rule(name="s", when="segment_size", above=31, segments=["vip"])
    [vip] = evaluate([only], {}, NOW, seen)
    assert (vip.destination, vip.holds) == ("vip", False)


def test_zendesk_silence_and_signature_failures() -> None:
    rules = [
        rule(name="quiet", when="zendesk_silence", above="2h"),
        rule(name="forged", when="signature_failures", above=5, window="10m"),
    ]
    seen = Readings(last_zendesk_us=NOW - 121 * MIN, signature_failures={10 * MIN: 6})
    found = {f.rule: f for f in evaluate(rules, {"hook": Health()}, NOW, seen)}
    assert [(f.destination, f.holds) for f in found.values()] == [("zendesk", True)] * 2
    assert (
        found["quiet"].summary == "zendesk: no event from Zendesk for 2h 01m (alert above 2h 00m)"
    )
    assert found["forged"].summary == (
        "zendesk: 6 webhooks refused for a bad signature in the last 10m (alert above 5)"
    )
    calm = Readings(last_zendesk_us=NOW - 119 * MIN, signature_failures={10 * MIN: 5})
    assert not any(f.holds for f in evaluate(rules, {}, NOW, calm))
    never = evaluate(rules[:1], {}, NOW, Readings())
    assert not never[0].holds and never[0].summary == "zendesk: no event from Zendesk yet"


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


def test_config_of_the_kinds_beyond_delivery() -> None:
    text = """
[[segments]]
name = "vip"
when = "has_open_ticket"

[[alert_channels]]
name = "ops"
type = "slack"
url = "https://hooks.slack.com/services/T/B/x"

[[alerts]]
name = "rate"
when = "match_rate"
notify = ["ops"]

[[alerts]]
name = "size"
when = "segment_size"
segments = ["vip", "gone"]
destinations = ["x"]
notify = ["ops"]

[[alerts]]
name = "quiet"
when = "zendesk_silence"
above = "6h"
window = "1h"
notify = ["ops"]

[[alerts]]
name = "forged"
when = "signature_failures"
window = "2d"
notify = ["ops"]
"""
    with pytest.raises(ConfigError) as err:
        settings_from_toml(text, environ={})
    errors = err.value.errors
    assert "alerts[0] (rate).<entry>: set 'below' (percent) and/or 'drop' (points)" in errors
    assert "alerts[1] (size).segments: unknown segment 'gone' (defined: vip)" in errors
    assert any(
        e.startswith("alerts[1] (size).destinations: not for when = 'segment_size'") for e in errors
    )
    assert (
        "alerts[2] (quiet).window: unknown key for when = 'zendesk_silence' (its keys: for, above)"
        in errors
    )
    assert any(e.startswith("alerts[3] (forged).window: from 1m to 1d") for e in errors)
    fixed = (
        text.replace('segments = ["vip", "gone"]\ndestinations = ["x"]', 'segments = ["vip"]')
        .replace('window = "1h"\n', "")
        .replace('window = "2d"', 'window = "30m"')
        .replace('when = "match_rate"', 'when = "match_rate"\nbelow = 40\ndrop = 10')
    )
    rules = {r.name: r.kind for r in settings_from_toml(fixed, environ={}).alerts}
    assert rules["size"].model_dump() == {
        "hold": timedelta(0), "above": 20.0, "window": timedelta(hours=1), "min_members": 50,
        "segments": ["vip"],
    }  # fmt: skip
    assert rules["forged"].model_dump()["window"] == timedelta(minutes=30)


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

"""CLI acceptance: ``person``, ``people``, ``segments`` (+ members, preview), ``--now``
previews, ``tick`` and ``replay``."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.core.codec import format_time
from tactful.core.state import STATE_FIELD_NAMES
from tactful.testing.sample import SampleFiles

from .conftest import PERSONS, Cli, Expected, parse_z

# product.md §3, written out by hand: the contract, not the code.
SPEC_STATE_FIELDS = [
    "has_open_ticket",
    "open_ticket_count",
    "open_reasons",
    "ticket_count",
    "last_ticket_at",
    "last_activity_at",
    "last_ticket_status",
    "ticket_reason",
    "last_resolved_at",
    "priority",
    "refund_risk",
    "last_refund_at",
    "csat_score",
    "csat_at",
    "health",
    "health_at",
    "ticket_tags",
    # Added by issue #22 (several Zendesk brands on one account).
    "brand_id",
    "brand_ids",
    # Added by issue 25: from what customers write.
    "reason_source",
    "reason_confidence",
    "last_sentiment",
    "sentiment_at",
    "negative_ticket",
    # Added by the sidebar issue (#5): an agent's "suppress promos until" override.
    "promo_override_until",
    "support_state",
]
TIME_FIELDS = {
    "last_ticket_at",
    "last_activity_at",
    "last_resolved_at",
    "last_refund_at",
    "csat_at",
    "health_at",
    "sentiment_at",
}
IDENTIFIER_KINDS = {"email", "phone", "external_id", "zendesk_user_id"}
CONSENT_PURPOSES = {"ads", "email", "analytics"}

# The hand-written scenario: one customer, one ticket opened, then solved.
OPENED = "2026-03-02T10:00:00Z"
SOLVED = "2026-03-03T12:00:00Z"
COOLDOWN_END = "2026-03-04T12:00:00Z"  # suppress_promos: cooldown = "24h"
USER = {
    "user": {
        "id": 9001,
        "email": "ann.lee@example.com",
        "phone": "+14155550123",
        "external_id": "cust-42",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-03-01T00:00:00Z",
    }
}


def _ticket(status: str, updated_at: str) -> dict[str, Any]:
    return {
        "ticket": {
            "id": 777,
            "requester_id": 9001,
            "status": status,
            "priority": "normal",
            "subject": "Where is my order?",
            "tags": ["wismo"],
            "created_at": OPENED,
            "updated_at": updated_at,
            "via": {"channel": "email"},
        }
    }


def _import(cli: Cli, path: Path, *docs: Any) -> dict[str, Any]:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    summary: dict[str, Any] = cli.ok("import", str(path), "--json").json()
    return summary


@pytest.fixture
def scenario(cli: Cli, tmp_path: Path) -> Cli:
    _import(
        cli, tmp_path / "scenario.jsonl", USER, _ticket("open", OPENED), _ticket("solved", SOLVED)
    )
    return cli


def _clock(cli: Cli) -> str:
    as_of: str = cli.ok("segments", "--json").json()["as_of"]
    return as_of


def _members(person: dict[str, Any]) -> set[str]:
    return {name for name, m in person["segments"].items() if m["member"]}


def _configured_segments(cli: Cli) -> list[str]:
    names: list[str] = cli.ok("check", "--json").json()["segments"]
    return names


# --------------------------------------------------------------------------- person shape


def test_state_field_names_are_the_contract() -> None:
    assert list(STATE_FIELD_NAMES) == SPEC_STATE_FIELDS
    assert len(SPEC_STATE_FIELDS) == 18 + 1 + 2 + 5  # §3, promo_override_until, brand_id(s),
    # and issue 25's five


def _assert_person_shape(person: dict[str, Any], segment_names: list[str]) -> None:
    assert list(person) == ["person_id", "identifiers", "state", "segments", "history", "consent"]
    assert isinstance(person["person_id"], str) and person["person_id"]
    assert set(person["identifiers"]) == IDENTIFIER_KINDS
    for values in person["identifiers"].values():
        assert isinstance(values, list)
        assert all(isinstance(v, str) for v in values)
    state = person["state"]
    assert list(state) == SPEC_STATE_FIELDS
    assert set(state) == set(STATE_FIELD_NAMES)
    for name in TIME_FIELDS:
        if state[name] is not None:
            parse_z(state[name])
    assert isinstance(state["has_open_ticket"], bool)
    assert isinstance(state["refund_risk"], bool)
    assert isinstance(state["open_reasons"], list)
    assert isinstance(state["ticket_tags"], list)
    assert isinstance(state["brand_ids"], list)
    assert state["brand_id"] is None or str(state["brand_id"]) in state["brand_ids"]
    assert state["csat_score"] is None or state["csat_score"] in range(1, 6)
    assert state["priority"] in (None, "low", "normal", "high", "urgent")
    assert state["health"] in (None, "satisfied", "neutral", "unsatisfied")
    assert isinstance(state["support_state"], str) and state["support_state"]
    assert list(person["segments"]) == segment_names
    for seg in person["segments"].values():
        assert set(seg) == {"member", "since", "holdout"}
        assert isinstance(seg["member"], bool)
        assert isinstance(seg["holdout"], bool)
        if seg["member"]:
            parse_z(seg["since"])
        else:
            assert seg["since"] is None
            assert seg["holdout"] is False
    previous = None
    for h in person["history"]:
        assert (
            {"segment", "change", "at", "rule"}
            <= set(h)
            <= {
                "segment",
                "change",
                "at",
                "rule",
                "detail",
            }
        )
        assert h["segment"] in segment_names
        assert h["change"] in ("entered", "exited")
        assert isinstance(h["rule"], str) and h["rule"]
        at = parse_z(h["at"])
        assert previous is None or previous <= at, "history is oldest first"
        previous = at
    assert set(person["consent"]) == CONSENT_PURPOSES
    assert all(isinstance(v, bool) for v in person["consent"].values())


def test_every_person_has_the_documented_shape(imported: Cli) -> None:
    names = _configured_segments(imported)
    people = imported.ok("people", "--json").lines()
    assert len(people) == PERSONS
    assert len({p["person_id"] for p in people}) == PERSONS
    for person in people:
        _assert_person_shape(person, names)
        # the history agrees with the memberships it leads to
        for name, seg in person["segments"].items():
            changes = [h for h in person["history"] if h["segment"] == name]
            if seg["member"]:
                assert changes and changes[-1]["change"] == "entered"
                assert changes[-1]["at"] == seg["since"]
            else:
                assert not changes or changes[-1]["change"] == "exited"
    assert any(p["history"] for p in people)


def test_person_json_is_the_people_line(imported: Cli) -> None:
    people = imported.ok("people", "--json").lines()
    for line in people[:: max(1, len(people) // 15)]:
        person = imported.ok("person", line["person_id"], "--json").json()
        assert person == line


def test_person_lookup_by_any_key(scenario: Cli) -> None:
    names = _configured_segments(scenario)
    by_email = scenario.ok("person", "  Ann.LEE@Example.com ", "--json").json()
    _assert_person_shape(by_email, names)
    pid = by_email["person_id"]
    for key in ("ann.lee@example.com", "9001", pid, "cust-42", "+14155550123", "+1 415-555-0123"):
        assert scenario.ok("person", key, "--json").json()["person_id"] == pid, key
    human = scenario.ok("person", "9001")
    assert pid in human.text
    assert "ann.lee@example.com" in human.text

    for unknown in ("nobody@example.com", "123456", "p_doesnotexist"):
        missing = scenario("person", unknown, "--json")
        assert missing.code == 1, unknown
        assert unknown in missing.text


def test_person_lookup_in_generated_data(imported: Cli, expected: Expected) -> None:
    people = imported.ok("people", "--json").lines()
    merged = next(p for p in people if len(p["identifiers"]["zendesk_user_id"]) == 2)
    for user_id in merged["identifiers"]["zendesk_user_id"]:
        found = imported.ok("person", user_id, "--json").json()
        assert found["person_id"] == merged["person_id"]
    email = merged["identifiers"]["email"][0]
    shouted = imported.ok("person", f"  {email.upper()}  ", "--json").json()
    assert shouted["person_id"] == merged["person_id"]
    # every generated user resolves to the person it belongs to
    by_user = {z: p["person_id"] for p in people for z in p["identifiers"]["zendesk_user_id"]}
    assert set(map(int, by_user)) == {u["id"] for u in expected.users}


def test_consent_defaults_come_from_config(cli: Cli, config: Path, tmp_path: Path) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("\nads = true", "\nads = false", 1), encoding="utf-8")
    _import(cli, tmp_path / "u.jsonl", USER)
    consent = cli.ok("person", "cust-42", "--json").json()["consent"]
    assert consent == {"ads": False, "email": True, "analytics": True}


# --------------------------------------------------------------------------- people / segments


def test_people_json_is_one_object_per_line(imported: Cli) -> None:
    out = imported.ok("people", "--json").out
    lines = out.splitlines()
    assert len(lines) == PERSONS
    assert all(isinstance(json.loads(line), dict) for line in lines)
    limited = imported.ok("people", "--json", "--limit", "5").lines()
    assert len(limited) == 5
    table = imported.ok("people")
    assert json.loads(lines[0])["person_id"] in table.out


def test_segments_json_agrees_with_people(imported: Cli) -> None:
    people = imported.ok("people", "--json").lines()
    body = imported.ok("segments", "--json").json()
    parse_z(body["as_of"])
    assert [s["name"] for s in body["segments"]] == _configured_segments(imported)
    for seg in body["segments"]:
        members = [p for p in people if p["segments"][seg["name"]]["member"]]
        holdouts = [p for p in members if p["segments"][seg["name"]]["holdout"]]
        assert seg["members"] == len(members), seg["name"]
        assert seg["holdout_members"] == len(holdouts), seg["name"]
        assert seg["treated_members"] == len(members) - len(holdouts)
    assert body["support_states"] == dict(Counter(p["state"]["support_state"] for p in people))
    assert sum(body["support_states"].values()) == PERSONS
    assert any(s["members"] for s in body["segments"])
    text = imported.ok("segments").text
    for seg in body["segments"]:
        assert seg["name"] in text


def test_segment_members_lines(imported: Cli) -> None:
    people = imported.ok("people", "--json").lines()
    sizes = {}
    for name in _configured_segments(imported):
        rows = imported.ok("segments", "members", name, "--json").lines()
        assert all(list(r) == ["person_id", "since", "holdout"] for r in rows)
        want = sorted(
            (p["person_id"], p["segments"][name]["since"], p["segments"][name]["holdout"])
            for p in people
            if p["segments"][name]["member"]
        )
        got = sorted((r["person_id"], r["since"], r["holdout"]) for r in rows)
        assert got == want, name
        sizes[name] = len(rows)
    busiest = max(sizes, key=lambda n: sizes[n])
    assert sizes[busiest] > 2
    limited = imported.ok("segments", "members", busiest, "--json", "--limit", "2").lines()
    assert len(limited) == 2
    table = imported.ok("segments", "members", busiest)
    assert limited[0]["person_id"] in table.out


def test_unknown_segment_is_an_error(imported: Cli) -> None:
    for args in (("members", "nope"), ("preview", "nope")):
        result = imported("segments", *args, "--json")
        assert result.code == 1
        assert "nope" in result.text
        assert "suppress_promos" in result.text  # the known names are listed


def test_preview_with_when_counts_people_with_tickets(imported: Cli, expected: Expected) -> None:
    before = imported.ok("people", "--json").out
    people = imported.ok("people", "--json").lines()
    members = {p["person_id"] for p in people if p["segments"]["suppress_promos"]["member"]}
    with_tickets = {p["person_id"] for p in people if p["state"]["ticket_count"] >= 1}
    independent = sum(1 for v in expected.persons.values() if v["state"]["ticket_count"] >= 1)
    assert len(with_tickets) == independent

    body = imported.ok(
        "segments", "preview", "suppress_promos", "--when", "ticket_count >= 1", "--json"
    ).json()
    assert body["count"] == independent
    assert body["when"] == "ticket_count >= 1"
    assert body["would_enter"] == len(with_tickets - members)
    assert body["would_exit"] == len(members - with_tickets)
    assert len(body["sample"]) == min(10, independent)
    assert set(body["sample"]) <= with_tickets
    assert set(body["enter_sample"]) <= with_tickets - members

    configured = imported.ok("segments", "preview", "suppress_promos", "--json").json()
    open_recent = [p for p in people if p["state"]["has_open_ticket"]]
    assert configured["count"] <= len(open_recent)
    assert set(configured["sample"]) <= {p["person_id"] for p in open_recent}
    human = imported.ok("segments", "preview", "suppress_promos", "--sample", "3")
    assert "suppress_promos" in human.text
    assert imported.ok("people", "--json").out == before, "preview changes nothing"


def test_preview_with_a_bad_rule_reports_the_position(imported: Cli) -> None:
    result = imported("segments", "preview", "suppress_promos", "--when", "ticket_count >= ")
    assert result.code == 1
    assert re.search(r"line 1, column 17\b", result.text), result.text
    unknown = imported("segments", "preview", "suppress_promos", "--when", "tickets > 1")
    assert unknown.code == 1
    assert "tickets" in unknown.text
    assert re.search(r"column 1\b", unknown.text), unknown.text


# --------------------------------------------------------------------------- --now previews


@pytest.mark.parametrize("ahead", [timedelta(hours=12), timedelta(days=10), timedelta(days=75)])
def test_now_preview_is_what_tick_then_does(imported: Cli, ahead: timedelta) -> None:
    clock = parse_z(_clock(imported))
    when = format_time(clock + ahead)
    people = imported.ok("people", "--json").out
    segments = imported.ok("segments", "--json").json()
    some = imported.ok("people", "--json", "--limit", "40").lines()
    keys = [p["person_id"] for p in some if p["history"] or p["state"]["ticket_count"]][:8]

    preview_people = imported.ok("people", "--json", "--now", when).out
    preview_segments = imported.ok("segments", "--json", "--now", when).json()
    preview_person = {k: imported.ok("person", k, "--json", "--now", when).json() for k in keys}

    # previews changed nothing
    assert imported.ok("people", "--json").out == people
    assert imported.ok("segments", "--json").json() == segments
    assert _clock(imported) == format_time(clock)
    assert preview_people != people, "moving the clock this far should change something"

    tick = imported.ok("tick", "--now", when, "--json").json()
    assert tick["clock_before"] == format_time(clock)
    assert tick["clock"] == when
    assert _clock(imported) == when

    assert imported.ok("people", "--json").out == preview_people
    after = imported.ok("segments", "--json").json()
    assert after["as_of"] == preview_segments["as_of"] == when
    assert after["segments"] == preview_segments["segments"]
    for key, person in preview_person.items():
        assert imported.ok("person", key, "--json").json() == person


def test_segments_now_preview_support_states(imported: Cli) -> None:
    when = format_time(parse_z(_clock(imported)) + timedelta(days=10))
    preview = imported.ok("segments", "--json", "--now", when).json()
    imported.ok("tick", "--now", when)
    after = imported.ok("segments", "--json").json()
    people = imported.ok("people", "--json").lines()
    assert after["support_states"] == dict(Counter(p["state"]["support_state"] for p in people))
    assert preview["support_states"] == after["support_states"]


def test_segments_now_before_the_clock_agrees_with_people(imported: Cli) -> None:
    when = format_time(parse_z(_clock(imported)) - timedelta(days=30))
    people = imported.ok("people", "--json", "--now", when).lines()
    body = imported.ok("segments", "--json", "--now", when).json()
    assert body["as_of"] == when
    counts = {s["name"]: s["members"] for s in body["segments"]}
    from_people = {name: sum(1 for p in people if p["segments"][name]["member"]) for name in counts}
    assert counts == from_people


def test_now_accepts_a_date_alone(imported: Cli) -> None:
    midnight = imported.ok("people", "--json", "--now", "2026-12-31T00:00:00Z").out
    assert imported.ok("people", "--json", "--now", "2026-12-31").out == midnight
    bad = imported("people", "--json", "--now", "next tuesday")
    assert bad.code == 2  # a usage error (docs/cli.md)
    assert "next tuesday" in bad.text


# --------------------------------------------------------------------------- tick


def test_tick_fires_the_cooldown_exit_at_its_exact_moment(scenario: Cli) -> None:
    person = scenario.ok("person", "9001", "--json").json()
    assert person["state"]["has_open_ticket"] is False
    assert person["state"]["last_resolved_at"] == SOLVED
    assert person["state"]["support_state"] == "recently_resolved"
    # the rule is false since SOLVED, but the 24h cooldown keeps them in (holdout or not:
    # the assignment follows the person id, a keyed hash with this store's random salt)
    promos = person["segments"]["suppress_promos"]
    assert {k: promos[k] for k in ("member", "since")} == {"member": True, "since": OPENED}
    assert isinstance(promos["holdout"], bool)
    assert _clock(scenario) == SOLVED
    shipping = [h for h in person["history"] if h["segment"] == "shipping_help"]
    assert [(h["change"], h["at"]) for h in shipping] == [("entered", OPENED), ("exited", SOLVED)]

    almost = scenario.ok("tick", "--now", "2026-03-04T11:59:00Z", "--json").json()
    assert almost["exited"] == 0
    assert scenario.ok("person", "9001", "--json").json()["segments"]["suppress_promos"]["member"]

    # one step far past the end of the cooldown
    tick = scenario.ok("tick", "--now", "2026-03-05T00:00:00Z", "--json").json()
    assert tick["clock_before"] == "2026-03-04T11:59:00Z"
    assert tick["clock"] == "2026-03-05T00:00:00Z"
    assert tick["exited"] == 1
    assert tick["timers_fired"] >= 1
    person = scenario.ok("person", "9001", "--json").json()
    assert person["segments"]["suppress_promos"]["member"] is False
    suppress = [h for h in person["history"] if h["segment"] == "suppress_promos"]
    assert [(h["change"], h["at"]) for h in suppress] == [
        ("entered", OPENED),
        ("exited", COOLDOWN_END),
    ]
    assert person["state"]["support_state"] == "recently_resolved"

    # a week after the resolution: no longer recently resolved, re-introduced
    scenario.ok("tick", "--now", "2026-03-20T00:00:00Z")
    person = scenario.ok("person", "9001", "--json").json()
    assert person["state"]["support_state"] == "clear"
    since = parse_z(person["segments"]["reintroduce"]["since"])
    assert timedelta(days=7) <= since - parse_z(SOLVED) <= timedelta(days=7, seconds=1)


def test_tick_never_moves_the_clock_back(scenario: Cli) -> None:
    scenario.ok("tick", "--now", "2026-03-05T00:00:00Z")
    people = scenario.ok("people", "--json").out
    back = scenario.ok("tick", "--now", "2026-03-01T00:00:00Z", "--json").json()
    assert back["clock_before"] == back["clock"] == "2026-03-05T00:00:00Z"
    assert back["timers_fired"] == back["entered"] == back["exited"] == 0
    assert "note" in back
    assert _clock(scenario) == "2026-03-05T00:00:00Z"
    assert scenario.ok("people", "--json").out == people
    human = scenario.ok("tick", "--now", "2026-03-02T00:00:00Z")
    assert "never goes back" in human.text


def test_reopened_within_cooldown_never_left(cli: Cli, tmp_path: Path) -> None:
    _import(
        cli,
        tmp_path / "reopen.jsonl",
        USER,
        _ticket("open", OPENED),
        _ticket("solved", SOLVED),
        _ticket("open", "2026-03-04T08:00:00Z"),  # reopened 20h after solving
        _ticket("solved", "2026-03-06T09:00:00Z"),
    )
    cli.ok("tick", "--now", "2026-03-10T00:00:00Z")
    person = cli.ok("person", "cust-42", "--json").json()
    suppress = [
        (h["change"], h["at"]) for h in person["history"] if h["segment"] == "suppress_promos"
    ]
    assert suppress == [("entered", OPENED), ("exited", "2026-03-07T09:00:00Z")]
    assert person["state"]["last_resolved_at"] == "2026-03-06T09:00:00Z"
    assert person["state"]["ticket_count"] == 1


def test_person_now_preview_on_scenario(scenario: Cli) -> None:
    before = scenario.ok("person", "9001", "--json").json()
    preview = scenario.ok("person", "9001", "--json", "--now", "2026-03-05T00:00:00Z").json()
    assert preview["segments"]["suppress_promos"]["member"] is False
    last = preview["history"][-1]
    assert (last["segment"], last["change"], last["at"]) == (
        "suppress_promos",
        "exited",
        COOLDOWN_END,
    )
    assert scenario.ok("person", "9001", "--json").json() == before
    assert _clock(scenario) == SOLVED
    scenario.ok("tick", "--now", "2026-03-05T00:00:00Z")
    assert scenario.ok("person", "9001", "--json").json() == preview


# --------------------------------------------------------------------------- replay


def _with_reason(config: Path, reason: str) -> None:
    text = config.read_text(encoding="utf-8")
    first = text.index("\n[[reasons]]\n") + 1  # the first table, not a comment
    config.write_text(text[:first] + reason + "\n" + text[first:], encoding="utf-8")


def _latest_ticket(expected: Expected, key: tuple[str, Any]) -> dict[str, Any]:
    tickets = expected.counted_tickets(key)
    return max(tickets, key=lambda t: t["created_at"])


def test_replay_after_a_new_risk_reason(
    imported: Cli, config: Path, expected: Expected, exports: SampleFiles
) -> None:
    before = imported.ok("people", "--json").lines()
    _with_reason(config, '[[reasons]]\nname = "cancellation"\ntags = ["cancel"]\nrisk = true\n')
    assert "cancellation" in imported.ok("check", "--json").json()["reasons"]
    report = imported.ok("replay", "--json").json()
    after = imported.ok("people", "--json").lines()

    assert report["events"] == expected.records
    assert report["persons_before"] == report["persons_after"] == PERSONS
    # person ids and their identifiers do not change
    assert [(p["person_id"], p["identifiers"]) for p in after] == [
        (p["person_id"], p["identifiers"]) for p in before
    ]

    def summary(p: dict[str, Any]) -> tuple[str, set[str]]:
        return p["state"]["support_state"], _members(p)

    changed = {
        b["person_id"] for b, a in zip(before, after, strict=True) if summary(b) != summary(a)
    }
    assert changed, "a new risk reason must move people into winback_exclude"
    assert {c["person_id"] for c in report["changed"]} == changed
    for item in report["changed"]:
        assert set(item) >= {"person_id", "before", "after"}

    cancel = [t for t in expected.final.values() if "cancel" in t["tags"]]
    assert cancel
    by_key = {expected.key_of(p): p for p in after}
    latest_is_cancel = 0
    for t in cancel:
        key = expected.group_of[t["requester_id"]]
        shown = imported.ok("person", str(t["requester_id"]), "--json").json()
        assert shown == by_key[key]
        assert shown["segments"]["winback_exclude"]["member"] is True
        assert shown["state"]["last_refund_at"] is not None
        assert shown["state"]["last_refund_at"] >= t["updated_at"]
        if _latest_ticket(expected, key)["id"] == t["id"]:
            latest_is_cancel += 1
            assert shown["state"]["ticket_reason"] == "cancellation"
    assert latest_is_cancel > 0
    text = imported.ok("replay")
    assert f"{expected.records} events" in text.text


def test_replay_after_a_new_plain_reason_updates_ticket_reason(
    imported: Cli, config: Path, expected: Expected
) -> None:
    before = imported.ok("people", "--json").lines()
    _with_reason(config, '[[reasons]]\nname = "how_to"\ntags = ["how_to", "product_question"]\n')
    imported.ok("replay", "--json")
    after = imported.ok("people", "--json").lines()
    assert [p["person_id"] for p in after] == [p["person_id"] for p in before]
    how_to = 0
    for b, a in zip(before, after, strict=True):
        key = expected.key_of(a)
        tickets = expected.counted_tickets(key)
        if not tickets:
            continue
        tags = set(_latest_ticket(expected, key)["tags"])
        if tags & {"how_to", "product_question"}:
            how_to += 1
            assert a["state"]["ticket_reason"] == "how_to", a["person_id"]
        else:
            assert a["state"]["ticket_reason"] == b["state"]["ticket_reason"], a["person_id"]
    assert how_to > 0


def test_replay_reports_every_person_whose_state_changed(imported: Cli, config: Path) -> None:
    before = imported.ok("people", "--json").lines()
    _with_reason(config, '[[reasons]]\nname = "how_to"\ntags = ["how_to", "product_question"]\n')
    report = imported.ok("replay", "--json").json()
    after = imported.ok("people", "--json").lines()
    changed = {
        b["person_id"] for b, a in zip(before, after, strict=True) if b["state"] != a["state"]
    }
    assert changed
    assert {c["person_id"] for c in report["changed"]} == changed


def test_replay_without_config_change_changes_nothing(imported: Cli) -> None:
    before = imported.ok("people", "--json").out
    report = imported.ok("replay", "--json").json()
    assert report["changed"] == []
    assert imported.ok("people", "--json").out == before


def test_person_text_speaks_human_not_python(scenario: Cli) -> None:
    scenario.ok("tick", "--now", "2027-06-01T00:00:00Z")  # windows close at x + D + 1µs
    text = scenario.ok("person", "ann.lee@example.com").out
    for python in ("True", "False", "None", "['", "{'"):
        assert python not in text, python
    assert not re.search(r"T\d\d:\d\d:\d\d\.\d+Z", text), text

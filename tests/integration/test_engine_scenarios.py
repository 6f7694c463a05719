"""Scenario tables on a simulated clock: submit events, tick, assert (Dittofeed's style)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tactful.core.events import Identifier
from tactful.engine.engine import Engine
from tactful.readmodels.views import person_json, resolve_key
from tactful.testing import T0, at, harness, health, rating, status_change, ticket, user, user_merge

pytestmark = pytest.mark.store

CONFIG = """
[[reasons]]
name = "refund"
tags = ["refund"]
keywords = ["refund", "chargeback"]
risk = true

[[reasons]]
name = "shipping"
tags = ["shipping"]

[[states]]
name = "refund_risk"
when = "refund_risk"

[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"

[[segments]]
name = "recovery"
when = "csat_score <= 2 and csat_at within 30d"

[[segments]]
name = "reintroduce"
when = "not has_open_ticket and last_resolved_at older than 7d and not (last_refund_at within 90d)"

[[segments]]
name = "unhappy"
when = 'health == "unsatisfied"'
"""


def person(engine: Engine, key: str = "1") -> dict[str, Any]:
    with engine.store.reader() as reader:
        ids = resolve_key(reader, key, None)
        assert len(ids) == 1, ids
        found = person_json(reader, engine.rules, {}, ids[0])
    assert found is not None
    return found


def members(engine: Engine, key: str = "1") -> set[str]:
    return {name for name, s in person(engine, key)["segments"].items() if s["member"]}


def iso(value: datetime) -> str:
    from tactful.core.codec import format_time

    return format_time(value)


def run(steps: list[tuple[Any, ...]]) -> Engine:
    h = harness(CONFIG)
    for step in steps:
        kind = step[0]
        if kind == "apply":
            h.engine.apply(step[1])
        elif kind == "tick":
            h.engine.tick(step[1])
        elif kind == "expect":
            assert members(h.engine) == step[1], step
        elif kind == "state":
            state = person(h.engine)["state"]
            for name, value in step[1].items():
                assert state[name] == value, (name, state[name], value)
        else:  # pragma: no cover
            raise AssertionError(kind)
    return h.engine


COOLDOWN_STEPS = [
    ("apply", [ticket(1, at(0), "open")]),
    ("expect", {"suppress"}),
    ("apply", [ticket(1, at(2), "solved")]),
    ("expect", {"suppress"}),  # inside the cooldown
    ("tick", at(2 + 23)),
    ("expect", {"suppress"}),
    ("tick", at(2 + 24) - timedelta(microseconds=1)),
    ("expect", {"suppress"}),
    ("tick", at(2 + 24)),  # exactly at the end of the cooldown
    ("expect", set()),
]


def test_cooldown_enter_stay_leave_exactly_at_end() -> None:
    engine = run(COOLDOWN_STEPS)
    history = person(engine)["history"]
    assert [(h["segment"], h["change"], h["at"]) for h in history] == [
        ("suppress", "entered", iso(at(0))),
        ("suppress", "exited", iso(at(26))),
    ]


def test_reopen_inside_cooldown_never_left() -> None:
    engine = run(
        [
            ("apply", [ticket(1, at(0), "open")]),
            ("apply", [ticket(1, at(2), "solved")]),
            ("tick", at(20)),
            ("apply", [ticket(1, at(21), "open")]),  # reopened within the cooldown
            ("tick", at(2 + 24 + 1)),
            ("expect", {"suppress"}),
            ("apply", [ticket(1, at(30), "solved")]),
            ("tick", at(30 + 24)),
            ("expect", set()),
            ("apply", [ticket(2, at(100), "new")]),  # re-enter
            ("expect", {"suppress"}),
        ]
    )
    changes = [(h["change"], h["at"]) for h in person(engine)["history"]]
    assert changes == [
        ("entered", iso(at(0))),
        ("exited", iso(at(54))),
        ("entered", iso(at(100))),
    ]


def test_clock_jump_fires_every_time_change_at_its_moment() -> None:
    """One tick far ahead: exit at cooldown end, later entry into `reintroduce` at +7d."""
    engine = run(
        [
            ("apply", [ticket(1, at(0), "open"), ticket(1, at(1), "solved")]),
            ("tick", at(days=60)),
            ("expect", {"reintroduce"}),
        ]
    )
    history = [(h["segment"], h["change"], h["at"]) for h in person(engine)["history"]]
    assert history == [
        ("suppress", "entered", iso(at(0))),
        ("suppress", "exited", iso(at(25))),
        ("reintroduce", "entered", iso(at(1, days=7) + timedelta(microseconds=1))),
    ]


def test_window_closes_while_ticket_stays_open() -> None:
    run(
        [
            ("apply", [ticket(1, at(0), "pending")]),  # pending counts as open
            ("expect", {"suppress"}),
            ("tick", at(days=14)),
            ("expect", {"suppress"}),
            ("tick", at(days=15) + timedelta(hours=1)),  # 14d window + 24h cooldown passed
            ("expect", set()),
            ("state", {"has_open_ticket": True, "support_state": "open_ticket"}),
        ]
    )


def test_has_open_ticket_false_only_when_all_resolved() -> None:
    run(
        [
            ("apply", [ticket(1, at(0), "open"), ticket(2, at(1), "hold")]),
            ("state", {"open_ticket_count": 2}),
            ("apply", [ticket(1, at(2), "solved")]),
            (
                "state",
                {"has_open_ticket": True, "open_ticket_count": 1, "last_resolved_at": iso(at(2))},
            ),
            ("apply", [ticket(2, at(3), "closed")]),
            ("state", {"has_open_ticket": False, "last_resolved_at": iso(at(3))}),
        ]
    )


def test_older_version_arriving_later_never_overwrites() -> None:
    run(
        [
            ("apply", [ticket(1, at(5), "solved")]),
            ("apply", [ticket(1, at(1), "open")]),  # late, older
            (
                "state",
                {
                    "has_open_ticket": False,
                    "last_ticket_status": "solved",
                    "last_resolved_at": iso(at(5)),
                },
            ),
        ]
    )


def test_status_events_give_exact_resolution_moment_in_any_order() -> None:
    for order in (0, 1):
        events: list[Any] = [
            ticket(1, at(10), "solved"),
            status_change(1, at(4), "solved"),
            status_change(1, at(0), "open"),
        ]
        if order:
            events.reverse()
        run(
            [
                ("apply", events),
                ("state", {"last_resolved_at": iso(at(4)), "has_open_ticket": False}),
            ]
        )


def test_merge_and_delete_remove_a_ticket_everywhere() -> None:
    run(
        [
            ("apply", [ticket(1, at(0), "open", tags=("refund",)), ticket(2, at(0), "open")]),
            ("state", {"ticket_count": 2, "refund_risk": True, "support_state": "refund_risk"}),
            ("apply", [ticket(1, at(1), "closed", tags=("refund", "closed_by_merge"))]),
            (
                "state",
                {
                    "ticket_count": 1,
                    "refund_risk": False,
                    "last_resolved_at": None,
                    "last_refund_at": None,
                    "support_state": "open_ticket",
                },
            ),
            ("apply", [ticket(2, at(2), "deleted")]),
            ("state", {"ticket_count": 0, "has_open_ticket": False, "support_state": "clear"}),
        ]
    )


def test_merge_channel_counts_as_merge() -> None:
    run(
        [
            ("apply", [ticket(1, at(0), "open"), ticket(1, at(1), "closed", channel="merge")]),
            ("state", {"ticket_count": 0, "last_resolved_at": None}),
        ]
    )


def test_requester_change_moves_the_ticket() -> None:
    h = harness(CONFIG)
    h.engine.apply([ticket(1, at(0), "open", requester_id=1)])
    h.engine.apply([ticket(1, at(1), "open", requester_id=2)])
    assert person(h.engine, "1")["state"]["ticket_count"] == 0
    assert person(h.engine, "2")["state"]["ticket_count"] == 1
    assert members(h.engine, "2") == {"suppress"}
    assert members(h.engine, "1") == {"suppress"}  # cooldown running
    h.engine.tick(at(1 + 24))
    assert members(h.engine, "1") == set()


def test_csat_legacy_mapping_latest_wins_and_recovery_window() -> None:
    run(
        [
            ("apply", [rating(1, at(0), "bad")]),
            ("state", {"csat_score": 1}),
            ("expect", {"recovery"}),
            ("apply", [rating(2, at(5), 4), rating(1, at(-5), "good")]),  # older update: ignored
            ("state", {"csat_score": 4, "csat_at": iso(at(5))}),
            ("expect", set()),
        ]
    )


def test_health_event_and_refund_reason_keyword() -> None:
    run(
        [
            ("apply", [health(at(0), "unsatisfied")]),
            ("expect", {"unhappy"}),
            ("state", {"health": "unsatisfied", "health_at": iso(at(0))}),
            ("apply", [ticket(1, at(1), "open", subject="I want a REFUND now")]),
            (
                "state",
                {
                    "ticket_reason": "refund",
                    "refund_risk": True,
                    "last_refund_at": iso(at(1)),
                    "open_reasons": ["refund"],
                },
            ),
        ]
    )


def test_identity_shared_email_is_one_person_and_user_merge() -> None:
    h = harness(CONFIG)
    h.engine.apply([user(1, emails=("Ann@Example.com ",)), user(2, emails=("ann@example.com",))])
    h.engine.apply([ticket(10, at(1), requester_id=2)])
    p = person(h.engine, "ann@example.com")
    assert sorted(p["identifiers"]["zendesk_user_id"]) == ["1", "2"]
    assert p["state"]["ticket_count"] == 1
    h.engine.apply([user(3, phones=("+1 (415) 555-0100",)), ticket(11, at(2), requester_id=3)])
    h.engine.apply([user_merge(3, 1, at(3))])
    p = person(h.engine, "ann@example.com")
    assert p["state"]["ticket_count"] == 2
    assert p["identifiers"]["phone"] == ["+14155550100"]


def test_duplicates_are_harmless_and_counted() -> None:
    h = harness(CONFIG)
    events = [ticket(1, at(0), "open"), ticket(1, at(1), "solved")]
    first = h.engine.apply(events)
    second = h.engine.apply(events)
    assert (first.applied, second.duplicates, second.applied) == (2, 2, 0)


def test_clock_never_goes_back_and_late_events_apply_at_clock() -> None:
    h = harness(CONFIG)
    h.engine.tick(at(days=100))
    h.engine.tick(at(days=1))
    assert h.engine.clock() == at(days=100)
    h.engine.apply([ticket(1, at(0), "open")])  # 100 days old: window already closed
    assert members(h.engine) == set()
    assert person(h.engine)["state"]["has_open_ticket"] is True


def test_health_for_unknown_identifier_is_rejected_not_fatal() -> None:
    from tactful.core.events import HealthSet

    h = harness(CONFIG)
    bad = HealthSet("h1", T0, Identifier("email", "not-an-email"), "neutral")
    stats = h.engine.apply([bad, ticket(1, at(0))])
    assert stats.rejected and stats.rejected[0][0] == "h1"
    assert person(h.engine)["state"]["ticket_count"] == 1


def test_replay_keeps_person_ids_and_reports_changes() -> None:
    h = harness(CONFIG)
    h.engine.apply([user(1, emails=("a@example.com",)), ticket(1, at(0), "open")])
    h.engine.apply([user(2, emails=("b@example.com",)), ticket(2, at(1), "open", requester_id=2)])
    before = person(h.engine, "a@example.com")
    report = h.engine.replay()
    after = person(h.engine, "a@example.com")
    assert report.changed == []
    assert before == after


def test_failed_batch_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness(CONFIG)
    h.engine.apply([ticket(1, at(0), "open")])
    from tactful.engine import batch

    def boom(self: Any) -> None:
        raise RuntimeError("crash in the middle of a batch")

    monkeypatch.setattr(batch.Batch, "flush", boom)
    with pytest.raises(RuntimeError):
        h.engine.apply([ticket(1, at(1), "solved"), ticket(2, at(1), "open")])
    monkeypatch.undo()
    with h.engine.store.reader() as reader:
        counts = reader.counts()
    assert counts["events"] == 1 and counts["tickets"] == 1
    stats = h.engine.apply([ticket(1, at(1), "solved"), ticket(2, at(1), "open")])
    assert stats.applied == 2


def test_agent_override_suppresses_until_it_expires_by_itself() -> None:
    from tactful.core.events import OverrideSet

    config = (
        CONFIG + '\n[[segments]]\nname = "overridden"\nwhen = "promo_override_until within 0m"\n'
    )
    h = harness(config)
    until = at(days=3)
    h.engine.apply(
        [
            user(1, emails=("a@example.com",)),
            OverrideSet("o1", at(1), Identifier("zendesk_user_id", "1"), until, "agent:7"),
        ]
    )
    assert "overridden" in members(h.engine)
    assert person(h.engine)["state"]["promo_override_until"] == iso(until)
    h.engine.tick(until)
    assert "overridden" in members(h.engine)  # still suppressed at the very moment
    h.engine.tick(until + timedelta(days=1))
    history = [(x["segment"], x["change"], x["at"]) for x in person(h.engine)["history"]]
    assert ("overridden", "exited", iso(until + timedelta(microseconds=1))) in history


def test_state_counts_follow_every_change_of_the_persons() -> None:
    """The dashboard's persons per support state (SQLite: kept by triggers) agree with a count
    of the persons table after new persons, changes of state, a merge, an erasure and a
    replay."""
    from tactful.core.events import PersonErased

    h = harness(CONFIG)

    def check(expected: dict[str, int]) -> None:
        with h.engine.store.reader() as reader:
            counted = reader.state_counts()
            rows = reader.conn.execute(  # type: ignore[attr-defined]
                "SELECT support_state, COUNT(*) FROM persons GROUP BY support_state"
            ).fetchall()
        assert counted == {s: int(n) for s, n in rows} == expected

    h.engine.apply([user(u, emails=(f"u{u}@example.com",)) for u in (1, 2, 3, 4)])
    check({"clear": 4})
    h.engine.apply([ticket(u, at(1), "open", requester_id=u) for u in (1, 2, 3)])
    check({"open_ticket": 3, "clear": 1})
    h.engine.apply([ticket(1, at(2), "solved", requester_id=1)])
    check({"open_ticket": 2, "clear": 2})
    h.engine.apply([user_merge(2, 4, at(3))])  # 2's open ticket goes to 4; one person less
    check({"open_ticket": 2, "clear": 1})
    h.engine.apply([PersonErased("erase-3", at(4), Identifier("email", "u3@example.com"))])
    check({"open_ticket": 1, "clear": 1})
    h.engine.replay()
    check({"open_ticket": 1, "clear": 1})


def test_a_person_saved_twice_in_one_save_keeps_the_last_row() -> None:
    """Both stores: the later row of a person wins (PostgreSQL saves a batch of persons as one
    statement, which may change a row only once) and is counted once."""
    from tactful.core.state import PersonFacts
    from tactful.store.base import PersonRow

    h = harness(CONFIG)
    rows = [
        PersonRow("p-twice", PersonFacts(), {"support_state": state}, {}, None, 0)
        for state in ("open_ticket", "refund_risk")
    ]
    with h.engine.store.transaction() as tx:
        tx.save_persons(rows, new={"p-twice"})
    with h.engine.store.reader() as reader:
        assert reader.state_counts() == {"refund_risk": 1}
        (saved,) = reader.load_persons(["p-twice"]).values()
    assert saved.state["support_state"] == "refund_risk"

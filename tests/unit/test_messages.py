"""``tactful.engine.messages``: the net change between what a destination was told and the truth."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

from tactful.config import settings_from_toml
from tactful.engine.messages import HISTORY, LIVE, NOBODY, REPLAYED, Image, net_rows, nothing_to_say
from tactful.testing import at

RULES = {"suppress": "has_open_ticket", "held": "has_open_ticket"}
OPEN = {"support_state": "open_ticket", "has_open_ticket": True, "open_reasons": ["shipping"]}


def payloads(rows: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(r.topic, orjson.loads(r.payload)) for r in rows]


def test_the_same_image_owes_nothing() -> None:
    image = Image(OPEN, {"suppress": False, "held": True}, (True, None, None))
    assert net_rows("p", image, image, at(0), RULES, REPLAYED) == []
    assert net_rows("p", NOBODY, NOBODY, at(0), RULES, REPLAYED) == []


def test_one_changed_field_is_one_state_message_naming_it() -> None:
    told = Image(OPEN, {"suppress": False})
    now = Image({**OPEN, "open_reasons": ["delivery"]}, {"suppress": False})
    ((topic, body),) = payloads(net_rows("p", told, now, at(0), RULES, REPLAYED))
    assert topic == "support_state_changed"
    assert body["changed"] == ["open_reasons"]
    assert body["values"] == {"open_reasons": ["delivery"]}
    assert body["old_state"] == body["new_state"] == "open_ticket"
    assert body["replayed"] is True
    assert body["eligible"] == {"suppress": True, "held": False}


def test_membership_moves_are_exits_and_entries_with_their_holdout_mark() -> None:
    told = Image(OPEN, {"suppress": False})
    now = Image(OPEN, {"held": True})
    rows = payloads(net_rows("p", told, now, at(0), RULES, HISTORY))
    assert [(t, b["segment"], b["change"], b["holdout"]) for t, b in rows] == [
        ("segment_membership_changed", "held", "entered", True),
        ("segment_membership_changed", "suppress", "exited", False),
    ]
    assert all(b["history"] is True and b["rule"] == "has_open_ticket" for _, b in rows)


def test_consent_is_told_only_to_who_was_told_something() -> None:
    assert net_rows("p", NOBODY, Image(consents=(False, None, None)), at(0), RULES, HISTORY) == []
    told = Image(OPEN, {}, (True, None, None))
    now = Image(OPEN, {}, (False, None, None))
    rows = payloads(net_rows("p", told, now, at(0), RULES, LIVE))
    assert rows == [
        (
            "consent_changed",
            {
                "person_id": "p",
                "purpose": "ads",
                "granted": False,
                "occurred_at": "2026-01-01T00:00:00Z",
            },
        )
    ]


def test_a_blank_person_has_nothing_to_say() -> None:
    from tactful.engine.messages import BLANK_FIELDS

    blank = {**BLANK_FIELDS, "support_state": "clear"}
    assert nothing_to_say(blank, {})
    assert not nothing_to_say(blank, {"suppress": object()})
    assert not nothing_to_say({**blank, "ticket_count": 1}, {})
    assert not nothing_to_say({**blank, "support_state": "low_csat"}, {})
    assert net_rows("p", NOBODY, Image(blank), at(0), RULES, HISTORY) == []


def test_the_starter_config_sets_history_and_points_at_the_eligibility_flags() -> None:
    text = (resources.files("tactful") / "templates" / "tactful.toml").read_text("utf-8")
    settings = settings_from_toml(text, environ={})
    assert settings.delivery.history == "current"
    assert settings.delivery.history_horizon.days == 7
    assert "eligible_suppress_promos" in text
    assert "build suppression on the eligibility flags" in text

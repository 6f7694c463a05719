"""Table tests of the pure segment machine (``tactful.core.segments``).

Each row of a table is one step of the machine: the membership before, the rule's inputs at
``now``, and what must come out (membership after, the change, the next wake). The rules are
real rules of the rules language, so time windows end where the language says they end:
``x within 7d`` holds up to and including ``x + 7d`` and is false from ``x + 7d + 1µs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tactful.core.rules import FieldType, parse_rule
from tactful.core.segments import (
    CLEAR,
    NOT_MEMBER,
    Change,
    Membership,
    SegmentDef,
    StateDef,
    advance_person,
    choose_state,
    evaluate_person,
    in_holdout,
)

FIELDS: dict[str, FieldType] = {
    "vip": "bool",
    "refund_risk": "bool",
    "last_ticket_at": "time",
    "support_state": "str",
}
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)
PERSON = "p_0001"


def segment(
    when: str, *, cooldown: timedelta | None = None, holdout: float = 0.0, name: str = "s"
) -> SegmentDef:
    return SegmentDef(name, when, parse_rule(when, name=name, fields=FIELDS), cooldown, holdout)


def state(name: str, when: str) -> StateDef:
    return StateDef(name, parse_rule(when, name=name, fields=FIELDS))


def values(**given: Any) -> dict[str, Any]:
    return {"vip": False, "refund_risk": False, "last_ticket_at": None, **given}


def member(since: datetime, false_since: datetime | None = None) -> Membership:
    return Membership(True, since, false_since, False)


@dataclass(frozen=True)
class Step:
    """One row: ``seg`` evaluated at ``now`` for a person with ``before`` and ``given``."""

    seg: SegmentDef
    before: Membership
    given: dict[str, Any]
    now: datetime
    after: Membership
    change: tuple[str, datetime] | None  # (entered | exited, at)
    wake: datetime | None


VIP = "vip"
RECENT = "last_ticket_at within 7d"
SINCE = NOW - 3 * DAY

STEPS = {
    # enter / exit, no cooldown
    "enters when the rule starts to hold": Step(
        segment(VIP), NOT_MEMBER, values(vip=True), NOW, member(NOW), ("entered", NOW), None
    ),
    "stays out while the rule is false": Step(
        segment(VIP), NOT_MEMBER, values(), NOW, NOT_MEMBER, None, None
    ),
    "stays in while the rule holds": Step(
        segment(VIP), member(SINCE), values(vip=True), NOW, member(SINCE), None, None
    ),
    "exits at once without a cooldown": Step(
        segment(VIP), member(SINCE), values(), NOW, NOT_MEMBER, ("exited", NOW), None
    ),
    "re-enters after an exit, member since now": Step(
        segment(VIP),
        NOT_MEMBER,
        values(vip=True),
        NOW + DAY,
        member(NOW + DAY),
        ("entered", NOW + DAY),
        None,
    ),
    # time windows
    "enters inside a window; wakes when it ends": Step(
        segment(RECENT),
        NOT_MEMBER,
        values(last_ticket_at=NOW - 3 * DAY),
        NOW,
        member(NOW),
        ("entered", NOW),
        NOW + 4 * DAY + US,
    ),
    "exactly at the window's end the rule still holds": Step(
        segment(RECENT),
        NOT_MEMBER,
        values(last_ticket_at=NOW - 7 * DAY),
        NOW,
        member(NOW),
        ("entered", NOW),
        NOW + US,
    ),
    "one microsecond past the window's end it does not": Step(
        segment(RECENT),
        NOT_MEMBER,
        values(last_ticket_at=NOW - 7 * DAY - US),
        NOW,
        NOT_MEMBER,
        None,
        None,
    ),
    "a member exits when its window lapses": Step(
        segment(RECENT),
        member(SINCE),
        values(last_ticket_at=NOW - 7 * DAY - US),
        NOW,
        NOT_MEMBER,
        ("exited", NOW),
        None,
    ),
    "a member inside its window wakes at the window's end": Step(
        segment(RECENT),
        member(SINCE),
        values(last_ticket_at=NOW - DAY),
        NOW,
        member(SINCE),
        None,
        NOW + 6 * DAY + US,
    ),
    # cooldown
    "a false rule starts the cooldown; wakes when it ends": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE),
        values(),
        NOW,
        member(SINCE, NOW),
        None,
        NOW + 2 * DAY,
    ),
    "a running cooldown keeps its start": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE, NOW - DAY),
        values(),
        NOW,
        member(SINCE, NOW - DAY),
        None,
        NOW + DAY,
    ),
    "the rule holding again cancels the cooldown": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE, NOW - DAY),
        values(vip=True),
        NOW,
        member(SINCE),
        None,
        None,
    ),
    "exactly at the cooldown's end the member exits": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE, NOW - 2 * DAY),
        values(),
        NOW,
        NOT_MEMBER,
        ("exited", NOW),
        None,
    ),
    "one microsecond before the cooldown's end it is still a member": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE, NOW - 2 * DAY + US),
        values(),
        NOW,
        member(SINCE, NOW - 2 * DAY + US),
        None,
        NOW + US,
    ),
    "a late evaluation dates the exit at the cooldown's end": Step(
        segment(VIP, cooldown=2 * DAY),
        member(SINCE, NOW - 5 * DAY),
        values(),
        NOW,
        NOT_MEMBER,
        ("exited", NOW - 3 * DAY),
        None,
    ),
    "the cooldown wakes before a later window edge": Step(
        segment("vip or last_ticket_at within 7d", cooldown=DAY),
        member(SINCE),
        values(last_ticket_at=NOW - 8 * DAY),
        NOW,
        member(SINCE, NOW),
        None,
        NOW + DAY,
    ),
    # holdout
    "a holdout of 1 holds every entrant out": Step(
        segment(VIP, holdout=1.0),
        NOT_MEMBER,
        values(vip=True),
        NOW,
        Membership(True, NOW, None, True),
        ("entered", NOW),
        None,
    ),
    "a held-out member exits held out": Step(
        segment(VIP, holdout=1.0),
        Membership(True, SINCE, None, True),
        values(),
        NOW,
        NOT_MEMBER,
        ("exited", NOW),
        None,
    ),
    "a holdout of 0 holds no one out": Step(
        segment(VIP, holdout=0.0),
        NOT_MEMBER,
        values(vip=True),
        NOW,
        member(NOW),
        ("entered", NOW),
        None,
    ),
}


@pytest.mark.parametrize("row", STEPS.values(), ids=STEPS.keys())
def test_one_step_of_the_segment_machine(row: Step) -> None:
    result = evaluate_person(PERSON, dict(row.given), {"s": row.before}, [], [row.seg], row.now)
    assert result.memberships == {"s": row.after}
    assert [(c.change, c.at) for c in result.changes] == ([row.change] if row.change else [])
    for change in result.changes:
        assert (change.segment, change.rule) == ("s", row.seg.when)
        assert change.holdout == (row.after.holdout if row.after.member else row.before.holdout)
    assert result.wake == row.wake
    assert result.support_state == CLEAR


def test_the_exit_says_why() -> None:
    plain = evaluate_person(PERSON, values(), {"s": member(SINCE)}, [], [segment(VIP)], NOW)
    cooled = evaluate_person(
        PERSON,
        values(),
        {"s": member(SINCE, NOW - 2 * DAY)},
        [],
        [segment(VIP, cooldown=2 * DAY)],
        NOW,
    )
    assert [c.detail for c in plain.changes] == ["rule no longer holds"]
    assert [c.detail for c in cooled.changes] == [
        "rule false since 2026-03-08T12:00:00Z; cooldown ended"
    ]


# -- support state ---------------------------------------------------------------------------

STATES = [state("refund_risk", "refund_risk"), state("recent", RECENT), state("vip", VIP)]

CHOICES = {
    "the first state that holds wins": (values(refund_risk=True, vip=True), "refund_risk", None),
    "a later state holds when the earlier do not": (values(vip=True), "vip", None),
    "nothing holds: clear": (values(), CLEAR, None),
    "a window checked on the way gives its edge as the wake": (
        values(vip=True, last_ticket_at=NOW - 8 * DAY),
        "vip",
        None,
    ),
    "a window that holds is chosen and wakes at its end": (
        values(last_ticket_at=NOW - DAY),
        "recent",
        NOW + 6 * DAY + US,
    ),
    "a window exactly at its end still holds": (
        values(last_ticket_at=NOW - 7 * DAY),
        "recent",
        NOW + US,
    ),
}


@pytest.mark.parametrize(("given", "chosen", "wake"), CHOICES.values(), ids=CHOICES.keys())
def test_choose_state(given: dict[str, Any], chosen: str, wake: datetime | None) -> None:
    assert choose_state(STATES, given, NOW) == (chosen, wake)


def test_the_support_state_is_set_before_the_segments_read_it() -> None:
    given = values(vip=True)
    seg = segment("support_state == 'vip'")
    result = evaluate_person(PERSON, given, {}, STATES, [seg], NOW)
    assert given["support_state"] == result.support_state == "vip"
    assert [(c.segment, c.change) for c in result.changes] == [("s", "entered")]


# -- holdout ----------------------------------------------------------------------------------

HOLDOUTS = {
    "none": (0.0, 0),
    "negative": (-0.5, 0),
    "all": (1.0, 1000),
    "a tenth": (0.1, None),
    "half": (0.5, None),
}


@pytest.mark.parametrize(("fraction", "exact"), HOLDOUTS.values(), ids=HOLDOUTS.keys())
def test_holdout_share_is_the_fraction_and_deterministic(
    fraction: float, exact: int | None
) -> None:
    people = [f"p_{n:04d}" for n in range(1000)]
    held = [p for p in people if in_holdout(p, "s", fraction)]
    assert held == [p for p in people if in_holdout(p, "s", fraction)]  # same answer again
    if exact is not None:
        assert len(held) == exact
    else:
        assert abs(len(held) - 1000 * fraction) < 60


def test_holdout_depends_on_the_segment_too() -> None:
    people = [f"p_{n:04d}" for n in range(200)]
    a = {p for p in people if in_holdout(p, "a", 0.5)}
    b = {p for p in people if in_holdout(p, "b", 0.5)}
    assert a != b


def test_re_entry_keeps_the_persons_holdout_assignment() -> None:
    seg = segment(VIP, holdout=0.5)
    held = next(f"p_{n}" for n in range(100) if in_holdout(f"p_{n}", "s", 0.5))
    memberships: dict[str, Membership] = {}
    seen: list[tuple[str, bool]] = []
    for hours, vip in enumerate([True, False, True, False, True]):
        result = evaluate_person(
            held, values(vip=vip), memberships, [], [seg], NOW + timedelta(hours=hours)
        )
        memberships = result.memberships
        seen += [(c.change, c.holdout) for c in result.changes]
    assert seen == [("entered", True), ("exited", True)] * 2 + [("entered", True)]


# -- timers: advance_person ------------------------------------------------------------------


def changes_of(found: list[Change]) -> list[tuple[str, datetime]]:
    return [(c.change, c.at) for c in found]


def test_a_window_then_a_cooldown_fire_at_their_exact_moments() -> None:
    seg = segment(RECENT, cooldown=DAY)
    given = values(last_ticket_at=NOW)
    first = evaluate_person(PERSON, given, {}, [], [seg], NOW)
    assert changes_of(first.changes) == [("entered", NOW)]
    window_end = NOW + 7 * DAY + US
    assert first.wake == window_end

    last, fired = advance_person(
        PERSON, given, first.memberships, [], [seg], first.wake, NOW + 30 * DAY
    )
    assert changes_of(fired) == [("exited", window_end + DAY)]
    assert last is not None and last.memberships == {"s": NOT_MEMBER} and last.wake is None


def test_advance_stops_at_until_and_fires_nothing_before_the_wake() -> None:
    seg = segment(RECENT, cooldown=DAY)
    given = values(last_ticket_at=NOW)
    first = evaluate_person(PERSON, given, {}, [], [seg], NOW)
    window_end = NOW + 7 * DAY + US

    nothing, none = advance_person(
        PERSON, given, first.memberships, [], [seg], first.wake, window_end - US
    )
    assert (nothing, none) == (None, [])
    # exactly at the wake: the cooldown starts, the exit is a day later
    started, fired = advance_person(
        PERSON, given, first.memberships, [], [seg], first.wake, window_end
    )
    assert fired == [] and started is not None
    assert started.memberships == {"s": member(NOW, window_end)}
    assert started.wake == window_end + DAY


def test_re_entry_through_the_timer_and_a_new_event() -> None:
    """Enter, lapse out of the window, come back with a new ticket: two entries, one exit."""
    seg = segment(RECENT)
    given = values(last_ticket_at=NOW)
    first = evaluate_person(PERSON, given, {}, [], [seg], NOW)
    _, lapsed = advance_person(
        PERSON, given, first.memberships, [], [seg], first.wake, NOW + 9 * DAY
    )
    later = NOW + 9 * DAY
    again = evaluate_person(
        PERSON, values(last_ticket_at=later), {"s": NOT_MEMBER}, [], [seg], later
    )
    assert changes_of(first.changes + lapsed + again.changes) == [
        ("entered", NOW),
        ("exited", NOW + 7 * DAY + US),
        ("entered", later),
    ]
    assert again.memberships == {"s": member(later)}

"""Two membership histories put together (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from tactful.core.history import Row, union_history


def t(hour: int) -> datetime:
    return datetime(2026, 1, 1, hour, tzinfo=UTC)


def test_overlaps_are_joined_and_gaps_kept_per_segment() -> None:
    rows = [
        Row(("r", 1), "a", "s", "entered", t(0)),
        Row(("r", 2), "a", "s", "exited", t(2)),
        Row(("r", 3), "a", "s", "entered", t(6)),
        Row(("r", 4), "b", "s", "entered", t(1)),
        Row(("r", 5), "b", "s", "exited", t(3)),
        Row(("r", 6), "b", "other", "entered", t(1)),
        Row(("r", 7), "a", "other", "entered", t(2)),
        Row(("r", 8), "b", "s", "exited", t(9)),  # b was not in: nothing to keep
    ]
    # s: in from 0 to 3 (a then b), again from 6; other: from 1
    assert union_history(rows) == {("r", 1), ("r", 5), ("r", 3), ("r", 6)}


def test_a_leave_and_return_at_one_time_keep_their_order() -> None:
    rows = [
        Row(("x", 0), "a", "s", "entered", t(0)),
        Row(("y", 0), "a", "s", "exited", t(1)),
        Row(("z", 0), "a", "s", "entered", t(1)),
    ]
    assert union_history(rows) == {("x", 0), ("y", 0), ("z", 0)}

"""Segment size over time from membership history, computed by hand."""

from __future__ import annotations

import re
from pathlib import Path

from tactful.store.records import to_us
from tactful.testing import at
from tactful.web.dashboard import data
from tactful.web.dashboard.charts import (
    DAY_US,
    HOUR_US,
    Delta,
    Point,
    Window,
    axis_top,
    bar_chart,
    choose_window,
    line_chart,
    size_series,
)
from tests.dashboard.helpers import world

H = HOUR_US


def test_size_series_carries_earlier_changes_and_ignores_later_ones() -> None:
    deltas = {
        8: Delta(entered=2, holdout_entered=1),  # before the window: the starting level
        10: Delta(entered=1, exited=1),
        12: Delta(entered=3, exited=1, holdout_entered=1, holdout_exited=1),
        14: Delta(entered=5),  # after now: not shown
    }
    now = 13 * H + H // 2
    points = size_series(deltas, Window(H, 10, 13), now)
    assert points == [
        Point(10 * H, 2, 1),  # the window's start
        Point(11 * H, 2, 1),
        Point(12 * H, 2, 1),
        Point(13 * H, 4, 1),
        Point(now, 4, 1),  # the running bucket ends now
    ]


def test_size_series_of_a_segment_without_history_is_flat_zero() -> None:
    flat = [Point(3 * H, 0, 0), Point(4 * H, 0, 0), Point(5 * H, 0, 0)]
    assert size_series({}, Window(H, 3, 4), 5 * H) == flat


def test_now_on_a_bucket_boundary_makes_no_empty_last_bucket() -> None:
    points = size_series({3: Delta(entered=1)}, Window(H, 3, 5), 5 * H)
    assert points == [Point(3 * H, 0, 0), Point(4 * H, 1, 0), Point(5 * H, 1, 0)]


def test_window_is_hourly_up_to_three_days_then_daily_and_capped() -> None:
    now = 100 * DAY_US + 5 * H
    assert choose_window(now - 2 * H, now) == Window(H, now // H - 2, now // H)
    assert choose_window(None, now) == Window(H, now // H, now // H)
    assert choose_window(now - 10 * DAY_US, now) == Window(DAY_US, 90, 100)
    assert choose_window(0, now, max_buckets=30) == Window(DAY_US, 71, 100)


def test_axis_ticks_are_whole_numbers_above_the_maximum() -> None:
    assert axis_top(0) == (1, 1)
    assert axis_top(3) == (3, 1)
    assert axis_top(7) == (8, 2)
    assert axis_top(130) == (150, 50)


def test_series_from_a_real_store(tmp_path: Path) -> None:
    """Tickets open at hours 1, 2 and 3, one solved at hour 5; the engine clock is at hour 6."""
    w = world(tmp_path)
    try:
        ov = data.overview(w.app.state.ctx)
        assert ov.window.bucket_us == H
        assert ov.now_us == to_us(at(6))
        seg = {s.name: s for s in ov.segments}
        issue = seg["open_issue"]
        assert [p.members for p in issue.series] == [0, 1, 2, 3, 3, 2]
        assert [p.at_us for p in issue.series] == [to_us(at(h)) for h in (1, 2, 3, 4, 5, 6)]
        assert (issue.members, issue.entered_24h, issue.exited_24h) == (2, 3, 1)
        assert (issue.entered_1h, issue.exited_1h) == (0, 0)  # nothing after hour 5
        held = seg["held"]  # holdout 0.999999: everybody is held out
        assert [p.holdout for p in held.series] == [0, 1, 2, 3, 3, 2]
        assert held.holdout == 2
        assert ov.states == [("clear", 3)]  # no [[states]] rules: the default state
    finally:
        w.engine.store.close()


def test_line_chart_is_a_labelled_svg() -> None:
    points = [Point(at_us, m, h) for at_us, m, h in ((0, 1, 0), (H, 3, 1), (2 * H, 2, 1))]
    svg = line_chart("vip: size over time", points, H)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "vip: size over time" in svg
    assert "time (UTC, per hour)" in svg and ">people</text>" in svg
    members = re.search(r'class="series members"[^>]*points="([^"]+)"', svg)
    assert members is not None and len(members.group(1).split()) == 3
    assert "members now: 2" in svg and "holdout now: 1" in svg  # the legend
    assert "<title>Jan 01 01:00: 3 members</title>" in svg


def test_bar_chart_shows_values_and_shares() -> None:
    svg = bar_chart("People by support state", [("clear", 3), ("open_issue", 1)])
    assert "3 (75%)" in svg and "1 (25%)" in svg and ">clear</text>" in svg
    assert "nobody yet" in bar_chart("x", [])

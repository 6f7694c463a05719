"""Chart data and server-side SVG: segment size over time, bar charts.

A segment's size at a moment is the running sum of its entries minus its exits in
``membership_history``; ``size_series`` takes those changes counted per time bucket and gives
the size at the start of the window (from the changes before it), then at the end of each
bucket of the window; the running bucket ends now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

HOUR_US = 3600 * 1_000_000
DAY_US = 24 * HOUR_US


@dataclass(frozen=True, slots=True)
class Delta:
    """Changes of one segment in one bucket."""

    entered: int = 0
    exited: int = 0
    holdout_entered: int = 0
    holdout_exited: int = 0


@dataclass(frozen=True, slots=True)
class Point:
    at_us: int  # the end of the bucket (or now, for the running bucket)
    members: int  # holdout members included
    holdout: int


@dataclass(frozen=True, slots=True)
class Window:
    bucket_us: int
    first: int  # bucket numbers (at_us // bucket_us), inclusive
    last: int


def choose_window(first_us: int | None, now_us: int, *, max_buckets: int = 90) -> Window:
    """Hourly buckets when the history spans at most three days, daily ones otherwise; the
    last ``max_buckets`` buckets up to now."""
    start = now_us if first_us is None else min(first_us, now_us)
    bucket = HOUR_US if now_us - start <= 3 * DAY_US else DAY_US
    last = now_us // bucket
    first = max(start // bucket, last - max_buckets + 1)
    return Window(bucket, first, last)


def size_series(deltas: Mapping[int, Delta], window: Window, now_us: int) -> list[Point]:
    members = holdout = 0
    for bucket, d in deltas.items():
        if bucket < window.first:
            members += d.entered - d.exited
            holdout += d.holdout_entered - d.holdout_exited
    points = [Point(min(window.first * window.bucket_us, now_us), members, holdout)]
    for bucket in range(window.first, window.last + 1):
        here = deltas.get(bucket)
        if here is not None:
            members += here.entered - here.exited
            holdout += here.holdout_entered - here.holdout_exited
        point = Point(min((bucket + 1) * window.bucket_us, now_us), members, holdout)
        if point.at_us == points[-1].at_us:  # now is on a bucket boundary
            points[-1] = point
        else:
            points.append(point)
    return points


def axis_top(value: float, ticks: int = 4) -> tuple[int, int]:
    """(top, step): integer axis ticks 0, step, … top with top ≥ value."""
    raw = max(value, 1) / ticks
    exponent = 10 ** math.floor(math.log10(raw))
    step = next(m * exponent for m in (1, 2, 5, 10) if m * exponent >= raw)
    step = max(1, math.ceil(step))
    return max(step, math.ceil(value / step) * step), step


def _time_label(at_us: int, bucket_us: int) -> str:
    moment = datetime.fromtimestamp(at_us / 1_000_000, UTC)
    return moment.strftime("%b %d %H:%M" if bucket_us < DAY_US else "%b %d")


def line_chart(title: str, points: Sequence[Point], bucket_us: int) -> str:
    """Members (solid) and holdout (dashed) over time, with axes, gridlines and values."""
    w, h, left, right, top, bottom = 560, 230, 52, 20, 46, 40
    pw, ph = w - left - right, h - top - bottom
    label = escape(title)
    out = [
        f'<svg class="chart line" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="title" x="{left}" y="18">{label}</text>',
    ]
    if not points:
        out.append(f'<text x="{left}" y="{top + ph // 2}">no membership history yet</text></svg>')
        return "".join(out)
    ymax, step = axis_top(max(p.members for p in points))
    span = max(1, points[-1].at_us - points[0].at_us)

    def x(p: Point) -> float:
        if len(points) == 1:
            return left + pw / 2
        return left + pw * (p.at_us - points[0].at_us) / span

    def y(v: int) -> float:
        return top + ph - ph * v / ymax

    for tick in range(0, ymax + 1, step):
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="ytick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    out.append(
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}"/>'
        f'<line class="axis" x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}"/>'
        f'<text class="axis-label" x="14" y="{top + ph / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.0f})">people</text>'
    )
    marks = sorted(
        {0, len(points) // 2, len(points) - 1} if len(points) > 4 else {0, len(points) - 1}
    )
    for i in marks:
        anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
        out.append(
            f'<text class="xtick" x="{x(points[i]):.1f}" y="{top + ph + 16}" '
            f'text-anchor="{anchor}">{escape(_time_label(points[i].at_us, bucket_us))}</text>'
        )
    unit = "hour" if bucket_us < DAY_US else "day"
    out.append(
        f'<text class="axis-label" x="{left + pw / 2:.0f}" y="{h - 4}" text-anchor="middle">'
        f"time (UTC, per {unit})</text>"
    )
    legend: list[tuple[str, str]] = []
    for name, css, values in (
        ("members", "members", [p.members for p in points]),
        ("holdout", "holdout", [p.holdout for p in points]),
    ):
        if name == "holdout" and not any(values):
            continue
        path = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in zip(points, values, strict=True))
        out.append(f'<polyline class="series {css}" fill="none" points="{path}"/>')
        for p, v in zip(points, values, strict=True):
            when = escape(_time_label(p.at_us, bucket_us))
            out.append(
                f'<circle class="dot {css}" cx="{x(p):.1f}" cy="{y(v):.1f}" r="2.5">'
                f"<title>{when}: {v} {name}</title></circle>"
            )
        legend.append((css, f"{name} now: {values[-1]}"))
    lx = left
    for css, text in legend:  # the legend, with the latest values
        out.append(
            f'<line class="series {css}" x1="{lx}" x2="{lx + 16}" y1="30" y2="30"/>'
            f'<text class="value {css}" x="{lx + 20}" y="34">{text}</text>'
        )
        lx += 20 + 7 * len(text) + 16
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, bars: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, a label on the left and the value (and share) on the right."""
    row, left, right, top = 26, 130, 110, 30
    w = 560
    h = top + row * max(1, len(bars)) + 10
    pw = w - left - right
    label = escape(title)
    out = [
        f'<svg class="chart bar" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="title" x="4" y="18">{label}</text>',
    ]
    if not bars:
        out.append(f'<text x="{left}" y="{top + 16}">nobody yet</text></svg>')
        return "".join(out)
    total = sum(v for _, v in bars) or 1
    biggest = max(v for _, v in bars) or 1
    for i, (name, value) in enumerate(bars):
        y = top + i * row
        width = pw * value / biggest
        share = 100 * value / total
        out.append(
            f'<text class="bar-label" x="{left - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{width:.1f}" height="{row - 8}">'
            f"<title>{escape(name)}: {value}</title></rect>"
            f'<text class="value" x="{left + width + 6:.1f}" y="{y + 15}">'
            f"{value} ({share:.0f}%)</text>"
        )
    out.append("</svg>")
    return "".join(out)


def interval_chart(title: str, rows: Sequence[tuple[str, float, float, float]], unit: str) -> str:
    """Each row a value with its interval (a dot on a whisker) on one shared axis from 0:
    ``(label, value, low, high)``; ``unit`` follows the numbers ("%", "")."""
    w, left, right, top, row = 560, 90, 90, 30, 30
    h = top + row * max(1, len(rows)) + 24
    pw = w - left - right
    label = escape(title)
    out = [
        f'<svg class="chart interval" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="title" x="4" y="18">{label}</text>',
    ]
    lo = min([0.0, *(r[2] for r in rows)])
    hi = max([0.0, *(r[3] for r in rows)]) or 1.0

    def x(v: float) -> float:
        return left + pw * (v - lo) / (hi - lo)

    out.append(
        f'<line class="axis" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 4}" '
        f'y2="{top + row * len(rows)}"/>'
    )
    for i, (name, value, low, high) in enumerate(rows):
        y = top + i * row + row / 2
        out.append(
            f'<text class="bar-label" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<line class="series members" x1="{x(low):.1f}" x2="{x(high):.1f}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<circle class="dot members" cx="{x(value):.1f}" cy="{y:.1f}" r="4">'
            f"<title>{escape(name)}: {value:.1f}{unit} ({low:.1f}–{high:.1f})</title></circle>"
            f'<text class="value" x="{left + pw + 8}" y="{y + 4:.1f}">{value:.1f}{unit}</text>'
        )
    out.append(
        f'<text class="axis-label" x="{left}" y="{h - 6}">{lo:.1f}{unit}</text>'
        f'<text class="axis-label" x="{left + pw}" y="{h - 6}" text-anchor="end">'
        f"{hi:.1f}{unit}</text></svg>"
    )
    return "".join(out)

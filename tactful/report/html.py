"""Render the report as one self-contained HTML page with inline SVG charts (no scripts)."""

from __future__ import annotations

import math
from html import escape

from tactful.core import codec
from tactful.report.build import ArmStat, Churn, Metric, Report, SegmentReport

_TREATED = "#1f6feb"
_HOLDOUT = "#d97706"
_W, _LEFT, _RIGHT = 560, 150, 30


def _pct(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if kind == "proportion" else f"{value:+.2f}"


def _ci_text(m: Metric, arm: ArmStat) -> str:
    if arm.ci is None:
        return "no interval"
    return f"95% CI {_pct(arm.ci.low, m.kind)} to {_pct(arm.ci.high, m.kind)}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _axis(m: Metric) -> tuple[float, float]:
    values: list[float] = []
    for arm in (m.treated, m.holdout):
        if arm.value is not None:
            values.append(arm.value)
        if arm.ci is not None:
            values.extend((arm.ci.low, arm.ci.high))
    if m.kind == "proportion":
        return 0.0, min(1.0, _nice_max(max(values, default=0.0) * 1.1))
    bound = _nice_max(max((abs(v) for v in values), default=0.0) * 1.1)
    return -bound, bound


def metric_svg(m: Metric) -> str:
    """A dot-and-whisker chart: each arm's estimate with its 95% interval, n in the label."""
    lo, hi = _axis(m)
    height = 130
    plot_w = _W - _LEFT - _RIGHT

    def x(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-label="{escape(m.title)}">',
        f"<title>{escape(m.title)}: treated vs holdout with 95% intervals</title>",
    ]
    axis_y = 100
    parts.append(
        f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_W - _RIGHT}" y2="{axis_y}" stroke="#888"/>'
    )
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{axis_y}" x2="{x(v):.1f}" y2="{axis_y + 4}" '
            f'stroke="#888"/><text x="{x(v):.1f}" y="{axis_y + 16}" font-size="11" '
            f'text-anchor="middle" fill="#444">{_pct(v, m.kind)}</text>'
        )
    if m.kind == "mean":
        parts.append(
            f'<line x1="{x(0):.1f}" y1="15" x2="{x(0):.1f}" y2="{axis_y}" stroke="#bbb" '
            'stroke-dasharray="3,3"/>'
        )
    for row, (label, arm, colour) in enumerate(
        (("Treated", m.treated, _TREATED), ("Holdout", m.holdout, _HOLDOUT))
    ):
        y = 35 + row * 35
        parts.append(
            f'<text x="{_LEFT - 10}" y="{y + 4}" font-size="12" text-anchor="end" '
            f'fill="#222">{label} (n={arm.n})</text>'
        )
        if arm.ci is not None:
            parts.append(
                f'<line x1="{x(arm.ci.low):.1f}" y1="{y}" x2="{x(arm.ci.high):.1f}" y2="{y}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
            for end in (arm.ci.low, arm.ci.high):
                parts.append(
                    f'<line x1="{x(end):.1f}" y1="{y - 6}" x2="{x(end):.1f}" y2="{y + 6}" '
                    f'stroke="{colour}" stroke-width="2"/>'
                )
        if arm.value is not None:
            parts.append(
                f'<circle cx="{x(arm.value):.1f}" cy="{y}" r="5" fill="{colour}">'
                f"<title>{label}: {_pct(arm.value, m.kind)} (n={arm.n}, "
                f"{escape(_ci_text(m, arm))})</title></circle>"
            )
        else:
            parts.append(
                f'<text x="{_LEFT + 4}" y="{y + 4}" font-size="11" fill="#888">no data</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def churn_svg(name: str, churn: Churn) -> str:
    """Entries (up) and exits (down) per bucket as bars, and the audience size as a line."""
    width, height, left, top, bottom = 560, 200, 40, 20, 30
    series = churn.series
    plot_w, plot_h = width - left - 10, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Audience churn for {escape(name)}">',
        f"<title>{escape(name)}: entries, exits and size per {churn.bucket}</title>",
    ]
    if not series:
        parts.append("</svg>")
        return "".join(parts)
    flow = max([max(p.entries, p.exits) for p in series] + [1])
    size = max([p.size for p in series] + [1])
    mid = top + plot_h / 2
    step = plot_w / len(series)
    bar = max(1.0, step * 0.35)
    parts.append(f'<line x1="{left}" y1="{mid}" x2="{width - 10}" y2="{mid}" stroke="#888"/>')
    points = []
    for i, p in enumerate(series):
        cx = left + step * i + step / 2
        up = p.entries / flow * plot_h / 2
        down = p.exits / flow * plot_h / 2
        when = codec.format_time(p.start)[:10]
        parts.append(
            f'<rect x="{cx - bar:.1f}" y="{mid - up:.1f}" width="{bar:.1f}" height="{up:.1f}" '
            f'fill="{_TREATED}"><title>{when}: {p.entries} entries</title></rect>'
            f'<rect x="{cx:.1f}" y="{mid:.1f}" width="{bar:.1f}" height="{down:.1f}" '
            f'fill="{_HOLDOUT}"><title>{when}: {p.exits} exits</title></rect>'
        )
        points.append(f"{cx:.1f},{top + plot_h - p.size / size * plot_h:.1f}")
    parts.append(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#222" stroke-width="1.5"/>'
    )
    first = codec.format_time(series[0].start)[:10]
    last = codec.format_time(series[-1].start)[:10]
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#444">{first}</text>'
        f'<text x="{width - 10}" y="{height - 8}" font-size="11" text-anchor="end" '
        f'fill="#444">{last}</text>'
        f'<text x="{left}" y="12" font-size="11" fill="#444">max size {size}, '
        f"max {flow} entries/exits per {churn.bucket}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _metric_block(m: Metric) -> str:
    diff = _pct(m.difference, m.kind)
    if m.kind == "proportion" and m.difference is not None:
        diff = f"{m.difference * 100:+.1f} pts"
    if m.difference_ci is None:
        ci = "no interval (an arm has too few people)"
    elif m.kind == "proportion":
        ci = f"95% CI {m.difference_ci.low * 100:+.1f} to {m.difference_ci.high * 100:+.1f} pts"
    else:
        ci = f"95% CI {m.difference_ci.low:+.2f} to {m.difference_ci.high:+.2f}"
    rows = "".join(
        f"<tr><td>{label}</td><td>{arm.n}</td>"
        f"<td>{'' if arm.successes is None else arm.successes}</td>"
        f"<td>{_pct(arm.value, m.kind)}</td><td>{escape(_ci_text(m, arm))}</td></tr>"
        for label, arm in (("treated", m.treated), ("holdout", m.holdout))
    )
    return (
        f'<section class="metric" id="metric-{escape(m.name)}"><h3>{escape(m.title)}</h3>'
        f"{metric_svg(m)}"
        f"<p>Treated − holdout: <b>{diff}</b>, {ci}.</p>"
        f"<table><tr><th>arm</th><th>n</th><th>events</th><th>estimate</th><th>interval</th>"
        f"</tr>{rows}</table><p class='method'>{escape(m.method)}</p></section>"
    )


def _segment_block(s: SegmentReport) -> str:
    c = s.churn

    def num(v: float | None, digits: int = 2) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    share = "–" if c.bounced_share is None else f"{c.bounced_share * 100:.1f}%"
    return (
        f'<section class="segment"><h2>{escape(s.name)}</h2>'
        f"<p>{escape(s.description)}</p>"
        f"<p>Holdout fraction {s.holdout_fraction:g}. Entered in the period: "
        f"{s.entered_treated} treated, {s.entered_holdout} holdout; measured (whole window "
        f"elapsed): {s.measured_treated} treated, {s.measured_holdout} holdout.</p>"
        + "".join(_metric_block(m) for m in s.metrics)
        + f"<h3>Audience churn</h3>{churn_svg(s.name, c)}"
        f"<table><tr><th>people entered</th><th>entries</th><th>exits</th>"
        f"<th>entries / person</th><th>exits / person</th><th>entered more than once</th>"
        f"<th>median stay (days)</th></tr><tr><td>{c.people}</td><td>{c.entries}</td>"
        f"<td>{c.exits}</td><td>{num(c.entries_per_person)}</td>"
        f"<td>{num(c.exits_per_person)}</td><td>{c.bounced} ({share})</td>"
        f"<td>{num(c.median_stay_days)} over {c.completed_stays} completed stays "
        f"({c.open_stays} still open)</td></tr></table></section>"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;"
    "font-size:13px;text-align:left}.method{color:#666;font-size:12px}"
    ".segment{border-top:2px solid #ccc;margin-top:2em}"
)


def render_html(report: Report) -> str:
    """The whole report as one HTML document (inline CSS and SVG, nothing fetched)."""
    since = "the start of the history" if report.since is None else codec.format_time(report.since)
    body = "".join(_segment_block(s) for s in report.segments) or (
        "<p>No segment has a holdout: set <code>holdout</code> on a segment to measure it.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Tactful measurement report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Tactful measurement report</h1>"
        f"<p>People who entered each segment from {escape(since)} to "
        f"{codec.format_time(report.generated_at)}, measured over "
        f"{report.window_days:g} days after their first entry in the period. "
        "Treated members were suppressed/targeted as configured; holdout members were kept "
        "out of every destination. Intervals are 95%.</p>"
        f"{body}</body></html>\n"
    )

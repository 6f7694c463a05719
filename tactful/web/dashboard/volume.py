"""A destination's volume and errors over time, as server-rendered SVG (no script: the
dashboard's CSP allows none): per hour of the last ``HOURS``, the rows its sync runs
delivered (a bar) and the rows that failed (rejected, retried or aged out: a bar stacked on
top, in the error colour), with a value axis and the hours."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from tactful.store.runs import Volume
from tactful.web.dashboard.charts import HOUR_US, axis_top

HOURS = 48
BUCKET_US = HOUR_US
OK, BAD, GRID, TEXT = "#2f7d4f", "#b3261e", "#d9d9d9", "#444444"


def window(now_us: int) -> tuple[int, int]:
    """(first bucket, last bucket) of the chart: the last ``HOURS`` hours up to now."""
    last = now_us // HOUR_US
    return last - HOURS + 1, last


def volume_chart(title: str, volumes: Sequence[Volume], now_us: int) -> str:
    first, last = window(now_us)
    by_bucket = {v.bucket: v for v in volumes if first <= v.bucket <= last}
    w, h, left, right, top, bottom = 720, 220, 50, 10, 30, 40
    pw, ph = w - left - right, h - top - bottom
    peak = max((v.delivered + v.failed for v in by_bucket.values()), default=0)
    axis, step = axis_top(peak)
    slot = pw / HOURS
    label = escape(title)
    out = [
        f'<svg class="chart volume" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="4" y="18" fill="{TEXT}">{label}</text>',
    ]
    for tick in range(0, axis + 1, step):
        y = top + ph - ph * tick / axis
        out.append(
            f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}" '
            f'font-size="11">{tick}</text>'
        )
    for i, bucket in enumerate(range(first, last + 1)):
        x = left + i * slot
        v = by_bucket.get(bucket)
        if v is not None:
            ok_h = ph * v.delivered / axis
            bad_h = ph * v.failed / axis
            hour = _hour(bucket)
            tip = f"{hour}: {v.delivered} delivered, {v.failed} failed"
            out.append(
                f'<g class="bucket" data-bucket="{bucket}"><title>{escape(tip)}</title>'
                f'<rect class="delivered" x="{x + 1:.1f}" y="{top + ph - ok_h:.1f}" '
                f'width="{slot - 2:.1f}" height="{ok_h:.1f}" fill="{OK}"/>'
                f'<rect class="failed" x="{x + 1:.1f}" y="{top + ph - ok_h - bad_h:.1f}" '
                f'width="{slot - 2:.1f}" height="{bad_h:.1f}" fill="{BAD}"/></g>'
            )
        if i % 12 == 0:
            out.append(
                f'<text x="{x:.1f}" y="{h - bottom + 16}" fill="{TEXT}" font-size="11">'
                f"{_hour(bucket)}</text>"
            )
    out.append(
        f'<text x="{left}" y="{h - 6}" fill="{OK}" font-size="11">■ delivered</text>'
        f'<text x="{left + 90}" y="{h - 6}" fill="{BAD}" font-size="11">'
        "■ failed (rejected, retried, aged out)</text></svg>"
    )
    return "".join(out)


def _hour(bucket: int) -> str:
    return datetime.fromtimestamp(bucket * HOUR_US / 1e6, UTC).strftime("%b %d %H:00")

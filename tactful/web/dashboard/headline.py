"""The report page's lead: one answer per segment, in words, with its chart.

"Suppress promos cut the unsubscribe rate by 1.8 points (95% CI 0.4–3.2), n = 4,210 vs
221." The metric is the first of ``ORDER`` whose interval excludes zero (a clear
difference), else the first that can be measured; an interval that includes zero is said as
"no clear difference yet"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tactful.report loads on the report page's first request
    from tactful.report.build import Metric, Report, SegmentReport

ORDER = ("unsubscribe", "complaint", "repeat_purchase", "recontact", "csat_change")
NOUNS = {
    "unsubscribe": "the unsubscribe rate",
    "complaint": "the spam complaint rate",
    "repeat_purchase": "repeat purchases after resolution",
    "recontact": "the re-contact rate",
    "csat_change": "the CSAT change",
}


@dataclass(frozen=True)
class Headline:
    segment: str
    text: str
    metric: Metric | None
    clear: bool  # the interval excludes zero


def _label(seg: SegmentReport) -> str:
    return seg.description.strip() or seg.name.replace("_", " ").capitalize()


def _measured(m: Metric) -> bool:
    return m.difference is not None and m.difference_ci is not None


def _clear(m: Metric) -> bool:
    ci = m.difference_ci
    return ci is not None and (ci.low > 0 or ci.high < 0)


def _amount(value: float, m: Metric) -> float:
    return value * 100 if m.kind == "proportion" else value


def headline(seg: SegmentReport, confidence: float) -> Headline:
    label = _label(seg)
    by_name = {m.name: m for m in seg.metrics}
    measured = [by_name[n] for n in ORDER if n in by_name and _measured(by_name[n])]
    if not measured:
        return Headline(
            seg.name,
            f"{label}: nothing to compare yet ({seg.measured_treated:,} treated and "
            f"{seg.measured_holdout:,} holdout members have been measured).",
            None,
            False,
        )
    m = next((x for x in measured if _clear(x)), measured[0])
    assert m.difference is not None and m.difference_ci is not None
    unit = "points" if m.kind == "proportion" else ""
    conf = f"{confidence * 100:g}% CI"
    n = f"n = {m.treated.n:,} vs {m.holdout.n:,}"
    low, high = _amount(m.difference_ci.low, m), _amount(m.difference_ci.high, m)
    noun = NOUNS.get(m.name, m.title.lower())
    if not _clear(m):
        text = (
            f"{label}: no clear difference in {noun} yet "
            f"({conf} {low:.1f} to {high:.1f}{' ' + unit if unit else ''}), {n}."
        )
        return Headline(seg.name, text, m, False)
    diff = _amount(m.difference, m)
    verb = "cut" if diff < 0 else "raised"
    lo, hi = sorted((abs(low), abs(high)))
    by = f"{abs(diff):.1f}{' ' + unit if unit else ''}"
    text = f"{label} {verb} {noun} by {by} ({conf} {lo:.1f}–{hi:.1f}), {n}."
    return Headline(seg.name, text, m, True)


def headlines(report: Report) -> list[Headline]:
    return [headline(seg, report.confidence) for seg in report.segments]

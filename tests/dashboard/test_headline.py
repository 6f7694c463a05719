"""The report page's lead: one answer per segment in words, with its chart."""

from __future__ import annotations

from tactful.report.build import ArmStat, Churn, Metric, SegmentReport
from tactful.report.stats import Interval
from tactful.web.dashboard.charts import interval_chart
from tactful.web.dashboard.headline import headline

CHURN = Churn(0, 0, 0, None, None, 0, None, None, 0, 0, "day")


def metric(name: str, diff: float, low: float, high: float, kind: str = "proportion") -> Metric:
    treated = ArmStat(4210, 40, 0.021, Interval(0.017, 0.025))
    holdout = ArmStat(221, 9, 0.039, Interval(0.02, 0.07))
    return Metric(name, name, kind, treated, holdout, diff, Interval(low, high), "test")


def segment(*metrics: Metric, description: str = "Suppress promos") -> SegmentReport:
    return SegmentReport(
        "suppress_promos", description, 0.05, 0, 0, 4210, 221, list(metrics), CHURN
    )


def test_the_issue_example() -> None:
    seg = segment(
        metric("repeat_purchase", 0.01, -0.02, 0.04),
        metric("unsubscribe", -0.018, -0.032, -0.004),
    )
    h = headline(seg, 0.95)
    assert h.text == (
        "Suppress promos cut the unsubscribe rate by 1.8 points (95% CI 0.4–3.2), n = 4,210 vs 221."
    )
    assert h.clear and h.metric is not None and h.metric.name == "unsubscribe"


def test_the_first_clear_difference_leads_else_it_says_none_is_clear() -> None:
    seg = segment(
        metric("unsubscribe", -0.004, -0.02, 0.012),
        metric("repeat_purchase", 0.05, 0.01, 0.09),
        description="",
    )
    assert headline(seg, 0.95).text == (
        "Suppress promos raised repeat purchases after resolution by 5.0 points "
        "(95% CI 1.0–9.0), n = 4,210 vs 221."
    )
    unclear = headline(segment(metric("unsubscribe", -0.004, -0.02, 0.012)), 0.95)
    assert not unclear.clear
    assert unclear.text == (
        "Suppress promos: no clear difference in the unsubscribe rate yet "
        "(95% CI -2.0 to 1.2 points), n = 4,210 vs 221."
    )


def test_nothing_measured_yet() -> None:
    empty = Metric(
        "unsubscribe",
        "u",
        "proportion",
        ArmStat(0, 0, None, None),
        ArmStat(0, 0, None, None),
        None,
        None,
        "t",
    )
    h = headline(segment(empty), 0.95)
    assert h.metric is None
    assert h.text.startswith("Suppress promos: nothing to compare yet")


def test_interval_chart_draws_each_arm_on_one_axis() -> None:
    svg = interval_chart("u", [("treated", 2.1, 1.7, 2.5), ("holdout", 3.9, 2.0, 7.0)], "%")
    assert svg.count("<circle") == 2 and 'aria-label="u"' in svg
    assert "treated: 2.1% (1.7–2.5)" in svg and "7.0%" in svg

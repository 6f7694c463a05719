"""The dashboard pages' bodies, rendered from ``templates/dashboard/*.html`` (the frame is
``layout.page``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from tactful.core import codec
from tactful.store.records import from_us
from tactful.store.runs import PersonDelivery
from tactful.web.dashboard.charts import DAY_US, bar_chart, interval_chart, line_chart
from tactful.web.dashboard.data import Overview
from tactful.web.dashboard.destination import DestinationPage
from tactful.web.dashboard.headline import Headline, headlines
from tactful.web.dashboard.people import LABEL_WORDS, Label, PeopleList
from tactful.web.dashboard.segments import Preview, SegmentPage
from tactful.web.present import Moment, moment, span, words
from tactful.web.templating import render

if TYPE_CHECKING:  # tactful.report loads on the report page's first request
    from tactful.report.build import Report


def _moments(now: datetime) -> tuple[Callable[[int | None], Moment | None], Callable[..., Any]]:
    def at_us(value: int | None) -> Moment | None:
        return None if value is None else moment(from_us(int(value)), now)

    def at_text(value: str | datetime | None) -> Moment | None:
        if value is None or value == "":
            return None
        at = value if isinstance(value, datetime) else codec.parse_time(str(value))
        return moment(at, now)

    return at_us, at_text


def lag(seconds: float | None) -> str:
    return "—" if seconds is None else ("under a minute" if seconds < 60 else span(seconds))


def overview(ov: Overview, csrf: str, labels: dict[str, Label], flash: str | None = None) -> str:
    wall = datetime.fromtimestamp(ov.wall_us / 1_000_000, UTC)
    at_us, _ = _moments(wall)
    skew = ""
    if ov.engine_clock is not None:
        ahead = (ov.engine_clock - wall).total_seconds()
        if abs(ahead) >= 60:
            skew = (
                f"engine clock {span(ahead)} {'ahead of' if ahead > 0 else 'behind'} the wall clock"
            )
    changes = [
        {
            "at": at_us(at),
            "label": labels[pid],
            "old": old,
            "new": new,
            "changed": changed.replace(",", ", "),
        }
        for pid, at, old, new, changed in ov.changes
    ]
    return render(
        "dashboard/overview.html",
        ov=ov,
        flash=flash,
        csrf=csrf,
        engine=None if ov.engine_clock is None else moment(ov.engine_clock, wall),
        wall=moment(wall, wall),
        skew=skew,
        wall_at=at_us,
        lag=lag,
        charts=[
            Markup(line_chart(f"{s.name}: size over time", s.series, ov.window.bucket_us))
            for s in ov.segments
        ],
        states_chart=Markup(bar_chart("People by support state", ov.states)),
        total_dead=sum(d.dead for d in ov.destinations),
        changes=changes,
    )


def people(
    pl: PeopleList,
    segments: Sequence[str],
    states: Sequence[str],
    page_url: Callable[[int], str],
    detail: str = "",
) -> str:
    return render(
        "dashboard/people.html",
        pl=pl,
        segments=segments,
        states=states,
        page_url=page_url,
        detail=Markup(detail),
    )


def person(
    p: dict[str, Any],
    label: Label,
    rules: dict[str, str],
    now: datetime,
    deliveries: Sequence[PersonDelivery] = (),
) -> str:
    """``rules``: segment name → its ``when``; ``deliveries``: every delivery about the
    person, newest first, with the platform's answer (``RunStore.of_person``)."""
    at_us, at_text = _moments(now)
    return render(
        "dashboard/person.html",
        p=p,
        label=label,
        rules=rules,
        at_text=at_text,
        at_us=at_us,
        words=words,
        kind_words=LABEL_WORDS,
        deliveries=deliveries,
    )


def segments(rows: Sequence[Any]) -> str:
    return render("dashboard/segments.html", rows=rows)


def segment(s: SegmentPage, after: str | None, now: datetime, tried: Preview | None = None) -> str:
    at_us, _ = _moments(now)
    chart = line_chart(f"{s.name}: size over time", s.series, s.window.bucket_us)
    unit = "hour" if s.window.bucket_us < DAY_US else "day"
    return render(
        "dashboard/segment.html",
        s=s,
        after=after,
        at_us=at_us,
        chart=Markup(chart),
        unit=unit,
        tried=tried,
    )


def destination(d: DestinationPage, before: int | None, now: datetime, csrf: str) -> str:
    at_us, _ = _moments(now)
    return render(
        "dashboard/destination.html",
        d=d,
        before=before,
        at_us=at_us,
        csrf=csrf,
        chart=Markup(d.chart),
    )


def _answer_chart(h: Headline) -> str:
    m = h.metric
    if m is None:
        return ""
    scale, unit = (100.0, "%") if m.kind == "proportion" else (1.0, "")
    rows = [
        (name, arm.value * scale, arm.ci.low * scale, arm.ci.high * scale)
        for name, arm in (("treated", m.treated), ("holdout", m.holdout))
        if arm.value is not None and arm.ci is not None
    ]
    return interval_chart(f"{h.segment}: {m.title}, treated vs holdout", rows, unit)


def answers(report: Report) -> str:
    """The report page's lead: one sentence and one chart per segment."""
    leads = [(h, Markup(_answer_chart(h))) for h in headlines(report)]
    return render("dashboard/answers.html", leads=leads)


def config(masked: dict[str, Any]) -> str:
    sections = [
        (key, json.dumps(value, indent=2, sort_keys=False, default=str))
        for key, value in masked.items()
    ]
    return render("dashboard/config.html", sections=sections)

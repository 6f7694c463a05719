"""Build the measurement report from the store: treated vs holdout per segment, plus churn.

The definitions (who is in each arm, windows, metrics, intervals) are documented in
``docs/report.md``; keep the two in step.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tactful.clock import system_now
from tactful.core import codec
from tactful.core.events import RatingGiven
from tactful.core.identity import normalize_identifier
from tactful.core.state import csat_score
from tactful.exceptions import InvalidInput
from tactful.report.stats import (
    Interval,
    mean,
    mean_difference_interval,
    mean_interval,
    median,
    newcombe_interval,
    wilson_interval,
)
from tactful.store.base import Reader, Store
from tactful.store.records import from_us, to_us

PROPORTION_METHOD = "Wilson score interval per arm; Newcombe hybrid score interval (method 10)"
MEAN_METHOD = "normal approximation with the sample variance (unpooled for the difference)"
CONFIDENCE = 0.95


class ReportError(InvalidInput):
    """The report cannot be built as asked (unknown segment, bad window)."""


@dataclass(frozen=True, slots=True)
class ArmStat:
    """One arm of one metric: n people measured, successes (proportions) and the estimate."""

    n: int
    successes: int | None  # None for a mean metric
    value: float | None  # rate or mean; None when n is 0
    ci: Interval | None


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # repeat_purchase | unsubscribe | complaint | recontact | csat_change
    title: str
    kind: str  # proportion | mean
    treated: ArmStat
    holdout: ArmStat
    difference: float | None  # treated − holdout
    difference_ci: Interval | None
    method: str


@dataclass(frozen=True, slots=True)
class ChurnPoint:
    start: datetime
    entries: int
    exits: int
    size: int  # members at the end of the bucket (treated and holdout)
    holdout_size: int


@dataclass(frozen=True, slots=True)
class Churn:
    people: int  # distinct people who entered in the period
    entries: int
    exits: int
    entries_per_person: float | None
    exits_per_person: float | None
    bounced: int  # people who entered more than once in the period
    bounced_share: float | None
    median_stay_days: float | None  # over completed stays that began in the period
    completed_stays: int
    open_stays: int
    bucket: str  # day | week | month (30 days)
    series: list[ChurnPoint] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SegmentReport:
    name: str
    description: str
    holdout_fraction: float
    entered_treated: int  # people whose first entry in the period was treated
    entered_holdout: int
    measured_treated: int  # of those, whose whole window had passed by ``now``
    measured_holdout: int
    metrics: list[Metric]
    churn: Churn


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: datetime  # "now": the end of the period
    since: datetime | None  # start of the period (None: all history)
    window_days: float
    confidence: float
    segments: list[SegmentReport]


METRIC_TITLES = {
    "repeat_purchase": "Repeat purchase after resolution",
    "unsubscribe": "Unsubscribe rate",
    "complaint": "Spam complaint rate",
    "recontact": "Re-contact rate",
    "csat_change": "CSAT change (points)",
}


# -- per-person observation ------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    person_id: str
    entry: datetime
    holdout: bool
    end: datetime  # entry + window
    repeat: bool | None = None  # None: not eligible (no resolution)
    unsubscribe: bool = False
    complaint: bool = False
    recontact: bool = False
    csat_change: float | None = None


def _history(reader: Reader, segment: str, until_us: int) -> list[tuple[str, str, int, bool]]:
    return [
        (h.person_id, h.change, h.at_us, h.holdout)
        for h in reader.read_models.segment_history(segment, until_us=until_us)
    ]


def _ratings(
    reader: Reader, until_us: int, good: int, bad: int, region: str | None
) -> dict[str, list[tuple[datetime, int]]]:
    """Every CSAT rating up to ``until_us`` by person (from the event log), oldest first."""
    cache: dict[tuple[str, str], str | None] = {}

    def owner(kind: str, raw: str) -> str | None:
        ident = normalize_identifier(kind, raw, region)  # type: ignore[arg-type]
        if ident is None:
            return None
        key = (ident.kind, ident.value)
        if key not in cache:
            found = reader.find_persons(ident.kind, ident.value)
            cache[key] = found[0] if found else None
        return cache[key]

    out: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for blob in reader.read_models.events_of_kind("rating_given", until_us):
        event = codec.loads("rating_given", blob)
        if not isinstance(event, RatingGiven):
            continue
        candidates: list[tuple[str, str]] = []
        if event.requester_id is not None:
            candidates.append(("zendesk_user_id", str(event.requester_id)))
        candidates.extend((i.kind, i.value) for i in event.requester)
        pid = next((p for k, v in candidates if (p := owner(k, v)) is not None), None)
        if pid is None:
            continue
        try:
            score = csat_score(event, good=good, bad=bad)
        except (TypeError, ValueError):
            continue
        out[pid].append((event.at, score))
    for values in out.values():
        values.sort()
    return out


def _observe(
    people: list[_Person],
    outcomes: dict[str, list[tuple[int, str]]],
    tickets: dict[str, list[Any]],
    ratings: dict[str, list[tuple[datetime, int]]],
) -> None:
    for person in people:
        entry, end = person.entry, person.end
        entry_us, end_us = to_us(entry), to_us(end)
        mine_outcomes = outcomes.get(person.person_id, [])
        in_window = [(a, o) for a, o in mine_outcomes if entry_us < a <= end_us]
        kinds = {o for _, o in in_window}
        person.unsubscribe = "unsubscribe" in kinds
        person.complaint = "complaint" in kinds
        records = [r for r in tickets.get(person.person_id, []) if r.counted]
        new_ticket = any(entry < r.version.created_at <= end for r in records)
        person.recontact = "recontact" in kinds or new_ticket
        resolutions = sorted(at for r in records for at in r.resolutions())
        after = [r for r in resolutions if entry <= r <= end]
        before = [r for r in resolutions if r < entry]
        if after:
            anchor_us: int | None = to_us(after[0])
        elif before:
            anchor_us = entry_us
        else:
            anchor_us = None
        if anchor_us is not None:
            person.repeat = any(o == "order" and anchor_us < a for a, o in in_window)
        mine = ratings.get(person.person_id, [])
        pre = [s for at, s in mine if at <= entry]
        post = [s for at, s in mine if entry < at <= end]
        if pre and post:
            person.csat_change = float(post[-1] - pre[-1])


def _proportion(name: str, treated: list[bool], holdout: list[bool]) -> Metric:
    def arm(values: list[bool]) -> ArmStat:
        n, k = len(values), sum(values)
        return ArmStat(n, k, k / n if n else None, wilson_interval(k, n))

    t, h = arm(treated), arm(holdout)
    diff = None if t.value is None or h.value is None else t.value - h.value
    ci = newcombe_interval(t.successes or 0, t.n, h.successes or 0, h.n)
    return Metric(name, METRIC_TITLES[name], "proportion", t, h, diff, ci, PROPORTION_METHOD)


def _mean_metric(name: str, treated: list[float], holdout: list[float]) -> Metric:
    def arm(values: list[float]) -> ArmStat:
        return ArmStat(len(values), None, mean(values), mean_interval(values))

    t, h = arm(treated), arm(holdout)
    diff = None if t.value is None or h.value is None else t.value - h.value
    ci = mean_difference_interval(treated, holdout)
    return Metric(name, METRIC_TITLES[name], "mean", t, h, diff, ci, MEAN_METHOD)


def _metrics(people: list[_Person]) -> list[Metric]:
    t = [p for p in people if not p.holdout]
    h = [p for p in people if p.holdout]
    return [
        _proportion(
            "repeat_purchase",
            [bool(p.repeat) for p in t if p.repeat is not None],
            [bool(p.repeat) for p in h if p.repeat is not None],
        ),
        _proportion("unsubscribe", [p.unsubscribe for p in t], [p.unsubscribe for p in h]),
        _proportion("complaint", [p.complaint for p in t], [p.complaint for p in h]),
        _proportion("recontact", [p.recontact for p in t], [p.recontact for p in h]),
        _mean_metric(
            "csat_change",
            [p.csat_change for p in t if p.csat_change is not None],
            [p.csat_change for p in h if p.csat_change is not None],
        ),
    ]


# -- churn -----------------------------------------------------------------------------------


def _bucket(span: timedelta) -> tuple[str, timedelta]:
    if span <= timedelta(days=62):
        return "day", timedelta(days=1)
    if span <= timedelta(days=7 * 62):
        return "week", timedelta(days=7)
    return "month", timedelta(days=30)


def _churn(history: list[tuple[str, str, int, bool]], start_us: int, now: datetime) -> Churn:
    now_us = to_us(now)
    entries: dict[str, int] = defaultdict(int)
    exits = 0
    open_since: dict[str, int] = {}
    stays: list[float] = []
    for pid, change, at_us, _ in history:
        in_period = at_us >= start_us
        if change == "entered":
            if in_period:
                entries[pid] += 1
                open_since[pid] = at_us
        elif change == "exited":
            if in_period:
                exits += 1
            began = open_since.pop(pid, None)
            if began is not None:
                stays.append((at_us - began) / 86_400e6)
    people = len(entries)
    total_entries = sum(entries.values())
    bounced = sum(1 for n in entries.values() if n > 1)
    med = median(stays)

    # the series: entries/exits per bucket and the size at each bucket's end
    first = from_us(start_us)
    kind, width = _bucket(now - first)
    buckets = max(1, math.ceil((now - first) / width))
    series: list[ChurnPoint] = []
    members: dict[str, bool] = {}  # pid -> holdout, current members
    index = 0
    for b in range(buckets):
        b_start = first + b * width
        b_end_us = min(to_us(b_start + width), now_us + 1)
        n_in = n_out = 0
        while index < len(history) and history[index][2] < b_end_us:
            pid, change, at_us, hold = history[index]
            index += 1
            if change == "entered":
                members[pid] = hold
                if at_us >= start_us:
                    n_in += 1
            else:
                members.pop(pid, None)
                if at_us >= start_us:
                    n_out += 1
        series.append(
            ChurnPoint(b_start, n_in, n_out, len(members), sum(1 for v in members.values() if v))
        )
    return Churn(
        people=people,
        entries=total_entries,
        exits=exits,
        entries_per_person=total_entries / people if people else None,
        exits_per_person=exits / people if people else None,
        bounced=bounced,
        bounced_share=bounced / people if people else None,
        median_stay_days=med,
        completed_stays=len(stays),
        open_stays=len(open_since),
        bucket=kind,
        series=series,
    )


# -- the report ------------------------------------------------------------------------------


def _now_of(reader: Reader) -> datetime:
    text = reader.get_meta("clock")
    return codec.parse_time(text) if text is not None else system_now()


def build_report(
    store: Store,
    settings: Any,
    *,
    segment: str | None = None,
    since: datetime | None = None,
    window_days: float = 30,
    now: datetime | None = None,
) -> Report:
    """Treated vs holdout per segment with a holdout (or the named segment) over
    [since, now]; ``now`` defaults to the engine clock (else the wall clock)."""
    if not window_days > 0:
        raise ReportError(f"the window must be positive, got {window_days} days")
    if segment is not None:
        spec = settings.segment(segment)
        if spec is None:
            known = ", ".join(s.name for s in settings.segments) or "none configured"
            raise ReportError(f"no segment named {segment!r} (known: {known})")
        specs = [spec]
    else:
        specs = [s for s in settings.segments if s.holdout > 0]
    window = timedelta(days=window_days)
    out: list[SegmentReport] = []
    with store.reader() as reader:
        now = now or _now_of(reader)
        if since is not None and since > now:
            raise ReportError(f"--since {codec.format_time(since)} is after the end of the period")
        now_us = to_us(now)
        ratings: dict[str, list[tuple[datetime, int]]] | None = None
        for spec in specs:
            history = _history(reader, spec.name, now_us)
            start_us = history[0][2] if history else now_us
            if since is not None:
                start_us = to_us(since)
            first: dict[str, tuple[int, bool]] = {}
            for pid, change, at_us, hold in history:
                if change == "entered" and at_us >= start_us and pid not in first:
                    first[pid] = (at_us, hold)
            cohort = [
                _Person(pid, from_us(at_us), hold, from_us(at_us) + window)
                for pid, (at_us, hold) in sorted(first.items())
            ]
            measured = [p for p in cohort if p.end <= now]
            pids = [p.person_id for p in measured]
            if measured and ratings is None:
                ratings = _ratings(
                    reader,
                    now_us,
                    settings.csat.good,
                    settings.csat.bad,
                    settings.identity.default_region,
                )
            _observe(
                measured,
                reader.read_models.outcomes_of(pids, now_us),
                reader.tickets_of(pids) if pids else {},
                ratings or {},
            )
            out.append(
                SegmentReport(
                    name=spec.name,
                    description=spec.description,
                    holdout_fraction=spec.holdout,
                    entered_treated=sum(1 for p in cohort if not p.holdout),
                    entered_holdout=sum(1 for p in cohort if p.holdout),
                    measured_treated=sum(1 for p in measured if not p.holdout),
                    measured_holdout=sum(1 for p in measured if p.holdout),
                    metrics=_metrics(measured),
                    churn=_churn(history, start_us, now),
                )
            )
    return Report(now, since, window_days, CONFIDENCE, out)


# -- JSON ------------------------------------------------------------------------------------


def _t(value: datetime | None) -> str | None:
    return None if value is None else codec.format_time(value)


def _ci(value: Interval | None) -> list[float] | None:
    return None if value is None else [value.low, value.high]


def _arm(arm: ArmStat) -> dict[str, Any]:
    return {"n": arm.n, "successes": arm.successes, "value": arm.value, "ci": _ci(arm.ci)}


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON values (times ISO 8601 UTC with ``Z``; CIs as [low, high])."""
    return {
        "generated_at": _t(report.generated_at),
        "since": _t(report.since),
        "window_days": report.window_days,
        "confidence": report.confidence,
        "segments": [
            {
                "segment": s.name,
                "description": s.description,
                "holdout_fraction": s.holdout_fraction,
                "entered": {"treated": s.entered_treated, "holdout": s.entered_holdout},
                "measured": {"treated": s.measured_treated, "holdout": s.measured_holdout},
                "metrics": {
                    m.name: {
                        "title": m.title,
                        "kind": m.kind,
                        "treated": _arm(m.treated),
                        "holdout": _arm(m.holdout),
                        "difference": m.difference,
                        "difference_ci": _ci(m.difference_ci),
                        "method": m.method,
                    }
                    for m in s.metrics
                },
                "churn": {
                    "people": s.churn.people,
                    "entries": s.churn.entries,
                    "exits": s.churn.exits,
                    "entries_per_person": s.churn.entries_per_person,
                    "exits_per_person": s.churn.exits_per_person,
                    "bounced": s.churn.bounced,
                    "bounced_share": s.churn.bounced_share,
                    "median_stay_days": s.churn.median_stay_days,
                    "completed_stays": s.churn.completed_stays,
                    "open_stays": s.churn.open_stays,
                    "bucket": s.churn.bucket,
                    "series": [
                        {
                            "start": _t(p.start),
                            "entries": p.entries,
                            "exits": p.exits,
                            "size": p.size,
                            "holdout_size": p.holdout_size,
                        }
                        for p in s.churn.series
                    ],
                },
            }
            for s in report.segments
        ],
    }

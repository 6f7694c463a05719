"""The dashboard's segment reads: the segment list, a segment's page (members paged,
entries and exits over time, where it is delivered, holdout) and a changed rule's preview."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tactful.config.models import STATE_FIELDS
from tactful.core.rules import RuleError, parse_rule
from tactful.readmodels.views import clock_of, rule_preview
from tactful.store.records import to_us
from tactful.web.context import WebContext
from tactful.web.dashboard.charts import Point, Window, choose_window, size_series
from tactful.web.dashboard.data import bucket_deltas, now_us
from tactful.web.dashboard.people import Label, labels
from tactful.web.present import span

PAGE_SIZE = 50  # members a page


@dataclass
class HistoryRow:
    at_us: int
    label: Label
    change: str
    holdout: bool
    detail: str


@dataclass
class SegmentPage:
    name: str
    description: str
    when: str
    cooldown: str
    holdout_share: float
    members: int
    holdout: int
    delivered_to: list[str]
    member_rows: list[tuple[Label, int, bool]]  # label, since_us, holdout
    next_after: str | None  # the cursor of the next page of members
    history: list[HistoryRow]
    window: Window
    series: list[Point]
    buckets: list[tuple[int, int, int]]  # bucket start (us), entered, exited; newest first
    now_us: int  # the engine clock (the wall clock before it starts)


def segment_page(ctx: WebContext, name: str, after: str | None) -> SegmentPage | None:
    spec = ctx.settings.segment(name)
    if spec is None:
        return None
    with ctx.engine.store.reader() as reader:
        members, holdout = reader.segment_counts().get(name, (0, 0))
        page = reader.segment_members(name, after, PAGE_SIZE + 1)
        history = reader.read_models.segment_history(name, limit=PAGE_SIZE)
        names = labels(reader, list({*(pid for pid, _ in page), *(h.person_id for h in history)}))
        now = now_us(clock_of(reader))
        window = choose_window(reader.read_models.first_change_us(name), now)
        deltas = bucket_deltas(reader, window.bucket_us).get(name, {})
    shown = page[:PAGE_SIZE]
    member_rows = [(names[pid], to_us(m.since) if m.since else 0, m.holdout) for pid, m in shown]
    delivered = [
        d.name
        for d in ctx.settings.destinations
        if (wanted := d.segment_names) is None or name in wanted
    ]
    return SegmentPage(
        name,
        spec.description,
        spec.when,
        "" if spec.cooldown is None else span(spec.cooldown.total_seconds(), long=True),
        spec.holdout,
        members,
        holdout,
        delivered,
        member_rows,
        shown[-1][0] if len(page) > PAGE_SIZE else None,
        [HistoryRow(h.at_us, names[h.person_id], h.change, h.holdout, h.detail) for h in history],
        window,
        size_series(deltas, window, now),
        [
            (b * window.bucket_us, deltas[b].entered, deltas[b].exited)
            for b in sorted(deltas, reverse=True)
            if b >= window.first and (deltas[b].entered or deltas[b].exited)
        ],
        now,
    )


@dataclass
class SegmentSummary:
    name: str
    when: str
    members: int
    holdout: int


def segment_list(ctx: WebContext) -> list[SegmentSummary]:
    with ctx.engine.store.reader() as reader:
        counts = reader.segment_counts()
    return [
        SegmentSummary(s.name, s.when, *counts.get(s.name, (0, 0))) for s in ctx.settings.segments
    ]


@dataclass
class Preview:
    """A changed rule tried on the segment's page (``?rule=``): counts and samples, or the
    rule's error."""

    when: str
    error: str = ""
    count: int = 0
    current: int = 0
    sample: list[Label] = field(default_factory=list)
    entering: list[Label] = field(default_factory=list)
    exiting: list[Label] = field(default_factory=list)
    would_enter: int = 0
    would_exit: int = 0


def segment_preview(ctx: WebContext, name: str, when: str, sample: int = 10) -> Preview:
    try:
        rule = parse_rule(when, name=f"{name} (preview)", fields=STATE_FIELDS)
    except RuleError as exc:
        return Preview(when, error=str(exc))
    with ctx.engine.store.reader() as reader:
        try:
            found = rule_preview(reader, ctx.engine.rules, name, when, rule)
        except ValueError as exc:
            return Preview(when, error=str(exc))
        current = reader.segment_counts().get(name, (0, 0))[0]
        rng = random.Random(0)
        picked = sorted(rng.sample(found.matching, min(sample, len(found.matching))))
        entering, exiting = found.entering[:sample], found.exiting[:sample]
        names = labels(reader, list({*picked, *entering, *exiting}))
    return Preview(
        when,
        count=len(found.matching),
        current=current,
        sample=[names[p] for p in picked],
        entering=[names[p] for p in entering],
        exiting=[names[p] for p in exiting],
        would_enter=len(found.entering),
        would_exit=len(found.exiting),
    )

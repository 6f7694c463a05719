"""A destination's page (``/destinations/{name}``): its sync runs, newest first and paged,
the platform's answer to each, and the row-level errors with the person each concerns
(their identifier masked: the page is a list of failures, not a directory of people)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tactful.clock import now_us as system_us
from tactful.core.platform import PlatformReport
from tactful.delivery import platform
from tactful.delivery.preview import Preview, preview
from tactful.delivery.store import DeliveryStore
from tactful.store.runs import RowError, Run, RunStore
from tactful.store.watch import WatchStore
from tactful.web.context import WebContext
from tactful.web.dashboard import people, volume
from tactful.web.dashboard.people import Label

RUNS_PER_PAGE = 25
TREND_READINGS = 10  # the match rate's last readings shown as its trend
TREND_SINCE_US = 30 * 86_400 * 1_000_000


def mask(text: str, kind: str) -> str:
    """An identifier masked: an email keeps its first letter and its domain, anything else
    its last three characters."""
    if kind == "email" and "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}{'•' * max(1, len(local) - 1)}@{domain}"
    keep = text[-3:] if len(text) > 4 else ""
    return "•" * max(1, len(text) - len(keep)) + keep


@dataclass(frozen=True)
class ErrorRow:
    run: Run
    error: RowError
    person: Label  # masked


@dataclass
class DestinationPage:
    name: str
    type: str
    purpose: str
    segment: str | None
    dead: int
    runs: list[Run]
    next_before: int | None
    errors: list[ErrorRow] = field(default_factory=list)
    # an ad audience: the platform's last reading (when, what) and Tactful's member count
    platform_read: tuple[int, PlatformReport] | None = None
    members: int | None = None
    chart: str = ""  # SVG: volume and errors per hour (``volume.volume_chart``)
    preview: Preview | None = None  # a dry run asked from the page
    # the match rate's last readings (when, as the platform words it), oldest first
    match_trend: list[tuple[int, str]] = field(default_factory=list)

    @property
    def match_direction(self) -> str:
        """``falling``, ``rising`` or ``steady``: the last reading against the first shown."""
        rates = [platform.match_percent(text) for _, text in self.match_trend]
        known = [r for r in rates if r is not None]
        if len(known) < 2 or known[-1] == known[0]:
            return "steady"
        return "falling" if known[-1] < known[0] else "rising"


def destination_page(ctx: WebContext, name: str, before: int | None) -> DestinationPage | None:
    config = next((d for d in ctx.settings.destinations if d.name == name), None)
    if config is None:
        return None
    page = RunStore(ctx.engine.store).page(name, RUNS_PER_PAGE, before)
    pids = sorted({e.person_id for errors in page.errors.values() for e in errors})
    found = people.labels_for(ctx, pids)
    dead = DeliveryStore(ctx.engine.store).health().get(name, {}).get("dead", 0)
    labels = {
        pid: Label(pid, mask(label.text, label.kind) if label.kind else label.text, label.kind)
        for pid, label in found.items()
    }
    by_id = {r.id: r for r in page.runs}
    errors = [
        ErrorRow(by_id[e.run_id], e, labels.get(e.person_id, Label(e.person_id, "", "")))
        for run in page.runs
        for e in page.errors.get(run.id, [])
    ]
    now_us = system_us()
    since = volume.window(now_us)[0] * volume.BUCKET_US
    volumes = RunStore(ctx.engine.store).volume(name, since, volume.BUCKET_US)
    chart = volume.volume_chart(
        f"{name}: rows per hour, last {volume.HOURS} hours", volumes, now_us
    )
    members = None
    if config.segment is not None:
        with ctx.engine.store.reader() as reader:
            members = reader.segment_counts().get(config.segment, (0, 0))[0]
    return DestinationPage(
        name,
        config.type,
        config.purpose,
        config.segment,
        int(dead),
        page.runs,
        page.next_before,
        errors,
        platform.latest(ctx.engine.store, name),
        members,
        chart,
        match_trend=WatchStore(ctx.engine.store)
        .match_rates(now_us - TREND_SINCE_US, name)
        .get(name, [])[-TREND_READINGS:],
    )


def dry_run(ctx: WebContext, name: str) -> Preview:
    """What ``tactful sync --dry-run`` lists for this destination now (sends nothing)."""
    if ctx.delivery_worker is None:
        raise RuntimeError("the web app builds delivery workers (create_app)")
    worker = ctx.delivery_worker()
    try:
        return preview(worker, only=name)[name]
    finally:
        worker.close()

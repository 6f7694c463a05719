"""``POST /replay/preview``: what ``tactful replay`` would change, from the dashboard.

The same work as ``tactful replay --dry-run`` (a full recompute, rolled back): per segment
who would enter and exit, per destination how many adds, removes, profile updates and
events would be sent. A POST with the session's CSRF token (``routes.replay_preview``),
since it holds the store's writer for the length of a replay; the configuration page has
the button.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tactful.delivery.router import preview, routes_of
from tactful.engine.replay import Corrections, ReplayReport
from tactful.web.context import WebContext
from tactful.web.templating import render

KINDS = ("audience_add", "audience_remove", "profile", "event")


def form(csrf: str) -> str:
    return render("dashboard/replay.html", result=None, csrf=csrf)


@dataclass
class Preview:
    report: ReplayReport
    destinations: dict[str, Counter[str]]


def run(ctx: WebContext) -> Preview:
    routes = routes_of(ctx.settings)

    def count(rows: Corrections) -> dict[str, Counter[str]]:
        return preview(rows, routes)

    report = ctx.engine.replay(ctx.settings.engine.batch_size, dry_run=True, count=count)
    return Preview(report, {r.name: report.destinations.get(r.name, Counter()) for r in routes})


def show(result: Preview) -> str:
    report = result.report
    segments = [
        (name, v["enter"], v["exit"], " ".join(v["entering"] + v["exiting"]))
        for name, v in sorted(report.segments.items())
    ]
    destinations = [[name, *(c[k] for k in KINDS)] for name, c in result.destinations.items()]
    return render(
        "dashboard/replay.html", result=result, segments=segments, destinations=destinations
    )

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
from tactful.engine import ReplayReport
from tactful.web.context import WebContext
from tactful.web.dashboard.layout import e, table

KINDS = ("audience_add", "audience_remove", "profile", "event")


def form(csrf: str) -> str:
    return (
        '<section id="replay"><h2>Replay</h2><p class="muted">After changing reasons or rules '
        "(and restarting with the new file), preview what <code>tactful replay</code> would "
        "change. Nothing is changed; destinations would get only these net corrections."
        '</p><form method="post" action="/replay/preview">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button type="submit">Preview a replay</button></form></section>'
    )


@dataclass
class Preview:
    report: ReplayReport
    destinations: dict[str, Counter[str]]


def run(ctx: WebContext) -> Preview:
    report = ctx.engine.replay(ctx.settings.engine.batch_size, dry_run=True)
    return Preview(report, preview(report.corrections, routes_of(ctx.settings)))


def render(result: Preview) -> str:
    report = result.report
    segments = [
        [name, str(v["enter"]), str(v["exit"]), " ".join(v["entering"] + v["exiting"])]
        for name, v in sorted(report.segments.items())
    ]
    destinations = [[name, *(str(c[k]) for k in KINDS)] for name, c in result.destinations.items()]
    return (
        f'<p class="flash">Dry run: {report.events} events replayed, '
        f"{len(report.changed)} of {report.persons_after} persons would change, "
        f"{len(report.corrections)} messages. Nothing was changed.</p>"
        "<h2>Segments</h2>"
        + (
            table(["Segment", "Enter", "Exit", "Persons (first 50 each)"], segments)
            if segments
            else '<p class="muted">No one would enter or exit a segment.</p>'
        )
        + "<h2>Destinations</h2>"
        + (
            table(["Destination", "Adds", "Removes", "Profile updates", "Events"], destinations)
            if destinations
            else '<p class="muted">No destinations configured.</p>'
        )
    )

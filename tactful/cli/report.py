"""``tactful report``: treated vs holdout per segment, with intervals and churn (HTML/JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tactful.cli.base import App, CommandError, add_json, add_now, out_json, parse_now


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="measurement report: treated vs holdout per segment, with 95%% intervals",
        description=(
            "For each segment with a holdout: people who entered since D, treated vs holdout, "
            "on repeat purchase after resolution, unsubscribe, complaint and re-contact rates "
            "and CSAT change, each within N days of entry; plus audience churn. "
            "See docs/report.md for the exact definitions."
        ),
    )
    p.add_argument("--segment", metavar="S", default=None, help="only this segment")
    p.add_argument(
        "--since",
        metavar="D",
        default=None,
        help="start of the period (ISO 8601 UTC date or time; default: all history)",
    )
    p.add_argument(
        "--window-days",
        metavar="N",
        type=float,
        default=30.0,
        help="days after entry in which outcomes count (default 30)",
    )
    p.add_argument("--out", metavar="FILE", default=None, help="write the HTML report here")
    add_json(p)
    add_now(p)
    p.set_defaults(handler=cmd_report, reads_store=True)


def cmd_report(app: App) -> int:
    from tactful.report import ReportError, build_report, render_html, report_json

    args = app.args
    since = None
    if args.since is not None:
        try:
            since = parse_now(args.since)
        except CommandError as exc:
            raise CommandError(str(exc).replace("--now", "--since")) from exc
    now = parse_now(args.now)
    try:
        report = build_report(
            app.engine.store,
            app.settings,
            segment=args.segment,
            since=since,
            window_days=args.window_days,
            now=now,
        )
    except ReportError as exc:
        raise CommandError(str(exc)) from exc
    if args.out is not None:
        path = Path(args.out)
        try:
            path.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc}") from exc
    if args.json:
        out_json(report_json(report))
        return 0
    _print_summary(app, report)
    if args.out is not None:
        app.console.print(f"wrote {args.out}", highlight=False)
    return 0


def _print_summary(app: App, report: Any) -> None:
    from rich.table import Table

    if not report.segments:
        app.out.print("no segment has a holdout: set `holdout` on a segment to measure it")
        return
    for seg in report.segments:
        table = Table(
            "metric",
            "treated (n)",
            "holdout (n)",
            "treated − holdout [95% CI]",
            title=f"{seg.name}: {seg.measured_treated} treated, {seg.measured_holdout} holdout "
            f"measured over {report.window_days:g} days",
        )
        for m in seg.metrics:
            table.add_row(
                m.title,
                f"{_fmt(m.treated.value, m.kind)} ({m.treated.n})",
                f"{_fmt(m.holdout.value, m.kind)} ({m.holdout.n})",
                _diff(m),
            )
        app.out.print(table)
        c = seg.churn
        share = "–" if c.bounced_share is None else f"{c.bounced_share * 100:.1f}%"
        stay = "–" if c.median_stay_days is None else f"{c.median_stay_days:.1f} days"
        app.out.print(
            f"  churn: {c.people} people entered, {c.entries} entries, {c.exits} exits, "
            f"{c.bounced} entered more than once ({share}), median stay {stay}",
            highlight=False,
        )


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if kind == "proportion" else f"{value:+.2f}"


def _diff(m: Any) -> str:
    if m.difference is None:
        return "–"
    scale, unit = (100.0, " pts") if m.kind == "proportion" else (1.0, "")
    text = f"{m.difference * scale:+.1f}{unit}"
    if m.difference_ci is not None:
        text += f" [{m.difference_ci.low * scale:+.1f}, {m.difference_ci.high * scale:+.1f}]"
    return text

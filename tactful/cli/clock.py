"""``tactful clock repair``: undo an engine clock pushed into the future.

Before the time guard (``[engine] future_skew``), one event dated years ahead moved the
engine clock there for good, and every time-window segment emptied. ``clock repair`` takes
the events later than the wall clock plus the skew out of the event log (their raw
documents stay in the store), sets the clock back to the wall clock and recomputes every
person from the log (as ``tactful replay``). ``--dry-run`` reports and changes nothing.
Stop ``serve`` and ``worker`` first, or run it while they are stopped for the minute it takes.
"""

from __future__ import annotations

from typing import Any

from tactful.cli.base import App, add_json, out_json
from tactful.core import codec
from tactful.store.records import from_us


def register(sub: Any) -> None:
    p = sub.add_parser("clock", help="the engine clock: repair one pushed into the future")
    verbs = p.add_subparsers(dest="clock_command", required=True)
    r = verbs.add_parser(
        "repair",
        help="remove events later than the wall clock plus [engine] future_skew, set the "
        "clock back and recompute (--dry-run: only report)",
    )
    r.add_argument("--dry-run", action="store_true", help="report what would change")
    add_json(r)
    r.set_defaults(handler=cmd_clock_repair)


def _time(value: Any) -> str | None:
    return None if value is None else codec.format_time(value)


def cmd_clock_repair(app: App) -> int:
    report = app.engine.repair_clock(dry_run=app.args.dry_run)
    removed = [
        {"key": key, "at": codec.format_time(from_us(at_us))} for key, at_us in report.removed
    ]
    result: dict[str, Any] = {
        "dry_run": bool(app.args.dry_run),
        "clock_before": _time(report.clock_before),
        "clock_after": _time(report.clock_after),
        "removed_events": removed,
        "persons_changed": None if report.replay is None else report.replay.persons_changed,
    }
    if app.args.json:
        out_json(result)
        return 0
    verb = "would remove" if app.args.dry_run else "removed"
    app.out.print(
        f"clock {result['clock_before']} -> {result['clock_after']}; "
        f"{verb} {len(report.removed)} event(s) from the future"
    )
    for item in removed[:20]:
        app.out.print(f"  {item['at']}  {item['key']}")
    if result["persons_changed"] is not None:
        app.out.print(f"recomputed: {result['persons_changed']} person(s) changed")
    return 0

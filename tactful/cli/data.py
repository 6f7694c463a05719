"""``tactful import``, ``tactful tick`` and ``tactful replay``: commands that change the store."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tactful.cli.base import App, CommandError, UsageError, add_json, out_json, parse_now
from tactful.core import codec
from tactful.delivery.router import preview, routes_of
from tactful.engine.importer import ChangedDuringImport, ImportSummary, import_files
from tactful.engine.replay import Corrections, ReplayReport
from tactful.zendesk.files import ParseError

DELIVERY_KINDS = ("audience_add", "audience_remove", "profile", "event")


class RateColumn(ProgressColumn):
    """The task's rate, in its own unit (``events/s``), over rich's recent samples."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"– {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import",
        help="import Zendesk API JSON (.json or .jsonl): export pages, single objects, webhooks",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="files to import")
    p.add_argument("--batch-size", type=int, default=None, help="events per transaction")
    p.add_argument(
        "--by-person",
        action="store_true",
        help="read every file first, then fold each person's events together (the same "
        "result; faster on a large store, memory in proportion to the files)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --by-person: processes folding at once (default: the number of cores; on "
        "SQLite one fewer: they fold on snapshots and this process writes)",
    )
    add_json(p)
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("tick", help="advance the engine clock, firing time-based changes")
    p.add_argument("--now", metavar="T", default=None, help="advance to T (default: wall clock)")
    add_json(p)
    p.set_defaults(handler=cmd_tick)

    p = sub.add_parser(
        "replay",
        help="recompute everyone from the stored event log (after a config change) and tell "
        "destinations only the net change",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show who would enter and exit each segment and what each destination would be "
        "sent, and change nothing",
    )
    p.add_argument(
        "--by-person",
        action="store_true",
        help="fold the log component by component (each person loaded and saved once), as "
        "`import --by-person` does; the same result (a replay stopped half way goes on the "
        "way it began)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --by-person: processes folding at once (default: the number of cores; on "
        "SQLite one fewer: they fold on snapshots and this process writes); a dry run folds "
        "in one",
    )
    add_json(p)
    p.set_defaults(handler=cmd_replay)


def cmd_import(app: App) -> int:
    paths = [Path(f) for f in app.args.files]
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise CommandError(
            f"{', '.join(folders)}: a directory, not a file; name its files "
            f"(e.g. tactful import {folders[0].rstrip('/')}/*.json)"
        )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CommandError(f"no such file: {', '.join(missing)}")
    engine = app.engine
    batch_size = app.args.batch_size or app.settings.engine.batch_size
    workers = _workers(app)
    total = sum(p.stat().st_size for p in paths)
    try:
        if app.console.is_terminal and not app.args.json:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=app.console,
                transient=True,
            ) as progress:
                task = progress.add_task("importing", total=total)
                summary = import_files(
                    engine,
                    paths,
                    batch_size=batch_size,
                    on_progress=lambda n: progress.advance(task, n),
                    by_person=app.args.by_person,
                    workers=workers,
                )
        else:
            summary = import_files(
                engine, paths, batch_size=batch_size, by_person=app.args.by_person, workers=workers
            )
    except ChangedDuringImport as exc:
        raise CommandError(str(exc)) from exc
    except ParseError as exc:  # from the check pass: nothing was imported
        raise CommandError(f"{exc}; nothing was imported (no file of this import)") from exc
    if app.args.json:
        out_json(summary.as_json())
    else:
        print_summary(app, summary)
    if summary.records == 0:
        app.console.print(
            "[red]error:[/red] nothing usable was found: no document of these files holds "
            "Zendesk users, tickets, ticket events or ratings (see what was not imported above)",
            highlight=False,
        )
        return 1
    return 0


def _workers(app: App) -> int:
    """``--workers``, or its default: the cores; on SQLite one fewer (this process writes
    what the others fold, on one of them)."""
    workers: int | None = app.args.workers
    if workers is None:
        cores = os.cpu_count() or 1
        workers = max(1, cores - 1) if app.settings.store.url.startswith("sqlite:") else cores
    if workers < 1:
        raise CommandError("--workers must be at least 1")
    return workers


def print_summary(app: App, s: ImportSummary) -> None:
    rejected = sum(s.rejected.values())
    skipped = sum(s.skipped.values())
    app.out.print(
        f"read {s.records:,} events from {s.documents:,} documents in {s.files} files "
        f"({s.records_per_second:,.0f} events/s): {s.applied:,} applied, "
        f"{s.duplicates:,} duplicates, {rejected:,} rejected; {skipped:,} objects skipped; "
        f"{s.entered:,} segment entries, {s.exited:,} exits",
        highlight=False,
        markup=False,
    )
    if s.skipped or s.rejected:
        table = Table("not imported", "count", title=None)
        for reason, n in sorted((s.skipped + s.rejected).items()):
            table.add_row(reason, str(n))
        app.out.print(table)
        for line in s.examples[:5]:
            app.out.print(f"  e.g. {line}", highlight=False, markup=False)


def cmd_tick(app: App) -> int:
    now = parse_now(app.args.now)
    engine = app.engine
    before = engine.clock()
    stats = engine.tick(now)
    after = engine.clock()
    result = {
        "clock_before": None if before is None else codec.format_time(before),
        "clock": None if after is None else codec.format_time(after),
        "timers_fired": stats.timers_fired,
        "entered": stats.entered,
        "exited": stats.exited,
        "state_changes": stats.state_changes,
    }
    if now is not None and before is not None and now < before:
        result["note"] = "the engine clock never goes back; it stayed where it was"
    if app.args.json:
        out_json(result)
    else:
        app.out.print(
            f"clock {result['clock_before']} → {result['clock']}: {stats.timers_fired} timers "
            f"fired, {stats.entered} entries, {stats.exited} exits, "
            f"{stats.state_changes} state changes"
        )
        if "note" in result:
            app.out.print(str(result["note"]))
    return 0


def cmd_replay(app: App) -> int:
    engine, dry_run = app.engine, bool(app.args.dry_run)
    batch_size, by_person = app.settings.engine.batch_size, bool(app.args.by_person)
    if dry_run and (app.args.workers or 1) > 1:
        raise UsageError(
            "--workers: a dry run folds in one process (its work is rolled back, in a "
            "transaction no worker can see); leave --workers out"
        )
    workers = 1 if dry_run else _workers(app)
    routes = routes_of(app.settings)

    def count(rows: Corrections) -> dict[str, Counter[str]]:
        return preview(rows, routes)

    if app.console.is_terminal and not app.args.json:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn("events"),
            TimeRemainingColumn(),
            console=app.console,
            transient=True,
        ) as progress:
            task = progress.add_task("replaying events", total=None)
            report = engine.replay(
                batch_size,
                dry_run=dry_run,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                count=count,
                by_person=by_person,
                workers=workers,
            )
    else:
        report = engine.replay(
            batch_size, dry_run=dry_run, count=count, by_person=by_person, workers=workers
        )
    destinations = {r.name: report.destinations.get(r.name, Counter()) for r in routes}
    if app.args.json:
        out_json(replay_json(report, destinations))
        return 0
    print_replay(app, report, destinations)
    return 0


def replay_json(report: ReplayReport, destinations: dict[str, Counter[str]]) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "events": report.events,
        "persons_before": report.persons_before,
        "persons_after": report.persons_after,
        "persons_changed": report.persons_changed,
        "messages": report.messages,
        "resumed": report.resumed,
        "segments": report.segments,
        "destinations": {
            name: {kind: counts[kind] for kind in DELIVERY_KINDS}
            for name, counts in destinations.items()
        },
        "changed": report.changed,
    }


def print_replay(app: App, report: ReplayReport, destinations: dict[str, Counter[str]]) -> None:
    verb = "would change" if report.dry_run else "changed"
    app.out.print(
        f"{'dry run: ' if report.dry_run else ''}replayed {report.events} events: "
        f"{report.persons_after} persons ({report.persons_before} before), "
        f"{report.persons_changed} {verb}"
        + (" (finished a replay stopped half way)" if report.resumed else "")
    )
    if report.segments:
        table = Table("segment", "enter", "exit", title=None)
        for name, entry in sorted(report.segments.items()):
            table.add_row(name, str(entry["enter"]), str(entry["exit"]))
        app.out.print(table)
    table = Table("destination", *DELIVERY_KINDS, title=None)
    for name, counts in destinations.items():
        table.add_row(name, *(str(counts[kind]) for kind in DELIVERY_KINDS))
    if destinations:
        app.out.print(table)
    app.out.print(
        "nothing was changed (dry run)"
        if report.dry_run
        else 'destinations get only these corrections, stamped "replayed": true'
    )
    for item in report.changed:
        app.out.print(
            f"  {item['person_id']}: {item['before']} → {item['after']}",
            highlight=False,
            markup=False,
        )
    if report.persons_changed > len(report.changed):
        app.out.print(f"  … and {report.persons_changed - len(report.changed)} more")

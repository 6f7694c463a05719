"""``tactful demo``: the live demo (server, Zendesk simulator, fake destinations), or with
``--offline`` generated Zendesk exports → a local SQLite store → segments and people.

Both need no secrets and no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from tactful.bootstrap import bootstrap
from tactful.cli.base import App, CommandError, human
from tactful.config import load_settings, starter_config_text
from tactful.engine.importer import import_files
from tactful.readmodels.views import clock_of, person_json
from tactful.testing.sample import generate_exports


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="live demo: server, Zendesk simulator, fake destinations (--offline: import only)",
    )
    p.add_argument("--dir", default="demo-data", help="where to put the config and the store")
    p.add_argument("--port", type=int, default=8000, help="port of the dashboard (default 8000)")
    p.add_argument("--customers", type=int, default=300, help="simulated customers (default 300)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated hours per real second (default 1)",
    )
    p.add_argument(
        "--history-days",
        type=float,
        default=35.0,
        metavar="DAYS",
        help="simulated days played as fast as possible before the live part, so that the "
        "report's 30-day window has passed for the launch (default 35; 0: none)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="no server: generate sample exports, import them, show segments and people",
    )
    p.add_argument(
        "--persons", type=int, default=None, help="--offline: customers to generate (default 2000)"
    )
    p.set_defaults(handler=cmd_demo)


def cmd_demo(app: App) -> int:
    if app.args.offline:
        return cmd_demo_offline(app)
    from tactful.demo.runner import DemoError, DemoOptions, run_demo

    args = app.args
    if args.persons is not None:
        raise CommandError("--persons is for --offline; the live demo takes --customers N")
    if args.customers < 1 or args.speed <= 0 or (args.duration is not None and args.duration <= 0):
        raise CommandError("--customers, --speed and --duration must be positive")
    if not 0 <= args.history_days <= 365:
        raise CommandError("--history-days must be between 0 and 365")
    options = DemoOptions(
        port=args.port,
        directory=Path(args.dir),
        customers=args.customers,
        speed=args.speed,
        history_days=args.history_days,
        duration=args.duration,
    )
    try:
        return run_demo(options)
    except DemoError as exc:
        raise CommandError(str(exc)) from exc


def cmd_demo_offline(app: App) -> int:
    if app.args.persons is None:
        app.args.persons = 2000
    out = Path(app.args.dir)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "tactful.toml"
    db = out / "tactful.db"
    for stale in (db, out / "tactful.db-wal", out / "tactful.db-shm"):
        stale.unlink(missing_ok=True)
    text = starter_config_text()
    config_path.write_text(
        text.replace('url = "sqlite:///tactful.db"', f'url = "sqlite:///{db.as_posix()}"'),
        encoding="utf-8",
    )
    settings = load_settings(config_path)
    if settings.store.url != f"sqlite:///{db.as_posix()}":
        settings.store.url = f"sqlite:///{db.as_posix()}"
    app.out.print(
        f"[bold]1.[/bold] generating Zendesk exports for {app.args.persons} customers in {out}/ …"
    )
    files = generate_exports(out / "exports", persons=app.args.persons)
    app.out.print(
        f"   {files.users} users, {files.tickets} tickets (+{files.ticket_updates} later "
        f"versions), {files.ticket_events} ticket events, {files.ratings} ratings"
    )
    engine = bootstrap(settings).engine
    app.out.print(f"[bold]2.[/bold] importing into {settings.store.url} …")
    summary = import_files(engine, files.paths, batch_size=settings.engine.batch_size)
    app.out.print(
        f"   {summary.records} records in {summary.seconds:.1f}s "
        f"({summary.records_per_second:,.0f} records/s), {summary.duplicates} duplicates, "
        f"{sum(summary.skipped.values()) + sum(summary.rejected.values())} not imported"
    )
    with engine.store.reader() as reader:
        clock = clock_of(reader)
        counts = reader.segment_counts()
        states = reader.state_counts()
        sample_ids = (
            [pid for pid, _ in reader.segment_members(settings.segments[0].name, None, 3)]
            if settings.segments
            else []
        )
        people = [person_json(reader, engine.rules, {}, pid) for pid in sample_ids]
    app.out.print(
        f"[bold]3.[/bold] segments as of the engine clock {clock} (the time of the newest event):"
    )
    table = Table("segment", "members", "holdout", "rule")
    for seg in settings.segments:
        n, h = counts.get(seg.name, (0, 0))
        table.add_row(seg.name, str(n), str(h), seg.when)
    app.out.print(table)
    app.out.print("   support states: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())))
    for person in people:
        if person is None:
            continue
        segs = [name for name, s in person["segments"].items() if s["member"]]
        state = person["state"]
        app.out.print(
            f"   {person['person_id']}: {state['support_state']}, "
            f"{state['open_ticket_count']} open, reason {human(state['ticket_reason'])}, "
            f"CSAT {human(state['csat_score'])} → {human(segs)}",
            highlight=False,
        )
    example = sample_ids[0] if sample_ids else "KEY"
    cli = f".venv/bin/tactful --config {config_path}"
    app.out.print(
        f"\nTry: {cli} segments\n     {cli} person {example} --json\n"
        f"     {cli} tick --now 2026-12-31T00:00:00Z",
        highlight=False,
    )
    return 0

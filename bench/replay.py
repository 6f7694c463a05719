"""Replay and import benchmark (issue 17): what destinations are told, and what a replay costs.

For each N (persons): generate export pages (``tactful.testing.sample.generate_exports``), import
them into a fresh SQLite store with the starter configuration and three recording
destinations (a Meta audience on ``suppress_promos``, Customer.io, a webhook), deliver
everything (``sync``), then:

- replay with no configuration change, deliver, count the deliveries (should be 0);
- rename one reason (``damaged`` -> ``arrived_damaged``), replay, deliver, count the
  deliveries against the persons the replay changed;
- the replay's time and peak traced memory (``tracemalloc``: Python allocations only);
- the rename's replay runs as ``tactful replay --json`` in a child process: its wall time and
  peak resident memory (``ru_maxrss`` of the child: the whole process, SQLite's cache too);
- then, while one more replay runs on a store connection of its own (as ``tactful replay``
  in another process), a "webhook" in another thread submits one new ticket every 10 ms to
  the group-commit writer and waits for its answer (what ``tactful serve`` does before
  acknowledging a webhook): the acknowledgement's latency p50 / p99 / max, how many failed,
  whether its last ticket is in the state once the writer has caught up after the replay,
  and the replay's longest transaction (each of its commits timed).

Separately, import 1,000 users with no tickets into a fresh store and count deliveries.

    .venv/bin/python bench/replay.py                         # N = 1000, 10000
    .venv/bin/python bench/replay.py --persons 2000 --history all
    .venv/bin/python bench/replay.py --persons 100000 --cost-only   # no counts, no tracing
    .venv/bin/python bench/replay.py --persons 10000 100000 --rate-only --by-person
    .venv/bin/python bench/replay.py --persons 10000 --rate-only --by-person --workers 1 2

``--by-person``: every replay folds the log by person (``tactful replay --by-person``).
``--rate-only``: only the import and ``tactful replay`` (its records/s and peak RSS).
``--workers W [W ...]`` (with ``--by-person``): ``tactful replay`` after the rename runs with
``--workers W`` for each W, each on a copy of the store as it was before it; a second table
shows each count's wall and CPU rates (CPU: the replay's process and its workers) and the
speedup over the first count, with the load average when each ran.

Figures only; this is not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from benchlib import load_now, machine, table

from tactful.config import settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, Incoming, rules_from_settings
from tactful.engine.importer import import_files
from tactful.engine.writer import Writer
from tactful.store.sqlite import open_store
from tactful.testing import RecordingDestination, ticket
from tactful.testing.sample import generate_exports

DESTINATIONS = """
[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress_promos"
audience_id = "1"
access_token = "t"

[[destinations]]
name = "cio"
type = "customerio"
site_id = "s"
api_key = "k"

[[destinations]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/t"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
"""


def starter(history: str) -> str:
    text = (resources.files("tactful") / "templates" / "tactful.toml").read_text("utf-8")
    return text.replace('history = "current"', f'history = "{history}"') + DESTINATIONS


class World:
    def __init__(self, db: Path, config: str) -> None:
        self.store = open_store(f"sqlite:///{db}")
        self.configure(config)

    def configure(self, config: str) -> None:
        settings = settings_from_toml(config, environ={})
        self.engine = Engine(rules_from_settings(settings), self.store)
        self.dests = {
            "meta": RecordingDestination(
                "meta", "meta_audience", purpose="ads", kinds=("audience_add", "audience_remove")
            ),
            "cio": RecordingDestination(
                "cio", "customerio", purpose="email", kinds=("profile", "event", "erase")
            ),
            "hook": RecordingDestination("hook", "webhook", kinds=("event",)),
        }
        self.worker = DeliveryWorker(settings, self.store, destinations=self.dests)

    def sync(self) -> int:
        """Deliver what is owed; how many items the destinations acknowledged."""
        for dest in self.dests.values():
            dest.delivered.clear()
        self.worker.sync()
        return sum(len(d.delivered) for d in self.dests.values())


@dataclass
class Measured:
    persons: int
    import_deliveries: int
    noop: int
    rename: int
    changed: int
    replay_seconds: float
    replay_peak_mb: float
    cli_seconds: float  # ``tactful replay`` (the rename), in a child process
    cli_rss_mb: float  # its peak resident memory
    webhook: Latency | None  # None: not measured (--rate-only)
    cli_rate: float = 0.0  # events replayed per second by ``tactful replay``
    replays: list[CliReplay] | None = None  # ``tactful replay`` with each --workers count


@dataclass
class CliReplay:
    """One ``tactful replay --json`` (the rename) in a child process."""

    workers: int
    changed: int  # persons
    events: int
    seconds: float  # wall
    cpu_seconds: float  # the replay's process and its workers
    rss_mb: float  # the largest child's peak resident memory so far
    load: str  # the load average as it ended

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


@dataclass
class Latency:
    """Webhook applies measured while a replay ran."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    last_kept: bool  # the last ticket acknowledged during the replay is in the state after it
    failed: int = 0  # submissions answered with an error
    longest_tx_ms: float = 0.0  # the replay's longest transaction
    replay_seconds: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def during_replay(engine: Engine) -> tuple[Any, Latency]:
    """Run a replay on a store connection of its own while another thread submits one new
    ticket every 10 ms to ``engine``'s writer and waits for each acknowledgement."""
    latencies: list[float] = []
    failed: list[BaseException] = []
    done = threading.Event()
    last: list[int] = []
    writer = Writer(engine)
    writer.start()

    def submit(n: int) -> None:
        event = ticket(990_000_000 + n, datetime.now(UTC), requester_id=990_000_000 + n)
        started = time.perf_counter()
        try:
            writer.submit([Incoming([event], None, "webhook:bench")]).result()
        except Exception as exc:  # e.g. the store's busy timeout ran out
            failed.append(exc)
        latencies.append(time.perf_counter() - started)
        last[:] = [990_000_000 + n]

    def webhook() -> None:
        n = 0
        while not done.is_set():
            n += 1
            submit(n)
            time.sleep(0.01)

    replayer = Engine(engine.rules, open_store(engine.store.url))
    longest = timed(replayer.store)
    thread = threading.Thread(target=webhook)
    thread.start()
    try:
        time.sleep(0.05)  # the first webhooks run before the replay starts
        started = time.perf_counter()
        report = replayer.replay(by_person=BY_PERSON[0])
        replay_seconds = time.perf_counter() - started
    finally:
        done.set()
        thread.join()
        replayer.store.close()
    count, final = len(latencies), list(last)
    submit(0)  # queued behind whatever waited for the replay, or applied after it
    deadline = time.monotonic() + 600
    while writer.inbox is not None and writer.inbox.pending() and time.monotonic() < deadline:
        time.sleep(0.05)  # the writer applies the inbox a group at a time
    writer.stop()
    with engine.store.reader() as reader:
        kept = bool(final) and len(reader.load_tickets(final)) == 1
    ms = [x * 1000 for x in latencies[:count]]
    return report, Latency(
        len(ms),
        percentile(ms, 0.5),
        percentile(ms, 0.99),
        max(ms, default=0.0),
        kept,
        len(failed),
        longest[0] * 1000,
        replay_seconds,
    )


def timed(store: Any) -> list[float]:
    """Time every transaction of ``store`` from now on; the longest, in seconds, is kept in
    the returned list's only item."""
    original = store.transaction
    longest = [0.0]

    @contextmanager
    def transaction(**kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with original(**kwargs) as tx:
                yield tx
        finally:
            longest[0] = max(longest[0], time.perf_counter() - started)

    setattr(store, "transaction", transaction)  # noqa: B010
    return longest


BY_PERSON = [False]  # --by-person: every replay folds the log by person (set by main)
WORKERS = [1]  # --workers: ``tactful replay`` (the rename) with each count (set by main)


def cli_replay(db: Path, config: str, workers: int = 1) -> CliReplay:
    """``tactful replay --json`` in a child process (``--by-person --workers W`` with
    ``--by-person``)."""
    path = db.with_suffix(".toml")
    path.write_text(config.replace('url = "sqlite:///tactful.db"', f'url = "sqlite:///{db}"'))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    tactful = Path(sys.executable).with_name("tactful")
    done = subprocess.run(
        [str(tactful), "--config", str(path), "replay", "--json"]
        + (["--by-person", "--workers", str(workers)] if BY_PERSON[0] else []),
        check=True,
        stdout=subprocess.PIPE,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # its workers too, once waited for
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    report = orjson.loads(done.stdout)
    return CliReplay(
        workers,
        int(report["persons_changed"]),
        int(report["events"]),
        seconds,
        cpu,
        max(after.ru_maxrss, usage.ru_maxrss) / 1024,  # KiB, the largest child
        load_now(),
    )


def copy_store(db: Path, to: Path) -> Path:
    """A copy of the SQLite store ``db`` (its WAL included), for another replay to start
    from where this one starts."""
    with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
        source.backup(target)
    source.close()
    target.close()
    return to


def traced(work: Callable[[], Any]) -> tuple[Any, float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = work()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak / 1e6


def bench_size(
    persons: int, work: Path, history: str, cost_only: bool = False, rate_only: bool = False
) -> Measured:
    """``cost_only``: no deliveries counted and no traced replay (-1 in their columns): the
    import, ``tactful replay`` after the rename, and the replay with webhooks only.
    ``rate_only``: the import and ``tactful replay`` after the rename only."""
    cost_only = cost_only or rate_only
    files = generate_exports(work / f"exports-{persons}", persons=persons)
    config = starter(history)
    w = World(work / f"replay-{persons}.db", config)
    import_files(w.engine, files.paths, batch_size=20000)
    imported = noop = rename = -1
    seconds = peak = -1.0
    if not cost_only:
        imported = w.sync()
        _, seconds, peak = traced(lambda: w.engine.replay(by_person=BY_PERSON[0]))
        noop = w.sync()
    renamed = config.replace('name = "damaged"', 'name = "arrived_damaged"')
    db = work / f"replay-{persons}.db"
    replays = []
    for count in WORKERS[1:]:  # each on the store as the first finds it
        copy = copy_store(db, work / f"replay-{persons}-w{count}.db")
        replays.append(cli_replay(copy, renamed, count))
        for leftover in work.glob(f"{copy.name}*"):
            os.unlink(leftover)
    replays.insert(0, cli_replay(db, renamed, WORKERS[0]))
    first = replays[0]
    changed, events, cli_seconds, cli_rss = first.changed, first.events, first.seconds, first.rss_mb
    w.configure(renamed)
    if not cost_only:
        rename = w.sync()
    # after the counts: its tickets are new deliveries
    latency = None if rate_only else during_replay(w.engine)[1]
    w.store.close()
    return Measured(
        persons,
        imported,
        noop,
        rename,
        changed,
        seconds,
        peak,
        cli_seconds,
        cli_rss,
        latency,
        events / cli_seconds if cli_seconds > 0 else 0.0,
        replays,
    )


def ticketless(work: Path, history: str) -> int:
    users = [
        {
            "id": 9000 + u,
            "email": f"user{u}@example.com",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for u in range(1000)
    ]
    page = work / "users-ticketless.json"
    page.write_bytes(orjson.dumps({"users": users, "end_of_stream": True}))
    w = World(work / "ticketless.db", starter(history))
    import_files(w.engine, [page])
    sent = w.sync()
    w.store.close()
    return sent


def _n(value: int) -> str:
    return "-" if value < 0 else f"{value:,}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--history", choices=("current", "all"), default="current")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="skip the delivery counts and the traced replay (for large N)",
    )
    parser.add_argument(
        "--rate-only",
        action="store_true",
        help="only the import and `tactful replay` (records/s, peak RSS)",
    )
    parser.add_argument(
        "--by-person", action="store_true", help="replay by person (`tactful replay --by-person`)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="W",
        help="with --by-person: `tactful replay --workers W` for each W, each on a copy of the "
        "store (e.g. --workers 1 2)",
    )
    args = parser.parse_args(argv)
    if args.workers != [1] and not args.by_person:
        parser.error("--workers counts replay --by-person: add --by-person")
    BY_PERSON[0] = args.by_person
    WORKERS[:] = args.workers
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp)
        rows = []
        measured = []
        for n in args.persons:
            m = bench_size(n, work, args.history, args.cost_only, args.rate_only)
            measured.append(m)
            hook = m.webhook
            rows.append(
                [
                    f"{m.persons:,}",
                    _n(m.import_deliveries),
                    _n(m.noop),
                    _n(m.rename),
                    f"{m.changed:,}",
                    "-" if m.replay_seconds < 0 else f"{m.replay_seconds:.1f}",
                    "-" if m.replay_peak_mb < 0 else f"{m.replay_peak_mb:.1f}",
                    f"{m.cli_seconds:.1f}",
                    f"{m.cli_rate:,.0f}",
                    f"{m.cli_rss_mb:.0f}",
                    *(
                        ["-"] * 5
                        if hook is None
                        else [
                            f"{hook.count:,} ({hook.failed} failed)",
                            f"{hook.p50_ms:.1f} / {hook.p99_ms:.0f} / {hook.max_ms:.0f}",
                            f"{hook.replay_seconds:.1f}",
                            f"{hook.longest_tx_ms:.0f}",
                            "yes" if hook.last_kept else "NO",
                        ]
                    ),
                ]
            )
        sent = None if args.cost_only or args.rate_only else ticketless(work, args.history)
    print(machine())
    print(
        table(
            [
                "persons",
                "import deliveries",
                "after no-op replay",
                "after 1-reason rename",
                "persons changed",
                "no-op replay s",
                "no-op replay peak MB (traced)",
                "tactful replay s",
                "tactful replay records/s",
                "tactful replay peak RSS MB",
                "webhooks during replay",
                "webhook ack ms p50 / p99 / max",
                "replay s (webhooks)",
                "longest replay tx ms",
                "last webhook kept",
            ],
            rows,
            title=f"Replay{' by person' if args.by_person else ''}: deliveries and cost "
            f"([delivery] history = {args.history!r})",
        )
    )
    if sent is not None:
        print(f"\n1,000 ticketless users imported: {sent} deliveries")
    if len(WORKERS) > 1:
        print()
        print(workers_table(measured))
    return 0


def workers_table(measured: list[Measured]) -> str:
    """``tactful replay --by-person --workers W`` for each W and N: wall and CPU rates, the
    speedup over the first count (wall), the load average when it ended."""
    rows = []
    for m in measured:
        first = (m.replays or [])[0]
        for r in m.replays or []:
            rows.append(
                [
                    f"{m.persons:,}",
                    str(r.workers),
                    f"{r.events:,}",
                    f"{r.seconds:.1f}",
                    f"{r.rate:,.0f}",
                    f"{r.cpu_seconds:.1f}",
                    f"{r.cpu_rate:,.0f}",
                    f"×{first.seconds / r.seconds:.2f}" if r.seconds > 0 else "-",
                    f"{r.changed:,}",
                    r.load,
                ]
            )
    return table(
        [
            "persons",
            "workers",
            "events",
            "wall s",
            "records/s",
            "CPU s (all processes)",
            "records/s of CPU",
            "speedup (wall)",
            "persons changed",
            "load 1/5/15 min",
        ],
        rows,
        title="tactful replay --by-person --workers W (after the rename), each on the same store",
    )


if __name__ == "__main__":
    sys.exit(main())

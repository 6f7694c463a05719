"""Tick benchmark: the cost of ``Engine.tick(T)`` firing D due timers among P persons.

For each population P a SQLite store is built directly (the fast path: one transaction, one
``executemany`` per table over generators, blobs by ``tactful.store.records``, the schema by the
store's migrations, ``synchronous=OFF`` for the builder only).
Every person is a realistic one: the engine itself imports a few template customers (a ticket
opened and solved, about shipping, a reaction, a refund, a product question), and each
person is a copy of one template shifted in time, with its own person id, ticket and holdout
draws. Every person has a timer. Each run has a set of D persons of its own, due in the hour
before its moment T_r = T + r × 2 h (the "recently resolved" week ends: support_state changes
and the person enters the ``reintroduce`` segment); the others fall due later (after the last
run's moment, up to about four days on). Each tick runs in a child process of its own that
opens the built store, ticks to T_r (firing exactly its run's D timers) and reports its RSS
high-water mark (``VmHWM``), so the peak memory of a tick can be compared across
populations. The runs share the store rather than each copying it: copying 1.3 GB before
every run left the page cache and the disk busy, and 1M-person ticks then ranged 140–487 ms.
Every store is built first, then the runs go in rounds (run 1 of every population, then run
2…), so that a slow spell of a shared machine does not fall on one population only.

    .venv/bin/python bench/tick.py                               # P = 10k, 100k, 1M; D = 1000
    .venv/bin/python bench/tick.py --persons 1000000 --due 1000

Figures only; this is not a timed test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FLAT_RATIO,
    STORE_LABELS,
    TICK_FLAT_RATIO,
    Row,
    Unavailable,
    code_version,
    load_now,
    machine,
    mb,
    median,
    num,
    pg_cluster,
    pg_database,
    run_child,
    secs,
    sqlite_url,
    table,
    verdict,
    vm_hwm_kb,
    write_result,
    write_unavailable,
)

from tactful.config import Settings, settings_from_toml, starter_config_text
from tactful.core import codec
from tactful.core.events import TicketVersion
from tactful.core.graph import person_id_for
from tactful.core.segments import in_holdout
from tactful.core.state import TicketRecord
from tactful.engine.engine import CLOCK_KEY, SALT_KEY, Engine, rules_from_settings
from tactful.store.base import PersonRow
from tactful.store.records import dump_facts, dump_state, dump_ticket, to_us
from tactful.store.sqlite import SQLiteTx, open_store, sqlite_path

DEFAULT_POPULATIONS = (10_000, 100_000, 1_000_000)
T = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)  # the tick's target moment
DUE_WINDOW = timedelta(hours=1)  # run r's due timers fall in (T_r - 1h, T_r]
RUN_STEP = timedelta(hours=2)  # T_r = T + r * RUN_STEP
LATER_FROM = timedelta(hours=1)  # the others in (T_last + 1h, T_last + 1h + LATER_SPAN]
LATER_SPAN = timedelta(days=4)
CLOCK = T - DUE_WINDOW - timedelta(minutes=1)  # the engine clock of the built store
SALT = "bench-salt-0123456789abcdef"
USER_BASE = 22_000_000_000_000
TICKET_BASE = 50_000_000
CHUNK = 50_000  # persons between flushes of the side tables

# (tags, subject, priority): one ticket each, opened and solved; reasons per the starter config.
TEMPLATE_TICKETS = (
    (("shipping",), "Where is my order #123456?", None),
    (("irritation",), "Skin irritation after using the Hydrating Serum", "high"),
    (("refund",), "Refund for order #234567", "normal"),
    (("how_to",), "How do I use the Retinol Night Cream with retinol?", "low"),
)


def starter_settings() -> Settings:
    return settings_from_toml(starter_config_text(), source="bench (starter config)")


@dataclass(frozen=True)
class Template:
    """A person as the engine stored it, waiting for its next timer."""

    row: PersonRow
    ticket: TicketRecord


def make_templates(settings: Settings, work: Path) -> list[Template]:
    """Let the engine import a few customers; read back what it stored for each."""
    db = work / "template.db"
    store = open_store(sqlite_url(db))
    engine = Engine(rules_from_settings(settings), store)
    created = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    events = []
    for k, (tags, subject, priority) in enumerate(TEMPLATE_TICKETS):
        tid, uid = TICKET_BASE - 100 + k, USER_BASE - 100 + k
        steps = (
            ("new", created),
            ("open", created + timedelta(hours=2)),
            ("solved", created + timedelta(days=1)),
        )
        for status, at in steps:
            events.append(
                TicketVersion(
                    key=f"zendesk:ticket:{tid}:{codec.format_time(at)}",
                    at=at,
                    ticket_id=tid,
                    created_at=created,
                    updated_at=at,
                    status=status,
                    priority=priority,
                    tags=tags,
                    subject=subject,
                    channel="web",
                    requester_id=uid,
                )
            )
    engine.apply(events)
    engine.tick(created + timedelta(days=2))  # past every cooldown: waiting for the week's end
    out = []
    with store.reader() as reader:
        for k in range(len(TEMPLATE_TICKETS)):
            (pid,) = reader.find_persons("zendesk_user_id", str(USER_BASE - 100 + k))
            row = reader.load_persons([pid])[pid]
            (ticket,) = reader.tickets_of([pid])[pid]
            if row.wake is None:
                raise SystemExit(f"template {k} has no timer: the starter rules changed?")
            out.append(Template(row, ticket))
    store.close()
    return out


def _shift_ticket(ticket: TicketRecord, delta: timedelta, tid: int, uid: int) -> TicketRecord:
    v = ticket.version
    assert v is not None
    version: TicketVersion = replace(
        v,
        key=f"zendesk:ticket:{tid}:{codec.format_time(v.updated_at + delta)}",
        at=v.at + delta,
        ticket_id=tid,
        created_at=v.created_at + delta,
        updated_at=v.updated_at + delta,
        requester_id=uid,
    )
    return TicketRecord(
        tid,
        version,
        ticket.reason,
        ticket.risk,
        None if ticket.last_risk_at is None else ticket.last_risk_at + delta,
        frozenset((at + delta, status) for at, status in ticket.observations),
    )


# Stand-ins for a person's ticket id and Zendesk user id inside a cached ticket blob.
_TID_MARK, _UID_MARK = 987_654_321_987_001, 876_543_210_876_002


@dataclass(frozen=True)
class _Shifted:
    """One template shifted by one delta, already in the store's persistence forms."""

    state: bytes
    support_state: str
    memberships: tuple[tuple[str, int, int | None], ...]  # segment, since_us, false_since_us
    ticket: bytes  # with _TID_MARK / _UID_MARK in place of the ids
    wake_us: int
    created_us: int


def _shifted(tpl: Template, delta: timedelta) -> _Shifted:
    row = tpl.row
    assert row.wake is not None
    state = {k: (v + delta if isinstance(v, datetime) else v) for k, v in row.state.items()}
    memberships = tuple(
        (
            seg,
            to_us(m.since + delta) if m.since is not None else to_us(row.wake),
            None if m.false_since is None else to_us(m.false_since + delta),
        )
        for seg, m in sorted(row.memberships.items())
        if m.member
    )
    ticket = dump_ticket(_shift_ticket(tpl.ticket, delta, _TID_MARK, _UID_MARK))
    return _Shifted(
        dump_state(state),
        str(state.get("support_state", "clear")),
        memberships,
        ticket,
        to_us(row.wake + delta),
        row.created_us + delta // timedelta(microseconds=1),
    )


@dataclass(frozen=True)
class Built:
    path: Path
    persons: int
    due: int
    seconds: float
    size: int
    sets: int = 1  # due sets: one per run (each run fires its own)
    url: str | None = None  # a PostgreSQL database holding the same rows (``--store postgresql``)

    @property
    def store_url(self) -> str:
        return self.url or sqlite_url(self.path)


def run_moment(r: int) -> datetime:
    """T_r: the moment run r ticks to."""
    return T + r * RUN_STEP


def build_store(
    path: Path,
    persons: int,
    due: int,
    templates: Sequence[Template],
    settings: Settings,
    sets: int = 1,
) -> Built:
    """P persons (``sets`` sets of D, set r due before T_r), each with a timer, a ticket and
    its memberships.

    Rows go straight into the store's tables (its schema, made by its migrations; blobs by
    ``tactful.store.records``), one ``executemany`` per table over generators, in one
    transaction. A template shifted by a delta is dumped once and reused (deltas are whole
    seconds for the due persons and whole minutes for the others).
    """
    began = time.perf_counter()
    store = open_store(sqlite_url(path))  # the schema, by the store's migrations
    store.close()
    holdouts = {s.name: s.holdout for s in settings.segments}
    rng = random.Random(persons * 7919 + due)
    # person -> its run's moment (each set of D persons is due in the hour before it)
    due_at = {i: run_moment(k // due) for k, i in enumerate(rng.sample(range(persons), due * sets))}
    later_from = run_moment(sets - 1) + LATER_FROM
    cache: dict[tuple[int, timedelta], _Shifted] = {}
    tid_mark, uid_mark = str(_TID_MARK).encode(), str(_UID_MARK).encode()
    memberships: list[tuple[str, str, int, int | None, int]] = []
    tickets: list[tuple[int, str, bytes]] = []

    def people() -> Iterator[tuple[str, bytes, bytes, str, int, int]]:
        facts = dump_facts(templates[0].row.facts)
        for i in range(persons):
            k = i % len(templates)
            tpl_wake = templates[k].row.wake
            assert tpl_wake is not None
            moment = due_at.get(i)
            if moment is not None:
                wake = moment - timedelta(seconds=rng.randrange(int(DUE_WINDOW.total_seconds())))
            else:
                later = rng.randrange(1, int(LATER_SPAN.total_seconds()) // 60)
                wake = later_from + timedelta(minutes=later)
            delta = wake - tpl_wake
            shifted = cache.get((k, delta))
            if shifted is None:
                shifted = cache[(k, delta)] = _shifted(templates[k], delta)
            uid, tid = USER_BASE + i, TICKET_BASE + i
            pid = person_id_for(SALT, ("zendesk_user_id", str(uid)))
            for seg, since, false_since in shifted.memberships:
                holdout = int(in_holdout(pid, seg, holdouts.get(seg, 0.0)))
                memberships.append((seg, pid, since, false_since, holdout))
            blob = shifted.ticket.replace(tid_mark, str(tid).encode())
            tickets.append((tid, pid, blob.replace(uid_mark, str(uid).encode())))
            yield (
                pid,
                facts,
                shifted.state,
                shifted.support_state,
                shifted.created_us,
                shifted.wake_us,
            )

    def chunked() -> Iterator[tuple[str, bytes, bytes, str, int, int]]:
        # Persons in chunks; the side tables of each chunk are written after it.
        it = people()
        while True:
            n = 0
            for row in it:
                yield row
                n += 1
                if n == CHUNK:
                    break
            flush_side_tables()
            if n < CHUNK:
                return

    conn = sqlite3.connect(path, isolation_level=None)

    def flush_side_tables() -> None:
        conn.executemany(
            "INSERT INTO memberships (segment, person_id, since_us, false_since_us, holdout) "
            "VALUES (?, ?, ?, ?, ?)",
            memberships,
        )
        conn.executemany(
            "INSERT INTO tickets (ticket_id, person_id, record) VALUES (?, ?, ?)", tickets
        )
        memberships.clear()
        tickets.clear()

    conn.execute("PRAGMA journal_mode = DELETE")  # builder only: no WAL copy of the whole file
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB
    conn.execute("BEGIN")
    tx = SQLiteTx(conn)
    tx.set_meta(SALT_KEY, SALT)
    tx.set_meta(CLOCK_KEY, codec.format_time(CLOCK))
    conn.executemany(
        "INSERT INTO persons (person_id, facts, state, support_state, created_us, wake_us) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        chunked(),
    )
    # What the store keeps as it saves persons (SQLite, migration 9), counted once here.
    conn.execute("DELETE FROM state_counts")
    conn.execute(
        "INSERT INTO state_counts (support_state, persons) "
        "SELECT support_state, COUNT(*) FROM persons GROUP BY support_state"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")  # as the store keeps it
    conn.close()
    # Write the store out now: its writeback would otherwise compete with the first ticks.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return Built(path, persons, due, time.perf_counter() - began, path.stat().st_size, sets)


# The tables the builder fills, copied as they are into PostgreSQL.
COPIED_TABLES = {
    "meta": ("key", "value"),
    "persons": ("person_id", "facts", "state", "support_state", "created_us", "wake_us"),
    "memberships": ("segment", "person_id", "since_us", "false_since_us", "holdout"),
    "tickets": ("ticket_id", "person_id", "record"),
}


# The server's memory for pages, sized as a production server's would be for this data (the
# largest store, 1M persons, is 1.3 GB): PostgreSQL's default of 128 MB holds the 10k-person
# store but not the larger ones, and the ratio between populations then measured the server's
# cache, not the tick (204 ms at 10k, 432 ms at 1M; 425 ms already at 100k).
PG_SETTINGS = {"shared_buffers": "2GB"}


def copy_into_postgresql(built: Built, url: str) -> Built:
    """The built SQLite store's rows in a fresh PostgreSQL database (its schema made by the
    store's migrations), with ``COPY``; then ``VACUUM ANALYZE``, as a database that has been
    running for a while would have its statistics and visibility map. The SQLite file goes."""
    import psycopg

    began = time.perf_counter()
    open_store(url).close()  # the schema, by the store's migrations
    source = sqlite3.connect(built.path)
    with psycopg.connect(url, autocommit=True) as conn:
        for table, columns in COPIED_TABLES.items():
            names = ", ".join(columns)
            with conn.cursor() as cur:
                cur.execute(f"DELETE FROM {table}")  # what migrations wrote (meta)
                with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(row)
        conn.execute("VACUUM ANALYZE")
        size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    source.close()
    built.path.unlink()
    return replace(built, url=url, size=size, seconds=built.seconds + time.perf_counter() - began)


@dataclass
class TickRun:
    seconds: float
    idle_seconds: float  # a second tick at T right after: nothing due
    fired: int
    entered: int
    exited: int
    state_changes: int
    wal_bytes: int  # what the tick wrote to the WAL (the pages it changed)
    peak_kb: int = 0  # the tick process's RSS high-water mark (VmHWM) after both ticks
    baseline_kb: int = 0  # its high-water mark just before the tick (interpreter, store open)


@dataclass
class PopulationResult:
    built: Built
    runs: list[TickRun]

    @property
    def median_seconds(self) -> float:
        return median([r.seconds for r in self.runs])

    @property
    def peak_kb(self) -> int:
        return max(r.peak_kb for r in self.runs)


def tick_once(built: Built, r: int, settings: Settings, profile: Path | None = None) -> TickRun:
    """Tick the built store to T_r (firing run r's due set), in a child process of its own."""
    spec = {"url": built.store_url, "run": r, "profile": str(profile) if profile else None}
    child = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--worker"], json.dumps(spec).encode()
    )
    if child.returncode != 0:
        raise SystemExit(
            f"tick worker failed ({child.returncode}):\n{child.stderr.decode(errors='replace')}"
        )
    return TickRun(**json.loads(child.stdout))


def worker() -> int:
    """Child process: one tick (and an idle tick) of the built store; prints a JSON result."""
    spec = json.loads(sys.stdin.buffer.read())
    settings = starter_settings()
    profile = Path(spec["profile"]) if spec.get("profile") else None
    result = _tick(spec["url"], run_moment(int(spec["run"])), settings, profile)
    sys.stdout.write(json.dumps(result.__dict__))
    return 0


def _wal_position(url: str) -> int:
    """PostgreSQL: the WAL insert position, in bytes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
    return int(lsn[0])


def _tick(url: str, at: datetime, settings: Settings, profile: Path | None) -> TickRun:
    wal = Path(f"{sqlite_path(url)}-wal") if url.startswith("sqlite:") else None
    wal_before = _wal_position(url) if wal is None else 0
    store = open_store(url)
    engine = Engine(rules_from_settings(settings), store)
    profiler = cProfile.Profile() if profile else None
    baseline_kb = vm_hwm_kb()
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    stats = engine.tick(at)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - began
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    if wal is not None:
        wal_bytes = wal.stat().st_size if wal.exists() else 0
    else:
        wal_bytes = _wal_position(url) - wal_before
    began = time.perf_counter()
    engine.tick(at)
    idle = time.perf_counter() - began
    store.close()
    return TickRun(
        seconds,
        idle,
        stats.timers_fired,
        stats.entered,
        stats.exited,
        stats.state_changes,
        wal_bytes,
        vm_hwm_kb(),
        baseline_kb,
    )


@dataclass
class TickBench:
    results: list[PopulationResult]
    due: int
    runs: int
    profile: str | None = None
    store: str = "sqlite"


def run(
    populations: Sequence[int] = DEFAULT_POPULATIONS,
    due: int = 1000,
    runs: int = 3,
    *,
    work_dir: Path | None = None,
    profile: bool = False,
    log: bool = True,
    keep_largest: Path | None = None,
    store: str = "sqlite",
) -> TickBench:
    """``keep_largest``: move the largest built store there afterwards (``bench/run.py`` hands
    it to the reconcile benchmark) instead of deleting it (SQLite only).

    ``store="postgresql"``: each built store is copied into a database of its own on a
    throwaway PostgreSQL server with its durable defaults (``tactful.testing.pgcluster``;
    ``TACTFUL_TEST_PG`` names an existing server); raises ``Unavailable`` without one."""
    settings = starter_settings()
    profile_text: str | None = None
    cluster = None
    if store == "postgresql":
        cluster = pg_cluster(durable=True, settings=PG_SETTINGS)
    work = Path(tempfile.mkdtemp(prefix="tactful-bench-tick-", dir=work_dir))
    try:
        templates = make_templates(settings, work)
        results = []
        for persons in sorted(set(populations)):
            sets = runs + (1 if profile and persons == max(populations) else 0)
            d = min(due, persons // sets)
            built = build_store(work / f"built-{persons}.db", persons, d, templates, settings, sets)
            if cluster is not None:
                built = copy_into_postgresql(built, pg_database(cluster, f"tick{persons}"))
            if log:
                print(
                    f"  P={persons:,}: built in {built.seconds:.1f}s ({mb(built.size)} MB)",
                    file=sys.stderr,
                )
            results.append(PopulationResult(built, []))
        # Rounds: run i of every population, then run i + 1. The figure that matters is the
        # ratio between populations, and a slow spell of a shared machine then falls on all
        # of them alike instead of on the population that happened to run during it.
        for i in range(runs):
            for result in results:
                tick = tick_once(result.built, i, settings)
                result.runs.append(tick)
                if log:
                    print(
                        f"    P={result.built.persons:,} tick {i + 1}/{runs}: {tick.fired:,} "
                        f"timers fired in {secs(tick.seconds)} (idle tick "
                        f"{secs(tick.idle_seconds)}), peak RSS {mb(tick.peak_kb, kib=True)} MB",
                        file=sys.stderr,
                    )
        largest = results[-1].built
        if profile:
            stats_path = work / "tick.prof"
            tick = tick_once(largest, runs, settings, stats_path)
            stream = io.StringIO()
            pstats.Stats(str(stats_path), stream=stream).sort_stats("tottime").print_stats(15)
            text = stream.getvalue()
            profile_text = (
                f"cProfile of one tick among {largest.persons:,} persons ({tick.fired:,} timers "
                f"in {secs(tick.seconds)} under the profiler), top 15 by tottime:\n"
                + text[max(text.find("   ncalls"), 0) :].rstrip()
            )
        for result in results:
            if result.built.url is not None:
                continue  # the server goes below
            if keep_largest is not None and result.built is largest:
                shutil.move(result.built.path, keep_largest)
            else:
                result.built.path.unlink()
        return TickBench(results, due, runs, profile_text, store)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cluster is not None:
            cluster.stop()


def report(bench: TickBench) -> str:
    rows = []
    for r in bench.results:
        b, t = r.built, r.median_seconds
        last = r.runs[-1]
        rows.append(
            [
                num(b.persons),
                num(b.due),
                f"{b.seconds:.1f} s",
                mb(b.size),
                secs(t),
                f"{t / max(last.fired, 1) * 1000:.2f} ms",
                num(last.fired / t) if t > 0 else "-",
                f"{secs(min(x.seconds for x in r.runs))}–{secs(max(x.seconds for x in r.runs))}",
                secs(median([x.idle_seconds for x in r.runs])),
                mb(last.wal_bytes),
                mb(r.peak_kb, kib=True),
                f"{last.state_changes:,} / {last.entered:,} / {last.exited:,}",
            ]
        )
    return "\n".join(
        [
            table(
                [
                    "persons",
                    "due",
                    "build",
                    "store MB",
                    "tick (median)",
                    "per timer",
                    "timers/s",
                    "range",
                    "idle tick",
                    "WAL MB",
                    "peak RSS MB",
                    "state chg / entered / exited",
                ],
                rows,
                title=f"Engine.tick(T) firing the due timers on {STORE_LABELS[bench.store]} "
                f"(starter config; median of {bench.runs}, each in a fresh process firing its "
                "own due set)",
            ),
            "  every person has a timer; each run's due set falls in the hour before its moment, "
            "the others after the last run's; idle tick = a second tick at the same moment "
            "(nothing due): the fixed cost; WAL MB = "
            + (
                "pages the tick wrote (it commits without waiting for the flush)"
                if bench.store == "sqlite"
                else "WAL the tick generated (pg_current_wal_insert_lsn; it commits with "
                "synchronous_commit off); store MB = pg_database_size after VACUUM ANALYZE"
            )
            + "; peak RSS = the tick process's high-water mark (it only opens the store and "
            "ticks), the highest of the runs"
            + ("" if bench.store == "sqlite" else "; the server's own memory is not in it"),
            *(["", bench.profile] if bench.profile else []),
        ]
    )


def section_names(store: str) -> tuple[str, str, str]:
    """The summary's section names: the tick, the ratio, the memory."""
    suffix = "" if store == "sqlite" else " (PostgreSQL)"
    return (
        f"Engine.tick{suffix}",
        f"Engine.tick vs population{suffix}",
        f"memory: Engine.tick{suffix}",
    )


def summary_rows(bench: TickBench) -> list[Row]:
    """The section's lines of the combined summary (``bench/run.py``)."""
    tick_name, ratio_name, memory_name = section_names(bench.store)
    rows = []
    for r in bench.results:
        fired = r.runs[-1].fired
        rows.append(
            Row(
                tick_name,
                f"{num(fired)} due among {num(r.built.persons)} persons",
                secs(r.median_seconds),
                peak_rss=mb(r.peak_kb, kib=True),
                notes=f"median of {len(r.runs)}; "
                f"{r.median_seconds / max(fired, 1) * 1000:.2f} ms per timer; idle tick "
                f"{secs(median([x.idle_seconds for x in r.runs]))}",
            )
        )
    if len(bench.results) >= 2:
        first, last = bench.results[0], bench.results[-1]
        ratio = last.median_seconds / first.median_seconds
        idle = [median([x.idle_seconds for x in r.runs]) for r in (first, last)]
        grow = last.built.persons / first.built.persons
        rows.append(
            Row(
                ratio_name,
                f"{num(first.built.persons)} → {num(last.built.persons)} persons (×{grow:,.0f})",
                f"{secs(first.median_seconds)} → {secs(last.median_seconds)} (×{ratio:.2f})",
                f"independent of population (≤ ×{TICK_FLAT_RATIO})",
                verdict(ratio <= TICK_FLAT_RATIO),
                notes=f"idle tick {secs(idle[0])} → {secs(idle[1])}: no scan of the persons; "
                "the due persons sit on more B-tree pages in a larger store",
            )
        )
        mem = last.peak_kb / first.peak_kb if first.peak_kb else float("nan")
        rows.append(
            Row(
                memory_name,
                f"peak RSS, {num(first.built.persons)} → {num(last.built.persons)} persons",
                f"{mb(first.peak_kb, kib=True)} → {mb(last.peak_kb, kib=True)} MB (×{mem:.2f})",
                f"flat in persons (≤ ×{FLAT_RATIO})",
                verdict(mem <= FLAT_RATIO),
                mb(last.peak_kb, kib=True),
                "each tick in its own process; includes SQLite's page cache, which grows with "
                "the pages read, up to the store's cache_size"
                if bench.store == "sqlite"
                else "each tick in its own process (the client: PostgreSQL's own memory, "
                "shared_buffers 128 MB, is the server's)",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv) == ["--worker"]:
        return worker()
    parser = argparse.ArgumentParser(
        prog="bench/tick.py", description="Benchmark Engine.tick firing D timers among P persons."
    )
    parser.add_argument(
        "--persons",
        type=int,
        nargs="+",
        default=list(DEFAULT_POPULATIONS),
        metavar="P",
        help="population sizes (default: 10000 100000 1000000)",
    )
    parser.add_argument("--due", type=int, default=1000, metavar="D", help="due timers")
    parser.add_argument("--runs", type=int, default=3, help="ticks per population")
    parser.add_argument("--work-dir", type=Path, default=None, help="where temp stores go")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one tick of the largest population"
    )
    parser.add_argument(
        "--keep-largest",
        type=Path,
        default=None,
        metavar="PATH",
        help="move the largest built store to PATH instead of deleting it",
    )
    parser.add_argument(
        "--store",
        choices=tuple(STORE_LABELS),
        default="sqlite",
        help="postgresql: each built store copied into a database on a throwaway server "
        "(tactful.testing.pgcluster; TACTFUL_TEST_PG names an existing server)",
    )
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    args = parser.parse_args(argv)
    if args.due < 1 or args.runs < 1 or any(p < 1 for p in args.persons):
        parser.error("--persons, --due and --runs must be positive")
    if args.store != "sqlite" and args.keep_largest is not None:
        parser.error("--keep-largest keeps a SQLite store (the reconcile benchmark's)")
    print(f"machine: {machine()}", file=sys.stderr)
    load_before = load_now()
    try:
        bench = run(
            args.persons,
            args.due,
            args.runs,
            work_dir=args.work_dir,
            profile=args.profile,
            keep_largest=args.keep_largest,
            store=args.store,
        )
    except Unavailable as exc:
        case = f"{num(args.due)} due among {num(max(args.persons))} persons"
        write_unavailable(args.json_out, section_names(args.store)[0], case, str(exc))
        return 0
    print(f"machine: {machine()}")
    print(f"tactful: {code_version()}")
    print(f"load average before/after: {load_before} / {load_now()}")
    text = report(bench)
    print(text)
    write_result(args.json_out, text, summary_rows(bench))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

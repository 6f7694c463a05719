"""Import benchmark: ``tactful import`` of realistic Zendesk exports into SQLite (or
PostgreSQL), beside DuckDB.

For each N (persons): generate export pages once (``tactful.testing.sample.generate_exports``), then
import them R times, each into a fresh store (a new SQLite file, or with ``--store postgresql``
a new database on a throwaway server, ``tactful.testing.pgcluster``; ``TACTFUL_TEST_PG`` names an
existing one) with the starter configuration, in a child process of its own that reports its
RSS high-water mark (``VmHWM``: runs never pollute each other; ``ru_maxrss`` would, as a child
inherits its parent's mark on Linux). Beside it, a DuckDB SQL query over the same ticket and
user pages computes the basic per-requester fields, and the two are cross-checked (through
the store's own ``Reader``, for either store). Finally the real CLI imports the largest N
once into SQLite, to show the start-up overhead.

A time budget (``--budget``, default 180 s) keeps the section bounded: a further run of an N
starts only if it should end within the budget, leaving time for the CLI run after the largest
N (the table shows the runs per N); every N gets at least one run, and the CLI run is made.

    .venv/bin/python bench/import.py                       # N = 10000, 30000, 100000; R = 3
    .venv/bin/python bench/import.py --persons 5000 --repeat 1 --profile
    .venv/bin/python bench/import.py --store postgresql --persons 2000 10000

If the PostgreSQL store or server is not available (``StoreError``, ``ClusterUnavailable``) the
section reports "unavailable: <reason>" instead of figures.

Figures only; this is not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FLAT_RATIO,
    IMPORT_TARGET,
    NO_TARGET,
    RATE_FLAT_SHARE,
    STORE_LABELS,
    Row,
    Unavailable,
    code_version,
    config_text,
    dir_bytes,
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
)

from tactful.testing.sample import SampleFiles, generate_exports

TARGET = IMPORT_TARGET  # records/s (the target on a 2-core machine, for SQLite)
DEFAULT_PERSONS = (10_000, 30_000, 100_000)
BY_PERSON = [False]  # --by-person: the imports fold person by person (set by main)
WORKERS = [1]  # processes folding at once with --by-person (main sets it from --workers)
OPEN = ("new", "open", "pending", "hold")


# --------------------------------------------------------------------------- configuration


def children_cpu() -> float:
    """CPU seconds of the child processes that ended (an import's workers)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------- worker (child)


def worker() -> int:
    """Child process: one import. Reads a JSON spec on stdin, prints a JSON result."""
    spec = json.loads(sys.stdin.buffer.read())
    from tactful.config import settings_from_toml
    from tactful.engine.engine import Engine, rules_from_settings
    from tactful.engine.importer import import_files
    from tactful.store.base import StoreError
    from tactful.store.sqlite import open_store

    settings = settings_from_toml(config_text(spec["url"]), source="bench")
    try:
        store = open_store(settings.store.url)
    except StoreError as exc:
        sys.stdout.write(json.dumps({"unavailable": f"StoreError: {exc}"}))
        return 0
    engine = Engine(rules_from_settings(settings), store)
    paths = [Path(p) for p in spec["paths"]]
    batch_size = spec.get("batch_size") or settings.engine.batch_size
    baseline_kb = vm_hwm_kb()
    by_person = bool(spec.get("by_person"))
    workers = int(spec.get("workers") or 1)
    cpu_before = time.process_time() + children_cpu()
    profile_out = spec.get("profile")
    if profile_out:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        summary = import_files(
            engine, paths, batch_size=batch_size, by_person=by_person, workers=workers
        )
        profiler.disable()
        profiler.dump_stats(profile_out)
    else:
        summary = import_files(
            engine, paths, batch_size=batch_size, by_person=by_person, workers=workers
        )
    cpu = time.process_time() + children_cpu() - cpu_before  # workers' too
    engine.store.close()
    db = Path(spec["db"]) if spec.get("db") else None
    result = {
        "summary": summary.as_json(),
        "batch_size": batch_size,
        "seconds": summary.seconds,
        "cpu_seconds": cpu,
        "baseline_kb": baseline_kb,
        "peak_kb": vm_hwm_kb(),
        "store_bytes": 0
        if db is None
        else sum(
            Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()
        ),
    }
    sys.stdout.write(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- results


@dataclass
class ImportRun:
    seconds: float  # import_files wall time (in-process, excluding interpreter start-up)
    records: int  # canonical events read (what `tactful import` reports)
    peak_kb: int  # the child's RSS high-water mark (VmHWM) after the import
    baseline_kb: int  # its high-water mark just before importing (interpreter + modules)
    store_bytes: int
    summary: dict[str, Any]
    batch_size: int  # events per transaction (the config's engine.batch_size unless overridden)
    cpu_seconds: float = 0.0  # the importing process's CPU time (all its threads), workers' too
    load: float = 0.0  # the machine's 1-minute load average as the run ended
    server_cpu_seconds: float | None = None  # a throwaway PostgreSQL server's, during the run

    @property
    def cpu_rate(self) -> float:
        return self.records / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DuckResult:
    seconds: dict[str, list[float]]  # query form -> wall times
    rows_read: int  # ticket rows (tickets + later versions) + user rows
    requesters: int
    rows: list[tuple[Any, ...]]  # (requester_id, email, ticket_count, open_count, has_open, ...)
    version: str
    forms_agree: bool  # every query form gave the same rows
    peak_kb: int = 0  # the DuckDB child's RSS high-water mark (VmHWM), all forms and runs


@dataclass
class CrossCheck:
    duck_requesters_open: int  # DuckDB: requesters with an open ticket
    duck_emails_open: int  # DuckDB: the same, grouped by lower(email) (else by requester)
    tactful_open: int  # Tactful: persons with has_open_ticket
    rolled_up_open: int  # DuckDB rows rolled up to Tactful persons (identifiers table)
    multi_requester_persons: int  # persons whose open tickets sit on >= 2 Zendesk user ids
    unmapped_requesters: int  # requesters without a Tactful person
    field_mismatches: dict[str, int]  # field -> persons that differ after the roll-up
    compared: int  # persons compared
    examples: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return self.rolled_up_open == self.tactful_open and not any(self.field_mismatches.values())


@dataclass
class CliResult:
    wall: float
    seconds: float  # the import's own time as the CLI reports it
    records: int
    peak_kb: int


@dataclass
class SizeResult:
    persons: int
    files: SampleFiles
    generate_seconds: float
    input_bytes: int
    runs: list[ImportRun]
    duck: DuckResult | None = None
    check: CrossCheck | None = None
    cli: CliResult | None = None

    @property
    def median_seconds(self) -> float:
        return median([r.seconds for r in self.runs])

    @property
    def median_rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def peak_kb(self) -> int:
        return max(r.peak_kb for r in self.runs)

    @property
    def baseline_kb(self) -> int:
        return max(r.baseline_kb for r in self.runs)


# --------------------------------------------------------------------------- import runs


class StoreTarget:
    """Where the imports go: fresh SQLite files in ``work``, or fresh databases on a
    PostgreSQL server (``tactful.testing.pgcluster``: a throwaway one, or ``TACTFUL_TEST_PG``)."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        self.cluster: Any = None
        if kind == "postgresql":
            self.cluster = pg_cluster()

    @property
    def label(self) -> str:
        return STORE_LABELS[self.kind]

    def fresh(self, name: str) -> tuple[str, Path | None]:
        """A new, empty store: its URL, and its file for SQLite."""
        if self.cluster is None:
            db = self.work / f"{name}.db"
            remove_db(db)
            return sqlite_url(db), db
        return pg_database(self.cluster, "bench"), None

    def size(self, url: str) -> int:
        """The PostgreSQL database's size in bytes (SQLite's is measured by the worker)."""
        if self.cluster is None:
            return 0
        try:
            import psycopg

            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else 0
        except Exception:  # a size is not worth failing the benchmark for
            return 0

    def drop(self, url: str, db: Path | None) -> None:
        if db is not None:
            remove_db(db)
        elif self.cluster is not None:
            try:
                self.cluster.drop_database(url)
            except Exception as exc:  # a throwaway server: leave it to stop()
                print(f"    (could not drop {url}: {exc})", file=sys.stderr)

    def server_cpu(self) -> float | None:
        """CPU seconds the PostgreSQL server has used so far, every process of it (those
        that ended included: the postmaster's children's times), for a server this
        benchmark started (None: SQLite, or a server it did not start)."""
        datadir = getattr(self.cluster, "datadir", None)
        if datadir is None:
            return None
        try:
            postmaster = int((Path(datadir) / "postmaster.pid").read_text().split()[0])
            total = sum(_proc_times(postmaster))  # utime, stime, cutime, cstime
            for pid in _children(postmaster):
                total += sum(_proc_times(pid)[:2])
        except (OSError, ValueError):
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


def child_timeout(records: int) -> float:
    """Seconds an import child may run before it is killed: 15 minutes, or 1 ms a record
    for larger exports (about ten times the cost measured on the 2-core machine), so the
    1M-person row (10.5M records, about half an hour) is not killed half way."""
    return max(900.0, records / 1000)


def _proc_times(pid: int) -> list[int]:
    """utime, stime, cutime, cstime of ``pid`` in clock ticks (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(x) for x in fields[11:15]]


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry))
    return found


def import_once(
    files: SampleFiles,
    url: str,
    db: Path | None,
    profile: Path | None = None,
    batch_size: int | None = None,
) -> ImportRun:
    spec = {
        "url": url,
        "db": str(db) if db is not None else None,
        "batch_size": batch_size,
        "paths": [str(p) for p in files.paths],
        "profile": str(profile) if profile else None,
        "by_person": BY_PERSON[0],
        "workers": WORKERS[0],
    }
    child = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
        json.dumps(spec).encode(),
        timeout=child_timeout(files.records),
    )
    if child.returncode != 0:
        raise SystemExit(
            f"import worker failed ({child.returncode}):\n{child.stderr.decode(errors='replace')}"
        )
    data = json.loads(child.stdout)
    if "unavailable" in data:
        raise Unavailable(str(data["unavailable"]))
    return ImportRun(
        seconds=float(data["seconds"]),
        records=int(data["summary"]["records"]),
        peak_kb=int(data["peak_kb"]),
        baseline_kb=int(data["baseline_kb"]),
        store_bytes=int(data["store_bytes"]),
        summary=data["summary"],
        batch_size=int(data["batch_size"]),
        cpu_seconds=float(data["cpu_seconds"]),
        load=os.getloadavg()[0],
    )


def cli_once(files: SampleFiles, work: Path) -> CliResult:
    db = work / "cli.db"
    remove_db(db)
    config = work / "cli.toml"
    config.write_text(config_text(sqlite_url(db)), encoding="utf-8")
    exe = Path(sys.executable).with_name("tactful")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "tactful"]
    cmd = [*base, "--config", str(config), "import", "--json", *map(str, files.paths)]
    child = run_child(cmd)
    if child.returncode != 0:
        raise SystemExit(f"tactful import failed:\n{child.stderr.decode(errors='replace')}")
    data = json.loads(child.stdout)
    remove_db(db)
    return CliResult(child.wall, float(data["seconds"]), int(data["records"]), child.hwm_kb)


# --------------------------------------------------------------------------- DuckDB

# Latest version of each ticket by updated_at across the tickets and tickets-updates pages;
# deleted and merged-away tickets excluded (product.md section 3); the requester's email from
# the users pages (so the rows can also be grouped the way Tactful joins users: by email).
# Times come back as epoch microseconds (no time-zone conversion on the way out).
_DUCK_BODY = """
WITH versions AS ({tickets}),
latest AS (
    SELECT arg_max(t, t.updated_at) AS v FROM versions GROUP BY t.id
),
counted AS (
    SELECT v.requester_id AS requester_id, v.status AS status,
           v.created_at AS created_at, v.updated_at AS updated_at
    FROM latest
    WHERE v.status <> 'deleted'
      AND NOT list_contains(coalesce(v.tags, []), 'closed_by_merge')
      AND coalesce(v.via.channel, '') <> 'merge'
),
users AS (
    SELECT u.id AS id, lower(trim(u.email)) AS email FROM ({users})
),
per_requester AS (
    SELECT requester_id,
           count(*) AS ticket_count,
           count(*) FILTER (WHERE status IN ('new', 'open', 'pending', 'hold'))
               AS open_ticket_count,
           epoch_us(max(created_at)) AS last_ticket_at,
           epoch_us(max(updated_at)) AS last_activity_at
    FROM counted GROUP BY requester_id
)
SELECT p.requester_id, users.email, p.ticket_count, p.open_ticket_count,
       p.open_ticket_count > 0 AS has_open_ticket, p.last_ticket_at, p.last_activity_at
FROM per_requester p LEFT JOIN users ON users.id = p.requester_id
ORDER BY p.requester_id
"""
_TICKET_SCHEMA = (
    '{"tickets": [{"id": "BIGINT", "requester_id": "BIGINT", "status": "VARCHAR", '
    '"created_at": "TIMESTAMP", "updated_at": "TIMESTAMP", "tags": ["VARCHAR"], '
    '"via": {"channel": "VARCHAR"}}]}'
)
_USER_SCHEMA = '{"users": [{"id": "BIGINT", "email": "VARCHAR"}]}'
DUCK_QUERIES = {
    # As asked: DuckDB's JSON reader detects the page schema (every field of every ticket).
    "read_json(format='auto')": _DUCK_BODY.format(
        tickets="SELECT unnest(tickets) AS t FROM read_json($ticket_files, format = 'auto')",
        users="SELECT unnest(users) AS u FROM read_json($user_files, format = 'auto')",
    ),
    # The same query reading each page as text and parsing only the needed fields: DuckDB's
    # JSON reader is slow on one large object per file, this form is several times faster.
    "read_text + from_json": _DUCK_BODY.format(
        tickets=f"SELECT unnest(from_json(content, '{_TICKET_SCHEMA}').tickets) AS t "
        "FROM read_text($ticket_files)",
        users=f"SELECT unnest(from_json(content, '{_USER_SCHEMA}').users) AS u "
        "FROM read_text($user_files)",
    ),
}


def duck_query(files: SampleFiles, repeat: int) -> DuckResult:
    """The DuckDB query forms, ``repeat`` times each, in a child process of its own."""
    spec = {
        "params": {
            "ticket_files": [str(p) for p in files.ticket_pages + files.ticket_update_pages],
            "user_files": [str(p) for p in files.user_pages],
        },
        "repeat": repeat,
    }
    child = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--duck-worker"],
        json.dumps(spec).encode(),
    )
    if child.returncode != 0:
        raise SystemExit(
            f"DuckDB worker failed ({child.returncode}):\n{child.stderr.decode(errors='replace')}"
        )
    data = json.loads(child.stdout)
    return DuckResult(
        {k: [float(x) for x in v] for k, v in data["seconds"].items()},
        files.tickets + files.ticket_updates + files.users,
        len(data["rows"]),
        [tuple(r) for r in data["rows"]],
        str(data["version"]),
        bool(data["forms_agree"]),
        int(data["peak_kb"]),
    )


def duck_worker() -> int:
    """Child process: run the query forms; print times, rows and VmHWM as JSON."""
    spec = json.loads(sys.stdin.buffer.read())
    import duckdb

    params, repeat = spec["params"], int(spec["repeat"])
    seconds: dict[str, list[float]] = {}
    results: dict[str, list[tuple[Any, ...]]] = {}
    for name, sql in DUCK_QUERIES.items():
        seconds[name] = []
        for _ in range(repeat):
            con = duckdb.connect()  # fresh in-memory database: nothing cached between runs
            began = time.perf_counter()
            results[name] = con.execute(sql, params).fetchall()
            seconds[name].append(time.perf_counter() - began)
            con.close()
    first, *others = results.values()
    out = {
        "seconds": seconds,
        "rows": first,
        "version": duckdb.__version__,
        "forms_agree": all(rows == first for rows in others),
        "peak_kb": vm_hwm_kb(),
    }
    sys.stdout.write(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- cross-check


def _us(value: Any) -> int | None:
    """A state time (a datetime, or ISO 8601 with Z) as epoch microseconds, like DuckDB's
    ``epoch_us``."""
    if value is None:
        return None
    from datetime import datetime

    from tactful.core.codec import parse_time
    from tactful.store.records import to_us

    return to_us(value if isinstance(value, datetime) else parse_time(str(value)))


def tactful_view(url: str) -> tuple[dict[int, str], dict[str, dict[str, Any]]]:
    """Every person's state and the owner of every Zendesk user id, read through the store's
    own ``Reader`` (``person_ids`` paging, ``load_persons``, ``identifiers_of``): the same
    code path for SQLite and PostgreSQL."""
    from tactful.store.sqlite import open_store

    owner: dict[int, str] = {}
    states: dict[str, dict[str, Any]] = {}
    store = open_store(url)
    try:
        with store.reader() as reader:
            after: str | None = None
            while True:
                pids = reader.person_ids(after, 5000)
                if not pids:
                    break
                after = pids[-1]
                for pid, row in reader.load_persons(pids).items():
                    states[pid] = row.state
                for pid, keys in reader.identifiers_of(pids).items():
                    for kind, value in keys:
                        if kind == "zendesk_user_id":
                            owner[int(value)] = pid
    finally:
        store.close()
    return owner, states


def cross_check(duck: DuckResult, url: str) -> CrossCheck:
    """Compare DuckDB's per-requester fields with Tactful's persons.

    Tactful joins Zendesk users that share an email into one person, so DuckDB's rows are
    rolled up to Tactful persons through the store's identifiers (zendesk_user_id ->
    person) before the fields are compared.
    """
    owner, states = tactful_view(url)
    tactful_open = sum(1 for state in states.values() if state.get("has_open_ticket"))

    rolled: dict[str, dict[str, Any]] = {}
    open_requesters: dict[str, int] = defaultdict(int)
    by_email_open: set[str] = set()
    unmapped = 0
    for requester, email, count, open_count, has_open, last_ticket, last_activity in duck.rows:
        if has_open:
            by_email_open.add(email or f"zd:{requester}")
        pid = owner.get(int(requester))
        if pid is None:
            unmapped += 1
            continue
        agg = rolled.setdefault(
            pid,
            {
                "ticket_count": 0,
                "open_ticket_count": 0,
                "last_ticket_at": None,
                "last_activity_at": None,
            },
        )
        agg["ticket_count"] += count
        agg["open_ticket_count"] += open_count
        for name, value in (("last_ticket_at", last_ticket), ("last_activity_at", last_activity)):
            if agg[name] is None or value > agg[name]:
                agg[name] = value
        if has_open:
            open_requesters[pid] += 1

    mismatches: dict[str, int] = defaultdict(int)
    examples: list[str] = []
    compared = 0
    for pid, state in states.items():
        expected = rolled.get(pid)
        if expected is None:
            if state.get("ticket_count"):
                mismatches["persons only in Tactful"] += 1
            continue
        compared += 1
        got = {
            "ticket_count": state.get("ticket_count"),
            "open_ticket_count": state.get("open_ticket_count"),
            "has_open_ticket": bool(state.get("has_open_ticket")),
            "last_ticket_at": _us(state.get("last_ticket_at")),
            "last_activity_at": _us(state.get("last_activity_at")),
        }
        want = dict(expected, has_open_ticket=expected["open_ticket_count"] > 0)
        for name, value in got.items():
            if want[name] != value:
                mismatches[name] += 1
                if len(examples) < 5:
                    examples.append(f"{pid}.{name}: DuckDB {want[name]} vs Tactful {value}")
    for pid in rolled:
        if pid not in states:
            mismatches["persons only in DuckDB"] += 1
    return CrossCheck(
        duck_requesters_open=sum(1 for r in duck.rows if r[4]),
        duck_emails_open=len(by_email_open),
        tactful_open=tactful_open,
        rolled_up_open=sum(1 for agg in rolled.values() if agg["open_ticket_count"] > 0),
        multi_requester_persons=sum(1 for n in open_requesters.values() if n > 1),
        unmapped_requesters=unmapped,
        field_mismatches=dict(mismatches),
        compared=compared,
        examples=examples,
    )


# --------------------------------------------------------------------------- orchestration


def bench_size(
    persons: int,
    repeat: int,
    work: Path,
    target: StoreTarget,
    *,
    duckdb: bool,
    log: bool,
    deadline: float | None = None,
    reserve: bool = False,
    batch_size: int | None = None,
) -> SizeResult:
    out = work / f"exports-{persons}"
    began = time.perf_counter()
    files = generate_exports(out, persons=persons)
    generated = time.perf_counter() - began
    result = SizeResult(persons, files, generated, dir_bytes(out, "*.json"), [])
    if log:
        print(
            f"  N={persons:,}: generated {files.records:,} records in {len(files.paths)} pages "
            f"({mb(result.input_bytes)} MB) in {generated:.1f}s",
            file=sys.stderr,
        )
    url: str | None = None  # the last run's store, kept for the cross-check
    db: Path | None = None
    try:
        for i in range(repeat):
            if i > 0 and deadline is not None:
                last = result.runs[-1].seconds
                if time.perf_counter() + last * (2 if reserve else 1) > deadline:
                    if log:
                        print(f"    (time budget: {i} run(s) of N={persons:,})", file=sys.stderr)
                    break
            if url is not None:
                target.drop(url, db)
            url, db = target.fresh(f"store-{persons}")
            server_before = target.server_cpu()
            run = import_once(files, url, db, batch_size=batch_size)
            server_after = target.server_cpu()
            if server_before is not None and server_after is not None:
                run.server_cpu_seconds = server_after - server_before
            if target.kind != "sqlite":
                run.store_bytes = target.size(url)
            result.runs.append(run)
            if log:
                print(
                    f"    import {i + 1}/{repeat} → {target.label}: {run.records:,} records in "
                    f"{run.seconds:.2f}s = {run.rate:,.0f}/s, CPU {run.cpu_seconds:.1f}s = "
                    f"{run.records / max(run.cpu_seconds, 1e-9):,.0f}/s of CPU, "
                    + (
                        ""
                        if run.server_cpu_seconds is None
                        else f"server CPU {run.server_cpu_seconds:.1f}s, "
                    )
                    + f"peak RSS {mb(run.peak_kb, kib=True)} MB, load {run.load:.1f}",
                    file=sys.stderr,
                )
        if duckdb and url is not None:
            result.duck = duck_query(files, repeat)
            result.check = cross_check(result.duck, url)
    finally:
        if url is not None:
            target.drop(url, db)
    return result


def profile_import(
    files: SampleFiles, work: Path, top: int = 15, batch_size: int | None = None
) -> str:
    import io
    import pstats

    stats_path = work / "import.prof"
    db = work / "profile.db"
    remove_db(db)
    run = import_once(files, sqlite_url(db), db, profile=stats_path, batch_size=batch_size)
    remove_db(db)
    stream = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    text = stream.getvalue()
    start = text.find("   ncalls")
    body = text[start:] if start >= 0 else text
    return (
        f"cProfile of one import of N={files.persons:,} ({run.records:,} records in "
        f"{run.seconds:.2f}s under the profiler), top {top} by tottime:\n{body.rstrip()}"
    )


def import_table(results: Sequence[SizeResult], repeat: int, store: str = "SQLite") -> str:
    batch = ", ".join(sorted({str(run.batch_size) for r in results for run in r.runs}))
    rows = []
    for r in results:
        rates = [run.rate for run in r.runs]
        rows.append(
            [
                num(r.persons),
                str(len(r.runs)),
                num(r.runs[0].records),
                mb(r.input_bytes),
                secs(r.median_seconds),
                num(r.median_rate),
                f"{num(min(rates))}–{num(max(rates))}",
                f"{r.median_rate / TARGET:.2f}×",
                mb(r.peak_kb, kib=True),
                mb(r.peak_kb - r.baseline_kb, kib=True),
                mb(r.runs[-1].store_bytes),
            ]
        )
    return table(
        [
            "persons",
            "runs",
            "records",
            "input MB",
            "median time",
            "records/s",
            "range",
            "vs 20k/s",
            "peak RSS MB",
            "import RSS MB",
            "store MB",
        ],
        rows,
        title=f"tactful import → {store} (in-process import_files, starter config, batch_size "
        f"{batch}, median of the runs (R = {repeat}), each a fresh child process and store)",
    )


def duck_table(results: Sequence[SizeResult]) -> str:
    rows = []
    for r in results:
        if r.duck is None or r.check is None:
            continue
        d, c = r.duck, r.check
        times = [median(t) for t in d.seconds.values()]
        rows.append(
            [
                num(r.persons),
                num(d.rows_read),
                *(secs(t) for t in times),
                num(d.rows_read / min(times)),
                f"{r.median_seconds / min(times):,.0f}×",
                num(d.requesters),
                num(c.duck_requesters_open),
                num(c.duck_emails_open),
                num(c.rolled_up_open),
                num(c.tactful_open),
                "yes" if c.agree and d.forms_agree else "NO",
                mb(d.peak_kb, kib=True),
            ]
        )
    forms = next((list(r.duck.seconds) for r in results if r.duck), [])
    return table(
        [
            "persons",
            "rows read",
            *forms,
            "rows/s",
            "import ÷ DuckDB",
            "requesters",
            "open: per requester",
            "per email",
            "rolled up",
            "Tactful",
            "agree",
            "peak RSS MB",
        ],
        rows,
        title="DuckDB SQL over the same pages (users + tickets + later versions): per requester "
        "ticket_count, open_ticket_count, has_open_ticket, last_ticket_at, last_activity_at "
        "(median wall time of each query form; rows/s and the ratio use the faster form)",
    )


def explain(results: Sequence[SizeResult]) -> list[str]:
    lines = []
    for r in results:
        c = r.check
        if c is None:
            continue
        diff = c.duck_requesters_open - c.tactful_open
        line = (
            f"  N={r.persons:,}: {c.compared:,} persons compared field by field "
            f"(ticket_count, open_ticket_count, has_open_ticket, last_ticket_at, "
            f"last_activity_at): "
        )
        if c.agree:
            line += "all equal."
        else:
            parts = ", ".join(f"{k}: {v}" for k, v in sorted(c.field_mismatches.items()) if v)
            line += f"DIFFERENCES ({parts or 'open counts'})."
        lines.append(line)
        if r.duck is not None and not r.duck.forms_agree:
            lines.append("    the DuckDB query forms gave DIFFERENT rows")
        if diff:
            whole = diff == c.multi_requester_persons
            lines.append(
                f"    {c.duck_requesters_open:,} requesters vs {c.tactful_open:,} persons with "
                f"an open ticket: {diff:+,}. Tactful joins Zendesk users that share an email "
                f"(other capitalisation, a second user id) into one person; "
                f"{c.multi_requester_persons:,} persons have open tickets on two user ids"
                + (": that is the whole difference." if whole else ".")
            )
        if c.unmapped_requesters:
            lines.append(f"    {c.unmapped_requesters:,} requesters have no Tactful person.")
        lines.extend(f"    e.g. {e}" for e in c.examples)
    return lines


@dataclass
class ImportBench:
    results: list[SizeResult]
    repeat: int
    cli: CliResult | None
    profile: str | None
    store: str = "sqlite"
    unavailable: str | None = None  # why the store could not be benchmarked here

    @property
    def label(self) -> str:
        return STORE_LABELS[self.store]


def run(
    persons: Sequence[int] = DEFAULT_PERSONS,
    repeat: int = 3,
    *,
    store: str = "sqlite",
    duckdb: bool = True,
    cli: bool = True,
    profile: bool = False,
    work_dir: Path | None = None,
    keep: bool = False,
    budget: float = 180.0,
    batch_size: int | None = None,
    log: bool = True,
) -> ImportBench:
    """Import each N into fresh ``store`` stores (``sqlite`` or ``postgresql``). The CLI run
    and the profile are SQLite only. A store that cannot be used here yet gives an
    ``ImportBench`` with ``unavailable`` set and no results (nothing is raised)."""
    work = Path(tempfile.mkdtemp(prefix="tactful-bench-import-", dir=work_dir))
    began = time.perf_counter()
    deadline = began + budget if budget > 0 else None
    cli = cli and store == "sqlite"
    target: StoreTarget | None = None
    try:
        try:
            target = StoreTarget(store, work)
        except Unavailable as exc:
            return ImportBench([], repeat, None, None, store, str(exc))
        sizes = sorted(set(persons))
        results: list[SizeResult] = []
        try:
            for n in sizes:
                results.append(
                    bench_size(
                        n,
                        repeat,
                        work,
                        target,
                        duckdb=duckdb,
                        log=log,
                        deadline=deadline,
                        reserve=cli and n == sizes[-1],  # leave time for the CLI run
                        batch_size=batch_size,
                    )
                )
        except Unavailable as exc:
            return ImportBench([], repeat, None, None, store, str(exc))
        cli_result = None
        if cli and results:
            if log:
                print(f"  tactful import (CLI) N={results[-1].persons:,} …", file=sys.stderr)
            cli_result = cli_once(results[-1].files, work)
        profile_text = None
        if profile and results and store == "sqlite":
            if log:
                print(f"  profiling one import N={results[-1].persons:,} …", file=sys.stderr)
            profile_text = profile_import(results[-1].files, work, batch_size=batch_size)
        return ImportBench(results, repeat, cli_result, profile_text, store)
    finally:
        if target is not None:
            target.close()
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(bench: ImportBench) -> str:
    results = bench.results
    if bench.unavailable is not None:
        return f"tactful import → {bench.label}: unavailable: {bench.unavailable}"
    out = [import_table(results, bench.repeat, bench.label)]
    out.append(
        "  records = canonical events read (users, ticket versions, ticket status events, "
        "answered ratings), as `tactful import` counts them; peak RSS = the child's high-water "
        "mark; import RSS = peak minus the mark before importing (interpreter, modules, store "
        "open)"
    )
    if any(r.duck for r in results):
        out += ["", duck_table(results), *explain(results)]
        versions = {r.duck.version for r in results if r.duck}
        out.append(
            f"  DuckDB {', '.join(sorted(versions))}, default threads; the query reads only the "
            "user and ticket pages (Tactful also folds ticket events and ratings, resolves "
            "identities, evaluates states and segments and writes the event log)"
        )
    if bench.cli is not None and results:
        c, last = bench.cli, results[-1]
        out += [
            "",
            f"tactful import via the CLI, N={last.persons:,}, once: {c.wall:.2f}s wall "
            f"({c.records / c.wall:,.0f} records/s end to end), of which the import itself "
            f"{c.seconds:.2f}s ({c.records / c.seconds:,.0f}/s); start-up and exit "
            f"{c.wall - c.seconds:.2f}s; peak RSS {mb(c.peak_kb, kib=True)} MB",
        ]
    if bench.profile:
        out += ["", bench.profile]
    return "\n".join(out)


def summary_rows(bench: ImportBench, *, duck_rows: bool = True) -> list[Row]:
    """The section's lines of the combined summary (``bench/run.py``)."""
    section = f"import → {bench.label}"
    if bench.unavailable is not None:
        return [Row(section, "—", "unavailable", met="unavailable", notes=bench.unavailable)]
    if bench.store == "sqlite":
        target = f"≥ {TARGET:,} records/s"
    else:
        target = f"none (the {TARGET:,}/s target is for SQLite)"
    rows: list[Row] = []
    for r in bench.results:
        rates = [run.rate for run in r.runs]
        notes = (
            f"median of {len(r.runs)}, {secs(r.median_seconds)} (range "
            f"{num(min(rates))}–{num(max(rates))}/s); store {mb(r.runs[-1].store_bytes)} MB"
        )
        if r.check is not None and r.duck is not None:
            agree = r.check.agree and r.duck.forms_agree
            fastest = min(median(t) for t in r.duck.seconds.values())
            notes += (
                f"; DuckDB recompute of the same fields {secs(fastest)}: import ÷ DuckDB "
                f"{r.median_seconds / fastest:,.0f}×; fields vs DuckDB: "
                f"{'all equal' if agree else 'DIFFER'}"
            )
        rows.append(
            Row(
                section,
                f"N={num(r.persons)} persons, {num(r.runs[0].records)} records",
                f"{num(r.median_rate)} records/s",
                target,
                verdict(r.median_rate >= TARGET) if bench.store == "sqlite" else NO_TARGET,
                mb(r.peak_kb, kib=True),
                notes,
            )
        )
    if duck_rows:
        for r in bench.results:
            if r.duck is None:
                continue
            times = {k: median(v) for k, v in r.duck.seconds.items()}
            fastest = min(times.values())
            rows.append(
                Row(
                    "DuckDB SQL recompute",
                    f"N={num(r.persons)}: same pages, {num(r.duck.rows_read)} rows",
                    f"{num(r.duck.rows_read / fastest)} rows/s",
                    peak_rss=mb(r.duck.peak_kb, kib=True),
                    notes=f"{secs(fastest)} read_text + from_json ({secs(max(times.values()))} "
                    f"read_json auto); import ÷ DuckDB {r.median_seconds / fastest:,.0f}×",
                )
            )
    if len(bench.results) >= 2:
        # Issue 24: the cost per record does not grow with the store (largest vs smallest N).
        low, high = bench.results[0], bench.results[-1]
        share = high.median_rate / low.median_rate if low.median_rate else float("nan")
        rows.append(
            Row(
                f"per-record cost: {section}",
                f"records/s, N={num(low.persons)} → {num(high.persons)}",
                f"{num(low.median_rate)} → {num(high.median_rate)} records/s (×{share:.2f})",
                f"flat in N (≥ ×{RATE_FLAT_SHARE})",
                verdict(share >= RATE_FLAT_SHARE),
                mb(high.peak_kb, kib=True),
                "bench/README.md, 'Where the time goes': why it falls",
            )
        )
    if len(bench.results) >= 2:
        # Judged between the two largest N: a batch holds at most ``batch_size`` events'
        # persons, so memory grows with N only until a batch's persons are all distinct;
        # "flat in the number of people" is about what comes after (the smallest N is shown).
        smallest, first, last = bench.results[0], bench.results[-2], bench.results[-1]
        ratio = last.peak_kb / first.peak_kb if first.peak_kb else float("nan")
        rows.append(
            Row(
                f"memory: {section}",
                f"peak RSS, N={num(first.persons)} → {num(last.persons)}",
                f"{mb(first.peak_kb, kib=True)} → {mb(last.peak_kb, kib=True)} MB (×{ratio:.2f})"
                + (
                    f"; N={num(smallest.persons)}: {mb(smallest.peak_kb, kib=True)} MB"
                    if smallest is not first
                    else ""
                ),
                f"flat in N (≤ ×{FLAT_RATIO})",
                verdict(ratio <= FLAT_RATIO),
                mb(last.peak_kb, kib=True),
                f"import part {mb(first.peak_kb - first.baseline_kb, kib=True)} → "
                f"{mb(last.peak_kb - last.baseline_kb, kib=True)} MB (SQLite page cache included)"
                if bench.store == "sqlite"
                else f"import part {mb(first.peak_kb - first.baseline_kb, kib=True)} → "
                f"{mb(last.peak_kb - last.baseline_kb, kib=True)} MB",
            )
        )
    return rows


# --------------------------------------------------------------------------- workers

PARALLEL_TARGET = 1.7  # issue 24: W workers on this 2-core machine, ÷ one process


def workers_table(benches: dict[int, ImportBench]) -> str:
    """The same imports by person with each number of workers, side by side: wall and CPU
    rates (CPU: the import's process and its workers), the speedup over the fewest workers,
    and the load average each run ended with (other work on the machine skews the wall)."""
    base_count = min(benches)
    base = {r.persons: r for r in benches[base_count].results}
    rows = []
    for count, bench in sorted(benches.items()):
        for r in bench.results:
            first = base.get(r.persons)
            speedup = r.median_rate / first.median_rate if first and first.median_rate else 0.0
            cpu = median([run.cpu_rate for run in r.runs])
            server = [run.server_cpu_seconds for run in r.runs if run.server_cpu_seconds]
            rows.append(
                [
                    num(r.persons),
                    str(count),
                    num(r.runs[0].records),
                    num(r.median_rate),
                    num(cpu),
                    f"{median(server):.1f}" if server else "–",
                    f"×{speedup:.2f}",
                    ", ".join(f"{run.load:.1f}" for run in r.runs),
                    mb(r.peak_kb, kib=True),
                ]
            )
    return table(
        [
            "persons",
            "workers",
            "records",
            "records/s",
            "records/s of CPU",
            "server CPU s",
            f"÷ {base_count} worker(s)",
            "load",
            "peak RSS MB",
        ],
        rows,
        title=f"tactful import --by-person --workers W → {benches[base_count].label}: wall rate, "
        f"CPU rate, speedup (target ×{PARALLEL_TARGET} and ≥ {TARGET:,}/s)",
    )


def workers_rows(benches: dict[int, ImportBench]) -> list[Row]:
    """Summary rows: each N with the most workers, against one process."""
    base_count, most = min(benches), max(benches)
    base = {r.persons: r for r in benches[base_count].results}
    rows = []
    for r in benches[most].results:
        first = base.get(r.persons)
        if first is None or not first.median_rate:
            continue
        speedup = r.median_rate / first.median_rate
        met = speedup >= PARALLEL_TARGET and r.median_rate >= TARGET
        rows.append(
            Row(
                f"parallel import → {benches[most].label}",
                f"N={num(r.persons)}, {most} workers ÷ {base_count}",
                f"{num(r.median_rate)} records/s (×{speedup:.2f})",
                f"×{PARALLEL_TARGET} and ≥ {TARGET:,} records/s",
                verdict(met),
                mb(r.peak_kb, kib=True),
                f"{base_count} worker(s): {num(first.median_rate)}/s; CPU "
                f"{num(median([run.cpu_rate for run in r.runs]))}/s; load "
                + ", ".join(f"{run.load:.1f}" for run in r.runs),
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list == ["--worker"]:
        return worker()
    if args_list == ["--duck-worker"]:
        return duck_worker()
    parser = argparse.ArgumentParser(
        prog="bench/import.py",
        description="Benchmark `tactful import` (records/s, peak memory per N) beside DuckDB.",
    )
    parser.add_argument(
        "--persons",
        type=int,
        nargs="+",
        default=list(DEFAULT_PERSONS),
        metavar="N",
        help="persons to generate, one or more (default: 10000 30000 100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, metavar="R", help="imports per N")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB query")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI run")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one import of the largest N"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="time budget of the section: fewer runs of an N rather than overrun it; at "
        "least one each (default 180; 0: no budget)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="B",
        help="events per transaction (default: the starter config's engine.batch_size); "
        "the CLI run always uses the config's",
    )
    parser.add_argument(
        "--store",
        choices=tuple(STORE_LABELS),
        default="sqlite",
        help="import into fresh SQLite files (default) or fresh PostgreSQL databases on a "
        "throwaway server (tactful.testing.pgcluster; TACTFUL_TEST_PG names an existing server)",
    )
    parser.add_argument(
        "--by-person",
        action="store_true",
        help="import with `tactful import --by-person` (tactful.engine.grouped), not in time order",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="W",
        help="with --by-person: processes folding at once (default 1); several counts run "
        "the imports once per count and compare them (e.g. --workers 1 2)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="where temp files go")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    parser.add_argument(
        "--no-duck-rows",
        action="store_true",
        help="leave the DuckDB lines out of the summary rows (bench/run.py shows them once)",
    )
    args = parser.parse_args(args_list)
    if args.repeat < 1 or any(n < 1 for n in args.persons):
        parser.error("--persons and --repeat must be positive")
    print(f"machine: {machine()}", file=sys.stderr)
    BY_PERSON[0] = args.by_person
    if len(args.workers) > 1 and not args.by_person:
        parser.error("several --workers counts compare imports --by-person: add --by-person")
    load_before = load_now()
    benches: dict[int, ImportBench] = {}
    for count in sorted(set(args.workers)):
        WORKERS[0] = count
        benches[count] = run(
            args.persons,
            args.repeat,
            store=args.store,
            duckdb=not args.no_duckdb,
            cli=not args.no_cli,
            profile=args.profile,
            work_dir=args.work_dir,
            keep=args.keep,
            budget=args.budget,
            batch_size=args.batch_size,
        )
    print(f"machine: {machine()}")
    print(f"tactful: {code_version()}")
    print(f"load average before/after: {load_before} / {load_now()}")
    texts = [
        (f"with --workers {count}:\n" if len(benches) > 1 else "") + report(bench)
        for count, bench in benches.items()
    ]
    rows = [
        row
        for bench in benches.values()
        for row in summary_rows(bench, duck_rows=not args.no_duck_rows)
        if len(benches) == 1 or row.met == "unavailable"
    ]
    if len(benches) > 1 and all(b.unavailable is None for b in benches.values()):
        texts.append(workers_table(benches))
        rows += workers_rows(benches)  # with several counts, the comparison is the summary
    text = "\n\n".join(texts)
    print(text)
    write_result(args.json_out, text, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Full reconcile of a large ad audience: from the store, and normalize + hash + diff.

    .venv/bin/python bench/reconcile.py [--members 1000000] [--churn 0.01]
    .venv/bin/python bench/reconcile.py --store-path built.db   # reuse a bench/tick.py store

Two parts, each measured in child processes of their own (peak RSS = the child's ``VmHWM``):

- **store**: what ``tactful sync --full`` does for one ad audience, on a SQLite store of
  ``--members`` persons (built as ``bench/tick.py`` builds them, unless ``--store-path`` names
  one), all of them non-holdout members of the audience's segment, with a ledger that differs
  by ``churn``. Two figures: paging the members with ``Reader.segment_members`` (5,000 a page)
  alone, then ``DeliveryWorker.reconcile`` (members with their consent, ``member_consents``, the
  ledger, the diff and the enqueue of the adds and removes). The enqueued deliveries are
  deleted between runs. No identifier is hashed here: the adds and removes are hashed when
  delivered.
- **compute**: the desired audience (generated members) and the ledger differ by ``churn``;
  the reconcile normalizes and hashes every desired member's email and phone the way Meta
  wants them and computes the adds and removes. Beside it, the bare loop
  ``hashlib.sha256(s.encode()).hexdigest()`` over the same already-normalized strings: the
  floor any Python implementation pays. Its peak RSS includes the generated input.

The full-reconcile figure judged against the target is the sum of the two (load from the store,
then normalize + hash + diff every member): an upper bound of a full re-upload.
Prints seconds (medians) and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    NO_TARGET,
    RECONCILE_MEMBERS,
    RECONCILE_TARGET_S,
    Row,
    mb,
    median,
    num,
    run_child,
    secs,
    table,
    verdict,
    vm_hwm_kb,
    write_result,
)

from tactful.destinations import hashing

SEGMENT = "suppress_promos"  # a segment of the starter config
DESTINATION = "bench_meta"
PAGE = 5000  # what DeliveryWorker.reconcile pages by


def people(n: int, offset: int = 0) -> list[tuple[str, str, str]]:
    return [
        (
            f"p_{i:012x}",
            f"  Customer.{i}@Example.com ",
            f"+1 (415) {i % 900 + 100:03d}-{i % 10000:04d}",
        )
        for i in range(offset, offset + n)
    ]


def reconcile(desired: list[tuple[str, str, str]], ledger: set[str]) -> tuple[int, int, int]:
    rows = {}
    for pid, email, phone in desired:
        rows[pid] = (hashing.meta_email(email), hashing.meta_phone(phone))
    want = rows.keys()
    adds = [pid for pid in want if pid not in ledger]
    removes = [pid for pid in ledger if pid not in rows]
    return len(rows), len(adds), len(removes)


def bare(strings: list[str]) -> int:
    n = 0
    for s in strings:
        hashlib.sha256(s.encode()).hexdigest()
        n += 1
    return n


# --------------------------------------------------------------------------- compute (child)


def compute_part(n: int, churn: float, runs: int) -> dict[str, Any]:
    changed = int(n * churn)
    desired = people(n)
    ledger = {pid for pid, _, _ in people(n - changed, offset=changed)} | {
        f"p_gone{i}" for i in range(changed)
    }
    strings = [e.strip().lower() for _, e, _ in desired] + [
        "1" + "".join(ch for ch in p if ch.isdigit())[1:] for _, _, p in desired
    ]
    input_kb = vm_hwm_kb()
    full, bare_times = [], []
    result = (0, 0, 0)
    for _ in range(runs):
        t = time.perf_counter()
        result = reconcile(desired, ledger)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare(strings)
        bare_times.append(time.perf_counter() - t)
    return {
        "members": n,
        "adds": result[1],
        "removes": result[2],
        "full": full,
        "bare": bare_times,
        "input_kb": input_kb,
        "peak_kb": vm_hwm_kb(),
    }


# --------------------------------------------------------------------------- store (child)


def settings_text(db: Path) -> str:
    from tactful.config import starter_config_text

    text = starter_config_text().replace(
        'url = "sqlite:///tactful.db"', f'url = "sqlite:///{db.as_posix()}"'
    )
    return (
        text
        + f"""
[[destinations]]
name = "{DESTINATION}"
type = "meta_audience"
segment = "{SEGMENT}"
audience_id = "23850000000000000"
access_token = "bench-token-never-used"
"""
    )


def store_part(db: Path) -> dict[str, Any]:
    """Page the segment's members, then run DeliveryWorker.reconcile (one child: the VmHWM
    after the paging is the paging's peak, the final one the reconcile's)."""
    from tactful.config import settings_from_toml
    from tactful.delivery.worker import DeliveryWorker
    from tactful.store.sqlite import open_store

    settings = settings_from_toml(settings_text(db), source="bench")
    store = open_store(settings.store.url)
    baseline_kb = vm_hwm_kb()
    began = time.perf_counter()
    members = 0
    after: str | None = None
    with store.reader() as reader:
        while True:
            page = reader.segment_members(SEGMENT, after, PAGE)
            if not page:
                break
            after = page[-1][0]
            members += len(page)
    paging = time.perf_counter() - began
    paging_kb = vm_hwm_kb()
    worker = DeliveryWorker(settings, store)
    began = time.perf_counter()
    adds, removes = worker.reconcile(DESTINATION)
    seconds = time.perf_counter() - began
    store.close()
    return {
        "members": members,
        "paging": paging,
        "paging_kb": paging_kb,
        "reconcile": seconds,
        "peak_kb": vm_hwm_kb(),
        "baseline_kb": baseline_kb,
        "adds": adds,
        "removes": removes,
    }


def build_store(path: Path, n: int) -> float:
    """A store of ``n`` realistic persons, as bench/tick.py builds them; its build seconds."""
    import importlib

    tick = importlib.import_module("tick")
    settings = tick.starter_settings()
    templates = tick.make_templates(settings, path.parent)
    built = tick.build_store(path, n, min(1000, n), templates, settings)
    return float(built.seconds)


def prepare_audience(db: Path, churn: float) -> tuple[int, int]:
    """Every person becomes a non-holdout member of SEGMENT; the ledger holds all of them but
    one in 1/churn (to add) plus as many persons who are gone (to remove)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.execute(
            "INSERT OR REPLACE INTO memberships (segment, person_id, since_us, false_since_us, "
            "holdout) SELECT ?, person_id, created_us, NULL, 0 FROM persons",
            (SEGMENT,),
        )
        conn.execute("DELETE FROM audience_ledger WHERE destination = ?", (DESTINATION,))
        every = max(2, round(1 / churn)) if churn > 0 else 0
        conn.execute(
            "INSERT INTO audience_ledger (destination, person_id, added_us) "
            "SELECT ?, person_id, 0 FROM persons" + (" WHERE rowid % ? <> 0" if every else ""),
            (DESTINATION, every) if every else (DESTINATION,),
        )
        members = int(conn.execute("SELECT COUNT(*) FROM persons").fetchone()[0])
        gone = members // every if every else 0
        conn.executemany(
            "INSERT INTO audience_ledger (destination, person_id, added_us) VALUES (?, ?, 0)",
            ((DESTINATION, f"p_gone_{i:09d}") for i in range(gone)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return members, gone


def clear_enqueued(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM deliveries WHERE destination = ?", (DESTINATION,))
    conn.close()


# --------------------------------------------------------------------------- orchestration


@dataclass
class ReconcileBench:
    compute: dict[str, Any]
    store: list[dict[str, Any]]  # one per run
    store_members: int
    build_seconds: float | None  # None: the store was handed in (--store-path)
    store_error: str | None = None

    @property
    def compute_seconds(self) -> float:
        return median(self.compute["full"])

    @property
    def bare_seconds(self) -> float:
        return median(self.compute["bare"])

    @property
    def paging_seconds(self) -> float:
        return median([r["paging"] for r in self.store])

    @property
    def store_seconds(self) -> float:
        return median([r["reconcile"] for r in self.store])


def _child(args: list[str]) -> dict[str, Any]:
    child = run_child([sys.executable, str(Path(__file__).resolve()), *args], timeout=600)
    if child.returncode != 0:
        lines = child.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"reconcile child {' '.join(args[:2])} failed ({child.returncode})"
            + (f": {lines[-1]}" if lines else "")
        )
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def run(
    members: int = 1_000_000,
    churn: float = 0.01,
    runs: int = 3,
    store_runs: int = 2,
    store_path: Path | None = None,
    store: bool = True,
    store_budget: float = 150.0,
) -> ReconcileBench:
    """``store_budget``: a further store run starts only if it should end within this many
    seconds of the first one's start (the first always runs)."""
    print(f"  compute: {members:,} members, {runs} runs …", file=sys.stderr)
    compute = _child(["--part", "compute", str(members), str(churn), str(runs)])
    bench = ReconcileBench(compute, [], 0, None)
    if not store:
        return bench
    work = Path(tempfile.mkdtemp(prefix="tactful-bench-reconcile-"))
    try:
        db = store_path
        if db is None:
            db = work / "audience.db"
            print(f"  store: building {members:,} persons …", file=sys.stderr)
            bench.build_seconds = build_store(db, members)
        n, gone = prepare_audience(db, churn)
        bench.store_members = n
        print(
            f"  store: {n:,} members of {SEGMENT}; the ledger differs by {gone:,} to add and "
            f"{gone:,} to remove",
            file=sys.stderr,
        )
        first = time.perf_counter()
        for i in range(store_runs):
            last = bench.store[-1] if bench.store else None
            if last and time.perf_counter() - first + last["paging"] + last["reconcile"] > (
                store_budget
            ):
                print(f"    (time budget: {i} store run(s))", file=sys.stderr)
                break
            result = _child(["--part", "store", str(db)])
            clear_enqueued(db)
            bench.store.append(result)
            print(
                f"    run {i + 1}/{store_runs}: paging {secs(result['paging'])}, "
                f"DeliveryWorker.reconcile {secs(result['reconcile'])} "
                f"(+{result['adds']:,} −{result['removes']:,}), "
                f"peak RSS {mb(result['peak_kb'], kib=True)} MB",
                file=sys.stderr,
            )
    except Exception as exc:  # report the compute part even if the store part fails
        bench.store_error = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return bench


def report(b: ReconcileBench) -> str:
    c = b.compute
    n = c["members"]
    rows = [
        [
            "compute: normalize + hash + diff (generated members)",
            num(n),
            secs(b.compute_seconds),
            " / ".join(secs(x) for x in c["full"]),
            f"{mb(c['peak_kb'], kib=True)} (input alone {mb(c['input_kb'], kib=True)})",
        ],
        [
            "compute: bare hashlib.sha256 over the same strings",
            num(2 * n) + " strings",
            secs(b.bare_seconds),
            " / ".join(secs(x) for x in c["bare"]),
            "",
        ],
    ]
    if b.store:
        rows += [
            [
                f"store: Reader.segment_members paging ({PAGE:,} a page)",
                num(b.store[0]["members"]),
                secs(b.paging_seconds),
                " / ".join(secs(r["paging"]) for r in b.store),
                mb(max(r["paging_kb"] for r in b.store), kib=True),
            ],
            [
                "store: DeliveryWorker.reconcile (page + consent + ledger + diff + enqueue)",
                num(b.store[0]["members"]),
                secs(b.store_seconds),
                " / ".join(secs(r["reconcile"]) for r in b.store),
                mb(max(r["peak_kb"] for r in b.store), kib=True),
            ],
        ]
    lines = [
        table(
            ["case", "members", "median", "runs", "peak RSS MB"],
            rows,
            title=f"Reconcile of an ad audience ({c['adds']:,} to add, {c['removes']:,} to "
            "remove in the compute part); each part in its own child process",
        ),
        f"  compute ÷ bare hashlib: {b.compute_seconds / b.bare_seconds:.2f}; compute members/s "
        f"{n / b.compute_seconds:,.0f}",
    ]
    if b.store:
        last = b.store[-1]
        built = (
            f"built in {b.build_seconds:.1f} s"
            if b.build_seconds is not None
            else "the tick benchmark's store"
        )
        lines.append(
            f"  store: SQLite, {b.store_members:,} persons ({built}), all members of "
            f"{SEGMENT}; the reconcile enqueued +{last['adds']:,} −{last['removes']:,}; "
            f"full reconcile (store + compute) {secs(b.store_seconds + b.compute_seconds)}"
        )
    if b.store_error:
        lines.append(f"  store part FAILED: {b.store_error}")
    return "\n".join(lines)


def summary_rows(b: ReconcileBench) -> list[Row]:
    c = b.compute
    n = c["members"]
    rows = []
    target = f"< {RECONCILE_TARGET_S:g} s for {num(RECONCILE_MEMBERS)} members"

    def judge(seconds: float, members: int) -> str:
        if members < RECONCILE_MEMBERS:
            return f"{NO_TARGET} (smaller audience)"
        return verdict(seconds < RECONCILE_TARGET_S)

    if b.store:
        m = b.store[0]["members"]
        full = b.store_seconds + b.compute_seconds
        rows.append(
            Row(
                "reconcile (full)",
                f"{num(m)}-member audience: store + normalize/hash/diff",
                secs(full),
                target,
                judge(full, min(m, n)),
                mb(max(c["peak_kb"], *(r["peak_kb"] for r in b.store)), kib=True),
                f"{secs(b.store_seconds)} store + {secs(b.compute_seconds)} hashing every "
                "member: an upper bound (a real reconcile hashes only the adds and removes)",
            )
        )
        rows.append(
            Row(
                "reconcile: store",
                f"{num(m)} members, DeliveryWorker.reconcile",
                secs(b.store_seconds),
                "(part of the full reconcile)",
                NO_TARGET,
                mb(max(r["peak_kb"] for r in b.store), kib=True),
                f"median of {len(b.store)}; segment_members paging alone "
                f"{secs(b.paging_seconds)} ({mb(max(r['paging_kb'] for r in b.store), kib=True)}"
                f" MB); reconcile = members with consent, ledger, diff, enqueue "
                f"+{b.store[-1]['adds']:,} −{b.store[-1]['removes']:,}",
            )
        )
    elif b.store_error:
        rows.append(Row("reconcile: store", "—", "failed", met="failed", notes=b.store_error))
    rows.append(
        Row(
            "reconcile: compute",
            f"{num(n)} members, normalize + hash + diff",
            secs(b.compute_seconds),
            "(part of the full reconcile)" if b.store else target + " (compute only)",
            NO_TARGET if b.store else judge(b.compute_seconds, n),
            mb(c["peak_kb"], kib=True),
            f"median of {len(c['full'])}; bare hashlib {secs(b.bare_seconds)} "
            f"(×{b.compute_seconds / b.bare_seconds:.2f}); RSS includes the generated input "
            f"({mb(c['input_kb'], kib=True)} MB)",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--part"]:
        part = args_list[1]
        if part == "compute":
            out = compute_part(int(args_list[2]), float(args_list[3]), int(args_list[4]))
        else:
            out = store_part(Path(args_list[2]))
        sys.stdout.write(json.dumps(out))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=3, help="compute runs")
    parser.add_argument("--store-runs", type=int, default=2, help="store runs")
    parser.add_argument(
        "--store-path",
        type=Path,
        default=None,
        metavar="DB",
        help="a SQLite store built by bench/tick.py to use (it is modified: the audience and "
        "its ledger are added); default: build one of --members persons",
    )
    parser.add_argument(
        "--store-budget",
        type=float,
        default=150.0,
        metavar="SECONDS",
        help="no further store run unless it should end within this (default 150)",
    )
    parser.add_argument("--no-store", action="store_true", help="the compute part only")
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    args = parser.parse_args(args_list)
    bench = run(
        args.members,
        args.churn,
        args.runs,
        args.store_runs,
        args.store_path,
        store=not args.no_store,
        store_budget=args.store_budget,
    )
    text = report(bench)
    print(text)
    write_result(args.json_out, text, summary_rows(bench))


if __name__ == "__main__":
    main()

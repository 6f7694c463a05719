"""All benchmarks with their defaults: the import (beside DuckDB) and the tick; one summary.

    .venv/bin/python bench/run.py            # import N = 2000, 10000, 30000; tick P = 10k..1M
    .venv/bin/python bench/run.py --quick    # a smoke run in well under a minute

Prints each section's table, then one combined table of the headline figures.
Figures only; this is not a timed test.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import code_version, load_now, machine, mb, median, num, secs, table


def _module(name: str) -> ModuleType:
    # bench/import.py cannot be imported with an import statement ("import" is a keyword).
    return importlib.import_module(name)


def summary(imports: object | None, ticks: object | None) -> str:
    imp = _module("import")
    tck = _module("tick")
    rows: list[list[str]] = []
    if isinstance(imports, imp.ImportBench):
        for r in imports.results:
            rows.append(
                [
                    "import → SQLite",
                    f"N={num(r.persons)} persons, {num(r.runs[0].records)} records",
                    f"{num(r.median_rate)} records/s",
                    f"{r.median_rate / imp.TARGET:.2f}× the 20,000/s target; "
                    f"{secs(r.median_seconds)} (median of {len(r.runs)}); "
                    f"peak RSS {mb(r.peak_kb, kib=True)} MB",
                ]
            )
        for r in imports.results:
            if r.duck is None or r.check is None:
                continue
            times = {k: median(v) for k, v in r.duck.seconds.items()}
            fastest = min(times.values())
            agree = "agree" if r.check.agree and r.duck.forms_agree else "DISAGREE"
            rows.append(
                [
                    "DuckDB basic fields",
                    f"N={num(r.persons)}, {num(r.duck.rows_read)} rows",
                    " / ".join(secs(t) for t in times.values()),
                    f"{num(r.duck.rows_read / fastest)} rows/s; open-ticket persons "
                    f"{num(r.check.rolled_up_open)} vs Tactful {num(r.check.tactful_open)}: "
                    f"{agree}",
                ]
            )
        if imports.cli is not None and imports.results:
            c, last = imports.cli, imports.results[-1]
            rows.append(
                [
                    "tactful import (CLI)",
                    f"N={num(last.persons)}",
                    f"{c.wall:.2f} s wall",
                    f"{num(c.records / c.wall)} records/s end to end; start-up and exit "
                    f"{c.wall - c.seconds:.2f} s",
                ]
            )
    if isinstance(ticks, tck.TickBench):
        for p in ticks.results:
            fired = p.runs[-1].fired
            rows.append(
                [
                    "Engine.tick",
                    f"{num(fired)} due among {num(p.built.persons)} persons",
                    secs(p.median_seconds),
                    f"{p.median_seconds / max(fired, 1) * 1000:.2f} ms per timer; "
                    f"idle tick {secs(median([x.idle_seconds for x in p.runs]))}",
                ]
            )
    return table(["benchmark", "case", "figure", "notes"], rows, title="Summary", align="llrl")


def main(argv: Sequence[str] | None = None) -> int:
    imp = _module("import")
    tck = _module("tick")
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="Run the import and tick benchmarks; print a summary."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--import-persons", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--repeat", type=int, default=None, metavar="R", help="imports per N")
    parser.add_argument("--budget", type=float, default=180.0, help="import section budget (s)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="B", help="import batch")
    parser.add_argument("--tick-persons", type=int, nargs="+", default=None, metavar="P")
    parser.add_argument("--due", type=int, default=1000, metavar="D")
    parser.add_argument("--runs", type=int, default=None, help="ticks per population")
    parser.add_argument("--profile", action="store_true", help="cProfile one import and tick")
    parser.add_argument("--skip", choices=("import", "tick"), action="append", default=[])
    args = parser.parse_args(argv)
    quick = args.quick
    persons = args.import_persons or ([2000, 10_000] if quick else list(imp.DEFAULT_PERSONS))
    populations = args.tick_persons or (
        [10_000, 100_000] if quick else list(tck.DEFAULT_POPULATIONS)
    )
    repeat = args.repeat or (1 if quick else 3)
    runs = args.runs or (1 if quick else 3)

    print(f"machine: {machine()}", file=sys.stderr)
    load_before = load_now()
    began = time.perf_counter()
    imports = ticks = None
    sections: list[str] = []
    if "import" not in args.skip:
        print("import benchmark …", file=sys.stderr)
        imports = imp.run(
            persons,
            repeat,
            profile=args.profile,
            budget=args.budget,
            batch_size=args.batch_size,
        )
        sections.append(imp.report(imports))
    if "tick" not in args.skip:
        print("tick benchmark …", file=sys.stderr)
        ticks = tck.run(populations, args.due, runs, profile=args.profile)
        sections.append(tck.report(ticks))
    print(f"machine: {machine()}")
    print(f"tactful: {code_version()}")
    print(
        f"load average before/after: {load_before} / {load_now()}; "
        f"total {time.perf_counter() - began:.0f} s"
    )
    for text in sections:
        print()
        print(text)
    print()
    print(summary(imports, ticks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Every benchmark, one command, one summary table with the Production issue's targets.

    .venv/bin/python bench/run.py            # everything (about 13 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # a smoke run of every section (under 2 minutes)
    .venv/bin/python bench/run.py --only import-sqlite tick

Each section runs as a child process of its own (``bench/<script>.py … --json-out FILE``), and
each figure's peak memory is the RSS high-water mark (``VmHWM``) of the process that did the
work: an import worker, a tick process, the server, a reconcile child. The sections' own
tables are printed first, then the summary: measured figure, target, met / NOT MET (computed
from the figures), peak RSS. A section that fails or cannot run here (the PostgreSQL store
before it exists) shows why in its row; the others still run.
Figures only; this is not a timed test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Row, code_version, load_now, machine, run_child, table

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Section:
    name: str
    title: str  # the summary's section label when it fails
    script: str
    args: Callable[[bool, Path], list[str]]  # (quick, work dir) -> arguments
    timeout: float  # seconds before the section is killed
    # ``--full``: these arguments instead, and this timeout (None: as without --full)
    full: tuple[list[str], float] | None = None

    def argv(
        self, quick: bool, work: Path, import_persons: Sequence[int] | None, full: bool = False
    ) -> list[str]:
        args = list(self.full[0]) if full and self.full else self.args(quick, work)
        if import_persons and self.script == "import.py":  # --persons overridden
            at = args.index("--persons")
            end = next((i for i in range(at + 1, len(args)) if args[i].startswith("--")), None)
            args[at + 1 : end] = [str(n) for n in import_persons]
        return args


def _tick_args(quick: bool, work: Path) -> list[str]:
    persons = ["10000", "100000"] if quick else ["10000", "100000", "1000000"]
    runs = "1" if quick else "5"
    return ["--persons", *persons, "--runs", runs, "--keep-largest", str(work / "tick.db")]


def _reconcile_args(quick: bool, work: Path) -> list[str]:
    args = ["--members", "100000" if quick else "1000000"]
    args += ["--runs", "1", "--store-runs", "1"] if quick else ["--runs", "3", "--store-runs", "2"]
    if (work / "tick.db").exists():  # the tick section's largest store, the same population
        args += ["--store-path", str(work / "tick.db")]
    return args


SECTIONS = (
    Section(
        "import-sqlite",
        "import → SQLite",
        "import.py",
        lambda quick, work: (
            ["--store", "sqlite", "--no-cli"]
            + (
                ["--persons", "500", "2000", "--repeat", "1", "--budget", "30"]
                if quick
                else ["--persons", "10000", "30000", "100000", "--repeat", "3", "--budget", "300"]
            )
        ),
        600,
        # the 1M-person row, by person: 12M records, about half an hour on the 2-core
        # machine (not in the default run, which stays under 20 minutes)
        (
            [
                "--store",
                "sqlite",
                "--no-cli",
                "--by-person",
                "--persons",
                "10000",
                "100000",
                "1000000",
                "--repeat",
                "1",
                "--budget",
                "0",
            ],
            3 * 3600,
        ),
    ),
    Section(
        # issue 24: by person, one process against two workers (one writer on SQLite)
        "import-sqlite-workers",
        "parallel import → SQLite",
        "import.py",
        lambda quick, work: (
            ["--store", "sqlite", "--no-cli", "--no-duckdb", "--by-person", "--workers", "1", "2"]
            + (
                ["--persons", "2000", "--repeat", "1", "--budget", "30"]
                if quick
                else ["--persons", "10000", "30000", "--repeat", "1", "--budget", "0"]
            )
        ),
        600,
        (
            [
                "--store",
                "sqlite",
                "--no-cli",
                "--no-duckdb",
                "--by-person",
                "--workers",
                "1",
                "2",
                "--persons",
                "10000",
                "100000",
                "--repeat",
                "1",
                "--budget",
                "0",
            ],
            3600,
        ),
    ),
    Section(
        "import-postgresql",
        "import → PostgreSQL",
        "import.py",
        lambda quick, work: (
            ["--store", "postgresql", "--no-cli", "--no-duck-rows"]
            + (
                ["--persons", "500", "--repeat", "1", "--budget", "20"]
                if quick
                else ["--persons", "10000", "30000", "--repeat", "3", "--budget", "150"]
            )
        ),
        420,
        (
            [
                "--store",
                "postgresql",
                "--no-cli",
                "--no-duck-rows",
                "--persons",
                "10000",
                "100000",
                "1000000",
                "--repeat",
                "1",
                "--budget",
                "0",
            ],
            4 * 3600,
        ),
    ),
    Section(
        "webhooks",
        "webhooks (acks)",
        "webhooks.py",
        lambda quick, work: ["--rounds", "1", "--seconds", "3"] if quick else ["--rounds", "3"],
        240,
    ),
    Section(
        "webhooks-postgresql",
        "webhooks (acks)",
        "webhooks.py",
        lambda quick, work: (
            ["--store", "postgresql", "--processes", "2", "--no-bare"]
            + (["--rounds", "1", "--seconds", "3"] if quick else ["--rounds", "3"])
        ),
        240,
    ),
    Section(
        "freshness",
        "freshness",
        "freshness.py",
        lambda quick, work: ["--seconds", "5"] if quick else ["--seconds", "15"],
        180,
    ),
    Section("tick", "Engine.tick", "tick.py", _tick_args, 600),
    Section(
        "tick-postgresql",
        "Engine.tick (PostgreSQL)",
        "tick.py",
        lambda quick, work: (
            ["--store", "postgresql"]
            + (
                ["--persons", "2000", "20000", "--runs", "1"]
                if quick
                else ["--persons", "10000", "100000", "1000000", "--runs", "5"]
            )
        ),
        600,
    ),
    Section("reconcile", "reconcile", "reconcile.py", _reconcile_args, 600),
)
NAMES = tuple(s.name for s in SECTIONS)


@dataclass
class Outcome:
    section: Section
    wall: float
    report: str
    rows: list[Row]


def run_section(
    section: Section,
    quick: bool,
    work: Path,
    import_persons: Sequence[int] | None = None,
    full: bool = False,
) -> Outcome:
    out = work / f"{section.name}.json"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(BENCH / section.script),
        *section.argv(quick, work, import_persons, full),
        "--json-out",
        str(out),
    ]
    print(f"== {section.name}: {' '.join(cmd[1:])}", file=sys.stderr)
    timeout = section.full[1] if full and section.full else section.timeout
    child = run_child(cmd, timeout=timeout, pass_stderr=True)
    if child.returncode == 0 and out.exists():
        data = json.loads(out.read_text(encoding="utf-8"))
        rows = [Row(**r) for r in data["rows"]]
        return Outcome(section, child.wall, str(data["report"]), rows)
    if child.returncode == -9 and child.wall >= timeout:
        why = f"timed out after {timeout:.0f} s"
    else:
        lines = child.stderr.decode(errors="replace").strip().splitlines()
        why = f"exit {child.returncode}" + (f": {lines[-1][:160]}" if lines else "")
    row = Row(section.title, "—", "failed", met="failed", notes=why)
    return Outcome(section, child.wall, f"{section.name}: FAILED ({why})", [row])


def summary(outcomes: Sequence[Outcome]) -> str:
    rows = [r for o in outcomes for r in o.rows]
    # The memory rows (flat in the number of people?) together, after the others.
    ordered = [r for r in rows if not r.section.startswith("memory")]
    ordered += [r for r in rows if r.section.startswith("memory")]
    return table(
        ["section", "case", "measured", "target", "met?", "peak RSS MB", "notes"],
        [[r.section, r.case, r.measured, r.target, r.met, r.peak_rss, r.notes] for r in ordered],
        title="Summary (medians; peak RSS = VmHWM of the process that did the work)",
        align="lllllrl",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run every benchmark section in its own process; print one summary table.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also the 1M-person import rows (SQLite by person, PostgreSQL; hours, not minutes)",
    )
    parser.add_argument("--only", nargs="+", choices=NAMES, default=None, metavar="SECTION")
    parser.add_argument("--skip", nargs="+", choices=NAMES, default=[], metavar="SECTION")
    parser.add_argument(
        "--import-persons",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="the import sections' sizes instead of their defaults",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="where temp files go")
    args = parser.parse_args(argv)
    chosen = [s for s in SECTIONS if (args.only is None or s.name in args.only)]
    chosen = [s for s in chosen if s.name not in args.skip]

    print(f"machine: {machine()}", file=sys.stderr)
    load_before = load_now()
    began = time.perf_counter()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-run-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        for section in chosen:
            outcomes.append(run_section(section, args.quick, work, args.import_persons, args.full))
    total = time.perf_counter() - began
    print(f"machine: {machine()}")
    print(f"tactful: {code_version()}")
    print(
        f"load average before/after: {load_before} / {load_now()}; total {total:.0f} s ("
        + ", ".join(f"{o.section.name} {o.wall:.0f} s" for o in outcomes)
        + ")"
        + ("; --quick: small sizes, NOT the targets' sizes" if args.quick else "")
    )
    for o in outcomes:
        print()
        print(o.report)
    print()
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

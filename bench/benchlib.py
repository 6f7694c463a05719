"""Shared helpers for the benchmarks: child processes with their own peak memory, tables,
number formatting and a description of the machine. Standard library only."""

from __future__ import annotations

import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: exit code, output, wall time and its peak RSS."""

    returncode: int
    stdout: bytes
    stderr: bytes
    wall: float
    hwm_kb: int  # the child's VmHWM (KiB), polled while it ran (0 where /proc is missing)


def vm_hwm_kb(pid: int | str = "self") -> int:
    """The process's RSS high-water mark (``VmHWM``, KiB), 0 if unknown.

    Not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` starts from its parent's high-water
    mark at fork (it survives ``exec``), so a big parent would inflate every child's figure.
    ``VmHWM`` belongs to the address space made by ``exec``: the child's own memory only.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_child(
    cmd: Sequence[str],
    stdin: bytes | None = None,
    timeout: float = 900,
    *,
    pass_stderr: bool = False,
) -> ChildResult:
    """Run ``cmd``, polling its VmHWM until it exits (the last reading is its peak).

    ``pass_stderr``: also copy the child's stderr (its progress) to ours as it runs; it is
    captured either way. A child still running after ``timeout`` seconds is killed (return
    code -9).
    """
    with tempfile.TemporaryDirectory(prefix="tactful-bench-child-") as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        with (
            open(out_path, "wb") as out,
            open(err_path, "ab") as err,
            open(err_path, "rb") as err_reader,
            tempfile.TemporaryFile() as inp,
        ):
            if stdin is not None:
                inp.write(stdin)
                inp.seek(0)

            def copy_stderr() -> None:
                if pass_stderr:
                    chunk = err_reader.read()
                    if chunk:
                        sys.stderr.buffer.write(chunk)
                        sys.stderr.flush()

            began = time.perf_counter()
            proc = subprocess.Popen(list(cmd), stdin=inp, stdout=out, stderr=err)
            hwm = 0
            try:
                while proc.poll() is None:
                    hwm = max(hwm, vm_hwm_kb(proc.pid))
                    if time.perf_counter() - began > timeout:
                        proc.kill()
                    copy_stderr()
                    time.sleep(0.005 if not pass_stderr else 0.05)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                copy_stderr()
            wall = time.perf_counter() - began
        return ChildResult(proc.returncode, out_path.read_bytes(), err_path.read_bytes(), wall, hwm)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def mb(kib_or_bytes: float, *, kib: bool = False) -> str:
    value = kib_or_bytes / 1024 if kib else kib_or_bytes / (1024 * 1024)
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def num(value: float) -> str:
    return f"{value:,.0f}"


def secs(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str = "",
    align: str = "l",
) -> str:
    """A plain-text table; ``align`` has one letter per column, ``l`` or ``r`` (columns past
    its end are right-aligned): by default the first column left, the others right."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if align[i : i + 1] == "l" else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out += [line(headers), rule, *(line(r) for r in rows)]
    return "\n".join(out)


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                mem = f", {int(text.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu}, {cores} cores{mem}; {platform.system()} {platform.release()}; "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
    )


def code_version() -> str:
    """The commit measured, ``+dirty`` if ``tactful/`` has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "tactful"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def load_now() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews the figures."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def dir_bytes(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


# --------------------------------------------------------------------------- summary rows

# The Production issue's targets (2-core machine), printed beside the measured figures.
IMPORT_TARGET = 20_000  # records/s into SQLite
WEBHOOK_RATE_TARGET = 500.0  # acknowledgements/s
WEBHOOK_P99_TARGET_MS = 50.0
FRESHNESS_P99_TARGET_S = 2.0  # webhook -> destination, at 200 events/s
RECONCILE_TARGET_S = 10.0  # full reconcile of a 1,000,000-member audience
RECONCILE_MEMBERS = 1_000_000  # smaller audiences (--quick) are not judged against it
FRESHNESS_RATE = 200.0  # events/s the freshness target is stated at
# "Flat" as judged here: the figure at the largest population is at most this multiple of
# the figure at the smallest (tick time; peak memory).
FLAT_RATIO = 1.25
TICK_FLAT_RATIO = 1.5
# Issue 24: records/s at the largest N at least this share of records/s at the smallest.
RATE_FLAT_SHARE = 0.8

MET, NOT_MET, NO_TARGET = "met", "NOT MET", "—"


@dataclass(frozen=True)
class Row:
    """One line of the combined summary (``bench/run.py``)."""

    section: str
    case: str
    measured: str
    target: str = ""
    met: str = NO_TARGET  # MET, NOT_MET or NO_TARGET (or a short reason: "unavailable")
    peak_rss: str = ""  # MB, the measured process's VmHWM
    notes: str = ""

    def as_json(self) -> dict[str, str]:
        return dict(self.__dict__)


def verdict(ok: bool) -> str:
    return MET if ok else NOT_MET


def write_result(path: str | os.PathLike[str] | None, report: str, rows: Sequence[Row]) -> None:
    """What a section's ``--json-out`` holds: its printed report and its summary rows."""
    if path is None:
        return
    import json

    Path(path).write_text(
        json.dumps({"report": report, "rows": [r.as_json() for r in rows]}), encoding="utf-8"
    )


STORE_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
STARTER_URL_LINE = 'url = "sqlite:///tactful.db"'


def sqlite_url(db: Path) -> str:
    return f"sqlite:///{db.as_posix()}"


def config_text(url: str) -> str:
    """The starter ``tactful.toml`` with its store URL replaced by ``url``."""
    from tactful.config import starter_config_text

    text = starter_config_text()
    if STARTER_URL_LINE not in text:
        raise SystemExit(f"the starter config no longer contains {STARTER_URL_LINE!r}")
    return text.replace(STARTER_URL_LINE, f'url = "{url}"')


class Unavailable(Exception):
    """The store (or its server) cannot be used here: the section reports why instead of
    figures."""


def pg_cluster(*, durable: bool = False, settings: dict[str, str] | None = None) -> Any:
    """A PostgreSQL server (``tactful.testing.pgcluster``: a throwaway one, or ``TACTFUL_TEST_PG``);
    ``Unavailable`` when there is none."""
    try:
        from tactful.testing import pgcluster
    except ImportError as exc:
        raise Unavailable(f"tactful.testing.pgcluster cannot be imported: {exc}") from exc
    try:
        return pgcluster.start(durable=durable, settings=settings)
    except pgcluster.ClusterUnavailable as exc:
        raise Unavailable(str(exc)) from exc


def pg_database(cluster: Any, prefix: str) -> str:
    """A fresh database on ``cluster``; ``Unavailable`` when it cannot be created."""
    import psycopg

    try:
        return str(cluster.new_database(prefix))
    except psycopg.Error as exc:
        raise Unavailable(f"cannot create a database: {exc}") from exc


def write_unavailable(
    path: str | os.PathLike[str] | None, section: str, case: str, reason: str
) -> None:
    """A section that cannot run here (no PostgreSQL server): says so, and writes one
    "unavailable" row with the reason instead of figures."""
    text = f"PostgreSQL unavailable: {reason}"
    print(text)
    write_result(path, text, [Row(section, case, "unavailable", met="unavailable", notes=reason)])


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100)
    return float(sorted_values[int(rank) - 1])


def serve_argv(config: str | os.PathLike[str], port: int) -> list[str]:
    """The command line of a benchmarked ``tactful serve`` (quiet: warnings only)."""
    return [
        sys.executable,
        "-m",
        "tactful",
        "--config",
        str(config),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

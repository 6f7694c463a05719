"""Shared helpers for the benchmarks: child processes with their own peak memory, tables,
number formatting and a description of the machine. Standard library only."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


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


def run_child(cmd: Sequence[str], stdin: bytes | None = None, timeout: float = 900) -> ChildResult:
    """Run ``cmd``, polling its VmHWM until it exits (the last reading is its peak)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as inp,
    ):
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        began = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdin=inp, stdout=out, stderr=err)
        hwm = 0
        try:
            while proc.poll() is None:
                hwm = max(hwm, vm_hwm_kb(proc.pid))
                if time.perf_counter() - began > timeout:
                    proc.kill()
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        return ChildResult(proc.returncode, out.read(), err.read(), wall, hwm)


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

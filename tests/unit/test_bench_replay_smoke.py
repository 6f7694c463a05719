"""Smoke test of ``bench/replay.py`` (issue 17's figures): a tiny run prints its table, and
the figures that are exact (not timings) hold: a no-op replay and 1,000 ticketless users
send nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_replay_prints_its_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay.py"), "--persons", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("persons"))
    cells = lines[header + 2].split()
    assert cells[0] == "60"
    assert cells[2] == "0"  # deliveries after a no-op replay
    assert "1,000 ticketless users imported: 0 deliveries" in done.stdout

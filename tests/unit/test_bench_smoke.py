"""Smoke test of the benchmark runner: one tiny import section, the summary table's rows.

Runs ``bench/run.py --quick --only import-sqlite`` with a few hundred persons in a child
process (well under 20 s) and checks the combined summary: the SQLite import rows with their
target and verdict, the DuckDB recompute row and the memory row. Figures are not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``bench/<script>`` with ``args`` in a child process; it must exit 0."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_bench_run_prints_the_summary_table(tmp_path: Path) -> None:
    done = _bench(
        "run.py",
        "--quick",
        "--only",
        "import-sqlite",
        "--import-persons",
        "150",
        "300",
        "--work-dir",
        str(tmp_path),
        timeout=120,
    )
    out = done.stdout
    summary = out[out.index("Summary (medians") :].splitlines()
    header = summary[1]
    for column in ("section", "case", "measured", "target", "met?", "peak RSS MB", "notes"):
        assert column in header
    rows = summary[3:]
    imports = [r for r in rows if r.startswith("import → SQLite")]
    assert len(imports) == 2
    assert "N=150 persons" in imports[0] and "N=300 persons" in imports[1]
    for row in imports:
        assert "records/s" in row and "≥ 20,000 records/s" in row
        assert " met " in row or "NOT MET" in row
        assert "fields vs DuckDB: all equal" in row
        assert "import ÷ DuckDB" in row  # records/s beside the compute floor (issue 24)
    assert sum(r.startswith("DuckDB SQL recompute") for r in rows) == 2
    (flat,) = [r for r in rows if r.startswith("per-record cost: import → SQLite")]
    assert "N=150 → 300" in flat and "≥ ×0.8" in flat
    (memory,) = [r for r in rows if r.startswith("memory: import → SQLite")]
    assert "flat in N" in memory
    assert "failed" not in out


def test_webhook_bench_drives_two_postgresql_processes(tmp_path: Path) -> None:
    """The several-processes case of the webhook benchmark: two ``tactful serve`` on one
    PostgreSQL database, each with its own client; one short round. Figures are not checked,
    only that both processes answered every request and the row says what was measured."""
    out = tmp_path / "webhooks.json"
    done = _bench(
        "webhooks.py",
        "--store",
        "postgresql",
        "--processes",
        "2",
        "--no-bare",
        "--rounds",
        "1",
        "--seconds",
        "2",
        "--requests",
        "200",
        "--json-out",
        str(out),
        timeout=180,
    )
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1  # no bare-app row
    (row,) = rows
    assert row["case"] == "2 tactful serve processes, PostgreSQL, fsync per commit"
    assert row["measured"].endswith(" ms") and "/s, p50 " in row["measured"]
    assert "errors 0" in row["notes"]
    assert "2 processes on one store" in done.stdout


def test_tick_bench_on_postgresql_fires_every_due_timer(tmp_path: Path) -> None:
    """The PostgreSQL case of the tick benchmark: each built store copied into a database of
    its own, ticked in rounds. Figures are not checked, only that every run fired its whole due
    set from the copied rows and the rows name the store."""
    out = tmp_path / "tick.json"
    done = _bench(
        "tick.py",
        "--store",
        "postgresql",
        "--persons",
        "300",
        "1200",
        "--due",
        "50",
        "--runs",
        "2",
        "--json-out",
        str(out),
        timeout=180,
    )
    rows = json.loads(out.read_text())["rows"]
    ticks = [r for r in rows if r["section"] == "Engine.tick (PostgreSQL)"]
    assert [r["case"] for r in ticks] == ["50 due among 300 persons", "50 due among 1,200 persons"]
    assert {r["section"] for r in rows} == {
        "Engine.tick (PostgreSQL)",
        "Engine.tick vs population (PostgreSQL)",
        "memory: Engine.tick (PostgreSQL)",
    }
    assert "on PostgreSQL" in done.stdout
    assert "P=1,200 tick 2/2: 50 timers fired" in done.stderr


def test_bench_reasons_reports_quality_and_cost(tmp_path: Path) -> None:
    """``bench/reasons.py`` (issue 25) on a small sample: a model is trained and beats the
    keyword rules on untagged tickets; the cost figures are there."""
    out = tmp_path / "reasons.json"
    _bench(
        "reasons.py",
        *("--tickets", "450", "--import-tickets", "200", "--repeat", "1"),
        *("--json-out", str(out)),
        timeout=300,
    )
    data = json.loads(out.read_text())
    quality = data["quality"]
    assert quality["train"]["activated"]
    assert quality["untagged_accuracy_rules_and_model"] > quality["untagged_accuracy_rules_only"]
    assert quality["foreign_left_to_rules"] == quality["foreign"]
    assert data["cost"]["classify_with_model_us"] > 0
    assert data["import"]["events_per_s_model_on"] > 0

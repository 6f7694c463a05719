"""The live demo compresses time for the report (issue 23): it plays ``history_days`` of the
story as fast as it goes before running live, so the report's 30-day window has passed for
the launch's people within a minute, with treated and holdout members measured on both sides.
The customers reach Tactful with their names (the people page finds them by name).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tactful.config import load_settings
from tactful.demo.runner import DemoOptions, run_demo
from tactful.report import build_report
from tactful.store.sqlite import open_store

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_has_a_report_within_a_minute(tmp_path: Path) -> None:
    lines: list[str] = []
    options = DemoOptions(
        port=free_port(),
        directory=tmp_path / "demo",
        customers=150,
        history_days=35,
        duration=60,
        status_seconds=30,
    )
    assert run_demo(options, say=lines.append) == 0
    log = "\n".join(lines)
    assert "history played (35 simulated days in" in log, log
    settings = load_settings(options.directory / "tactful.toml")
    store = open_store(settings.store.url)
    try:
        report = build_report(store, settings, segment="suppress_promos")
        with store.reader() as reader:
            named = reader.persons_named("a")  # the customers came with their names
    finally:
        store.close()
    assert len(named) > 50
    (suppress,) = report.segments
    assert suppress.measured_treated >= 30 and suppress.measured_holdout >= 5, suppress
    unsubscribe = next(m for m in suppress.metrics if m.name == "unsubscribe")
    assert unsubscribe.difference is not None and unsubscribe.difference_ci is not None

"""Issue 24: a replay can fold the log by person (``Engine.replay(by_person=True)``), as
``import --by-person`` folds an export: the log planned into components, each person loaded
and saved once. It gives what a fresh import gives, so a replay by person of a store built
by one exact import changes nothing: every table is the same, the outbox gets nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tactful.engine.engine import Incoming
from tactful.testing import harness

from .test_import_by_person import SALT, _export, _tables
from .test_import_order import CONFIG


@pytest.mark.parametrize("seed", range(6))
def test_a_replay_by_person_of_a_fresh_import_changes_nothing(seed: int, tmp_path: Path) -> None:
    events = _export(seed, 400)
    engine = harness(CONFIG, f"sqlite:///{tmp_path}/store.db", salt=SALT).engine
    # One batch, in which the engine sorts every event by time: the exact answer.
    engine.apply_many([Incoming(events, None, "test")], history=True)
    before = _tables(engine)
    assert before["history"] and before["outbox"]
    report = engine.replay(batch_size=20, by_person=True)
    logged = len(before["events"])
    assert (report.events, report.persons_changed, report.messages) == (logged, 0, 0)
    after = _tables(engine)
    for table, rows in before.items():
        assert after[table] == rows, f"seed {seed}: {table} differs"


def test_a_dry_run_by_person_reports_what_a_dry_run_in_log_order_reports(tmp_path: Path) -> None:
    events = _export(3, 400)
    engine = harness(CONFIG, f"sqlite:///{tmp_path}/store.db", salt=SALT).engine
    engine.apply_many([Incoming(events, None, "test")], history=True)
    before = _tables(engine)
    # a segment removed: its members exit
    engine.rules = replace(engine.rules, segments=engine.rules.segments[:-1])
    in_order = engine.replay(batch_size=20, dry_run=True)
    by_person = engine.replay(batch_size=20, dry_run=True, by_person=True)
    assert in_order.persons_changed > 0 and by_person.dry_run
    assert (by_person.persons_changed, by_person.messages, by_person.segments) == (
        in_order.persons_changed,
        in_order.messages,
        in_order.segments,
    )
    assert _tables(engine) == before  # nothing written

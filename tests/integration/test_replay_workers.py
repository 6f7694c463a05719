"""Issue 24: a replay by person spreads its batches over worker processes
(``Engine.replay(by_person=True, workers=N)``): on SQLite the workers fold on snapshots and
the replaying process writes each batch with the marker, in the batches' order; on
PostgreSQL each worker commits its batches with the marker, which records the batches done
out of order. Either way the store ends as a replay in one process leaves it: every table,
the outbox's corrections included, every person through the reader, and the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tactful.engine import replay_workers
from tactful.engine.engine import Engine
from tactful.engine.replay import ReplayReport
from tactful.testing import harness

from .test_import_by_person import CONFIG, SALT, _compare, _export, _in_time_order, _store_urls
from .test_pg_workers import meeting_in_workers


def _replayed(url: str, seed: int, workers: int) -> tuple[Engine, ReplayReport]:
    """An export imported in time order, then a segment taken out of the config (its
    members exit: the replay corrects them), then replayed by person on ``workers``."""
    engine = harness(CONFIG, url, salt=SALT).engine
    _in_time_order(engine, _export(seed, 1200, neighbourhoods=6), 100)
    engine.rules = replace(engine.rules, segments=engine.rules.segments[:-1])
    report = engine.replay(batch_size=50, by_person=True, workers=workers)
    return engine, report


@pytest.mark.slow  # forks worker processes
@pytest.mark.parametrize(
    ("store", "seed"),
    [("sqlite", seed) for seed in range(4)]
    + [pytest.param("postgresql", seed, marks=pytest.mark.postgresql) for seed in range(2)],
)
def test_a_replay_by_person_with_four_workers_equals_one(
    store: str,
    seed: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    urls = _store_urls(store, tmp_path, request)
    one, alone = _replayed(next(urls), seed, 1)
    assert alone.messages > 0 and alone.persons_changed > 0
    if store == "sqlite":  # every batch is folded by a worker, none by the writer itself
        monkeypatch.setattr(replay_workers, "_fold_here", _not_here)
    four, spread = _replayed(next(urls), seed, 4)
    assert spread == alone
    _compare(one, four, f"{store}, seed {seed}")
    for engine in (one, four):
        engine.store.close()


def _not_here(*args: Any) -> Any:
    raise AssertionError("the writer folded a batch itself")


def test_a_dry_run_refuses_workers(tmp_path: Path) -> None:
    """A dry run's work is rolled back, in one transaction no worker could see: it folds in
    one process, and asking it for workers is an error that says so."""
    engine = harness(CONFIG, f"sqlite:///{tmp_path}/store.db", salt=SALT).engine
    _in_time_order(engine, _export(1, 200), 100)
    with pytest.raises(ValueError, match="a dry run folds in one process"):
        engine.replay(dry_run=True, by_person=True, workers=2)
    assert engine.replay(dry_run=True, by_person=True, workers=1).dry_run


@pytest.mark.slow  # forks worker processes
@pytest.mark.postgresql
def test_postgresql_replay_workers_fold_their_batches_at_the_same_time(
    pg_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker's first batch waits, inside its transaction (its locks held), until the
    other worker's first batch is inside its own: possible only if neither waits for the
    other's locks (before, each batch named more than ``max_key_locks`` keys and locked the
    whole store, so the workers folded one at a time). The marker, which every worker's
    commit rewrites, still counts every batch, and the result is one process's."""
    one, alone = _replayed(pg_cluster.new_database(), 5, 1)
    monkeypatch.setattr(replay_workers, "_fold", meeting_in_workers(replay_workers._fold))
    two, spread = _replayed(pg_cluster.new_database() + "?max_key_locks=20", 5, 2)
    assert spread == alone
    _compare(one, two, "two PostgreSQL replay workers at once")
    for engine in (one, two):
        engine.store.close()

"""Stress: concurrent imports and a ticking worker on one PostgreSQL database, many rounds,
each compared with a single-process import of the same export (issue 24).

Each round takes a fresh database. Three processes import overlapping thirds of the export's
pages, shuffled (so every page is imported at least once, some twice, in no particular
order), each with its own batch size: 20 and 60 events lock their keys one by one, 5,000
locks the whole store (``max_key_locks=300``). A fourth process ticks the engine clock
through the export's span meanwhile, as ``tactful worker`` does, claiming due timers. The
result must equal one process importing everything: the same events and tickets, and every
person (by their Zendesk user ids) with the same state and segments.

Events that arrive after the engine clock passed them apply at the clock, so membership
times depend on arrival order; the comparison is made after ticking both stores to
``AFTER``, past the export's last event and the ticks plus the cooldown (see
``test_concurrent_import``). The ticker stops two days before ``AFTER`` for that reason.

Bounded in time: rounds run until ``BUDGET_S`` is spent (at least ``MIN_ROUNDS``).
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.engine.importer import import_files
from tactful.store.sqlite import open_store
from tactful.testing.pgcluster import Cluster
from tactful.testing.sample import DEFAULT_START, generate_exports
from tests.production.test_concurrent_import import AFTER, CONFIG, snapshot

pytestmark = pytest.mark.postgresql

BUDGET_S = 30.0
MIN_ROUNDS = 4
MAX_ROUNDS = 12
BATCH_SIZES = (20, 60, 5000)
TICK_STEP = timedelta(hours=7)
TICK_UNTIL = AFTER - timedelta(days=2)


def _engine(url: str) -> Engine:
    return Engine(rules_from_settings(settings_from_toml(CONFIG, environ={})), open_store(url))


def _import(url: str, paths: list[str], batch_size: int, out: Any) -> None:
    try:
        engine = _engine(url)
        try:
            import_files(engine, [Path(p) for p in paths], batch_size=batch_size)
        finally:
            engine.store.close()
        out.put(None)
    except BaseException:
        out.put(traceback.format_exc())


def _tick(url: str, out: Any) -> None:
    try:
        engine = _engine(url)
        try:
            at = DEFAULT_START
            while at < TICK_UNTIL:
                engine.tick(at)
                at += TICK_STEP
        finally:
            engine.store.close()
        out.put(None)
    except BaseException:
        out.put(traceback.format_exc())


def _run(ctx: Any, jobs: list[tuple[Any, tuple[Any, ...]]]) -> list[str]:
    """Start every job at once; the tracebacks of those that failed."""
    out = ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, out)) for fn, args in jobs]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return [r for r in results if r is not None]


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    out = [f"{k}: {got[k]} != {want[k]}" for k in ("events", "tickets") if got[k] != want[k]]
    persons_got, persons_want = got["persons"], want["persons"]
    for users in sorted(set(persons_got) | set(persons_want)):
        a, b = persons_got.get(users), persons_want.get(users)
        if a != b:
            out.append(f"users {users}: {a} != {b}")
    return out


def test_concurrent_imports_and_ticks_equal_one_import(tmp_path: Path, pg_cluster: Cluster) -> None:
    paths = [str(p) for p in generate_exports(tmp_path / "exports", persons=150, days=30).paths]
    ctx = multiprocessing.get_context("spawn")
    reference = pg_cluster.new_database()
    assert _run(ctx, [(_import, (reference, paths, 200))]) == []
    want = snapshot(reference)
    assert any(segments for _, segments in want["persons"].values())
    failed: list[str] = []
    began = time.monotonic()
    rounds = 0
    while rounds < MAX_ROUNDS and (rounds < MIN_ROUNDS or time.monotonic() - began < BUDGET_S):
        rnd = random.Random(rounds)
        url = pg_cluster.new_database() + "?max_key_locks=300"
        pages = list(paths)
        rnd.shuffle(pages)
        third = len(pages) // 3
        parts = [pages[: third + 3], pages[third - 3 : 2 * third + 3], pages[2 * third - 3 :]]
        jobs: list[tuple[Any, tuple[Any, ...]]] = [
            (_import, (url, part, rnd.choice(BATCH_SIZES))) for part in parts
        ]
        jobs.append((_tick, (url,)))
        errors = _run(ctx, jobs)
        assert not errors, errors[0]
        diff = differences(snapshot(url), want)
        if diff:
            failed.append(f"round {rounds}: {len(diff)} differences, e.g. {diff[:3]}")
        pg_cluster.drop_database(url)
        rounds += 1
    assert not failed, f"{len(failed)} of {rounds} rounds differ:\n" + "\n".join(failed)

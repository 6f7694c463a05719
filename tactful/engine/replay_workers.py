"""A replay by person's batches folded by worker processes (``Engine.replay(workers=N)``).

The batches of a replay by person (``replay.ByPerson``) share nothing, as an import by
person's do (``tactful.engine.grouped``), and each is folded from no clock to the log's
latest event with its own persons' timers: any process may fold any batch. What differs
from an import is the marker (``replay.Marker``), which must say after every commit which
batches that commit holds, so that a replay stopped half way folds exactly the others:

- SQLite (one writer): workers fold on snapshots (``split.fold_on_snapshot``) and this
  process writes each batch's writes with the marker, in the batches' order, so the marker's
  ``part`` stays a count. A batch that needs the writer (``NeedsWriter``), or every batch
  once another connection has written (``Stale``: a server keeping webhooks in the inbox),
  is folded here.
- PostgreSQL: each worker commits its batches, in whatever order they finish, each with the
  marker updated in the same transaction (read and written under a lock on the marker, so
  two commits never lose each other's update): ``part`` counts the batches done from the
  first, ``done`` lists the ones done past it.

The steps that follow (the last sweep, settling the clock, comparing) run in this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING

from tactful.core.events import Event
from tactful.engine.batch import BatchStats
from tactful.engine.components import Parts
from tactful.engine.replay import ByPerson, Marker, Progress
from tactful.engine.split import Folded, Stale, fold_on_snapshot, write_folded
from tactful.engine.workers import Workers, parallel
from tactful.store.base import REPLAY_KEY, FoldTx, Tx
from tactful.store.postgres import PostgresStore
from tactful.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from tactful.engine.engine import Engine


def fold_in_workers(
    engine: Engine, marker: Marker, log: ByPerson, workers: int, progress: Progress | None
) -> None:
    """Fold the batches of ``log`` that ``marker`` does not count as done, in ``workers``
    processes (fewer if fewer batches are left; none on a store only this process can
    open: the replay's steps fold them one by one); ``marker`` moves on with each commit."""
    store = engine.store
    with store.transaction(durable=False) as tx:
        parts = log.planned(tx, engine._salt(tx))
    todo = marker.todo(len(parts))
    workers = min(workers, len(todo)) if parallel(store) else 1
    if workers < 2 or log.until is None:
        return
    if isinstance(store, SQLiteStore):
        _for_writer(engine, store, marker, parts, todo, log.until, workers, progress)
    else:
        _committing(engine, marker, parts, todo, log.until, workers, progress)


def _for_writer(
    engine: Engine,
    store: SQLiteStore,
    marker: Marker,
    parts: Parts,
    todo: Sequence[int],
    until: datetime,
    workers: int,
    progress: Progress | None,
) -> None:
    @contextlib.contextmanager
    def start() -> Iterator[Callable[[int], Folded]]:
        own = engine.on_own_store()
        own_store = own.store
        assert isinstance(own_store, SQLiteStore)

        def fold(index: int) -> Folded:
            events = [p.event for p in parts[index]]
            return fold_on_snapshot(own_store, lambda tx: _fold(own, tx, events, until))

        try:
            yield fold
        finally:
            own_store.close()

    version = store.data_version()
    alone = False  # another connection wrote: the rest is folded here
    with Workers(workers, todo, start, ahead=2) as running:
        for index in todo:
            folded = None if alone else running.take(index)
            written = False
            if folded is not None and folded.stats is not None:
                try:
                    with store.transaction(durable=False) as tx:
                        write_folded(store, tx, version, folded)
                        _mark(tx, marker, index, _size(parts, index))
                    written = True
                except Stale:
                    alone = True
                    running.kill()  # what they fold now would be as stale
            if not written:
                _fold_here(engine, store, marker, parts, index, until)
                version = store.data_version()
            if progress is not None:
                progress(marker.report.events, marker.total)


def _fold_here(
    engine: Engine,
    store: SQLiteStore,
    marker: Marker,
    parts: Parts,
    index: int,
    until: datetime,
) -> None:
    """Fold batch ``index`` in this process, with the marker."""
    events = [p.event for p in parts[index]]
    with store.transaction(durable=False) as tx:
        _fold(engine, tx, events, until)
        _mark(tx, marker, index, len(events))


def _committing(
    engine: Engine,
    marker: Marker,
    parts: Parts,
    todo: Sequence[int],
    until: datetime,
    workers: int,
    progress: Progress | None,
) -> None:
    @contextlib.contextmanager
    def start() -> Iterator[Callable[[int], int]]:
        own = engine.on_own_store()

        def fold(index: int) -> int:
            events = [p.event for p in parts[index]]

            def work() -> BatchStats:
                with own.store.transaction(durable=False) as tx:
                    stats = _fold(own, tx, events, until)
                    tx.lock_row(REPLAY_KEY)  # the marker: one commit's update at a time
                    text = tx.get_meta(REPLAY_KEY)
                    assert text is not None, "the replay's marker is gone"
                    _mark(tx, Marker.loads(text), index, len(events))
                return stats

            own._retrying(work)  # again from the start if it conflicted: nothing was written
            return len(events)

        try:
            yield fold
        finally:
            own.store.close()

    store = engine.store
    hold: AbstractContextManager[None] = (
        store.hold() if isinstance(store, PostgresStore) else nullcontext()
    )
    with hold, Workers(workers, todo, start) as running:  # hold: see ``PostgresStore.hold``
        for index, events in running:
            marker.folded(index, events)  # as the worker's commit stored it
            if progress is not None:
                progress(marker.report.events, marker.total)


def _fold(engine: Engine, tx: FoldTx, events: Sequence[Event], until: datetime) -> BatchStats:
    """A batch of the replay: folded from no clock to ``until``, its own persons' timers."""
    return engine._run(tx, events, until, replaying=True, own_timers=True)


def _mark(tx: Tx, marker: Marker, index: int, events: int) -> None:
    marker.folded(index, events)
    tx.set_meta(REPLAY_KEY, marker.dumps())


def _size(parts: Parts, index: int) -> int:
    start, end = parts.spans[index]
    return end - start

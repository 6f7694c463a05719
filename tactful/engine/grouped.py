"""Folding a known set of events person by person instead of in time order.

An import in time order (``Engine.apply_many`` a batch at a time) loads, evaluates and saves
a person once for every batch their events fall into, and the batches' persons are spread
over the whole store. Here the events are split first into *components*: events that can
concern one person (sharing an identifier, a ticket, a merged Zendesk user, or a person
already stored) are in one component, and two components share nothing a fold reads or
writes. Each component is folded whole, by the same ``Batch`` and in time order inside it,
so each person is loaded and saved once; components are packed into batches in order of
their persons' ids, so those writes go to the store's pages in key order.

Components that share nothing give the same result folded one after the other as folded
together in time order, provided that every batch sweeps from the same engine clock (the
clock before the import) to the same end (the latest event), and fires only its own
persons' timers (``Batch(own_timers=True)``). A last pass fires the timers of persons no
component names and advances the clock, as the last batch of a time-ordered import does.

``fold_grouped`` takes events already read (an import's, spilled to disk by
``tactful.engine.spill``); ``tactful.engine.components`` plans the components (the pure
part). A replay by person folds its log's components the same way (``Engine.replay``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from functools import partial

from tactful.core import codec
from tactful.core.events import EVENT_KIND, Event
from tactful.engine.batch import BatchStats
from tactful.engine.components import Held, Node, Parts, Pending, Read, StoredLinks, batches
from tactful.engine.engine import Engine
from tactful.engine.split import Folded, Stale, fold_on_snapshot, write_folded
from tactful.engine.workers import Workers, parallel
from tactful.store.base import EventRow, FoldTx, Tx
from tactful.store.postgres import PostgresStore
from tactful.store.records import to_us
from tactful.store.sqlite import SQLiteStore


def stored_links(tx: Tx) -> StoredLinks:
    """``StoredLinks`` read through a transaction."""

    def links(
        keys: list[tuple[str, str]], tickets: list[int], person_ids: list[str]
    ) -> Iterable[tuple[Node, str]]:
        for (kind, value), pids in tx.lookup_identifiers(keys).items():
            for pid in pids:
                yield ("i", f"{kind}\0{value}"), pid
        for tid, (owner, _) in tx.load_tickets(tickets).items():
            if owner:
                yield ("t", str(tid)), owner
        for value in person_ids:
            found = tx.resolve_person_id(value)
            if found is not None:
                yield ("i", f"person_id\0{value}"), found

    return links


def fold_grouped(
    engine: Engine,
    pending: Sequence[Pending] | Read,
    *,
    batch_size: int,
    history_before: datetime | None,
    on_batch: Callable[[BatchStats], None] | None = None,
    workers: int = 1,
) -> BatchStats:
    """Log and fold ``pending`` component by component (see the module's docstring), each
    batch in one bulk transaction; return the stats of all batches together. ``pending``:
    the events in a list, or a ``Read`` that keeps them elsewhere (``tactful.engine.spill``).
    ``workers``: processes folding batches at once (``parallel``: on PostgreSQL each writes
    its own, on a SQLite file this process writes what they fold).
    """
    total = BatchStats()
    read = Held(engine.plan, pending) if isinstance(pending, Sequence) else pending
    latest = read.latest
    if not len(read) or latest is None:
        return total
    args = (engine, read, latest, batch_size, history_before, on_batch, workers, total)
    store = engine.store
    if workers > 1 and isinstance(store, PostgresStore):
        with store.hold():  # from the plan to the last pass: see ``PostgresStore.hold``
            return _fold(*args)
    return _fold(*args)


def _fold(
    engine: Engine,
    read: Read,
    latest: datetime,
    batch_size: int,
    history_before: datetime | None,
    on_batch: Callable[[BatchStats], None] | None,
    workers: int,
    total: BatchStats,
) -> BatchStats:
    with engine.store.transaction(durable=False, bulk=True) as tx:
        clock = Engine._clock(tx)
        salt = Engine._salt(tx)
        indexes, ends = read.planner.order(salt, stored_links(tx))
    until = latest
    if clock is not None and clock > until:
        until = clock

    def report(stats: BatchStats) -> None:
        _add(total, stats)
        if on_batch is not None:
            on_batch(stats)

    parts = Parts(read, indexes, batches(ends, batch_size))
    workers = min(workers, len(parts)) if parallel(engine.store) else 1
    if workers > 1 and isinstance(engine.store, SQLiteStore):
        _fold_for_writer(engine, parts, until, history_before, workers, report)
    elif workers > 1:
        _fold_in_workers(engine, parts, until, history_before, workers, report)
    else:
        for index in range(len(parts)):
            work = partial(_fold_batch, engine, parts[index], until, history_before)
            report(engine._retrying(work))
    report(engine._retrying(partial(_last, engine, until, history_before)))
    return total


def _fold_in_workers(
    engine: Engine,
    parts: Parts,
    until: datetime,
    history_before: datetime | None,
    workers: int,
    report: Callable[[BatchStats], None],
) -> None:
    """Fold ``parts`` in ``workers`` forked processes, each on its own connection, taking
    the next part as it finishes one (the components are disjoint: no two read or write the
    same person, identifier or ticket, so they fold at once while this process holds the
    store: ``PostgresStore.hold``)."""

    @contextlib.contextmanager
    def start() -> Iterator[Callable[[int], BatchStats]]:
        own = engine.on_own_store()
        try:
            yield lambda index: own._retrying(
                partial(_fold_batch, own, parts[index], until, history_before)
            )
        finally:
            own.store.close()

    with Workers(workers, range(len(parts)), start) as running:
        for _, stats in running:
            report(stats)


def _fold_for_writer(
    engine: Engine,
    parts: Parts,
    until: datetime,
    history_before: datetime | None,
    workers: int,
    report: Callable[[BatchStats], None],
) -> None:
    """SQLite: ``workers`` forked processes fold ``parts`` on snapshots of the store
    (``tactful.engine.split``) and this process, the one writer, applies each part's writes
    in the parts' order, one transaction a part; a part that needs the writer, or any part
    once another connection has written to the store (its workers' snapshots may be
    stale), is folded here. Each worker has two parts out at most."""
    store = engine.store
    assert isinstance(store, SQLiteStore)
    earlier = _earlier_keys(parts)

    @contextlib.contextmanager
    def start() -> Iterator[Callable[[int], Folded]]:
        own = engine.on_own_store()
        own_store = own.store
        assert isinstance(own_store, SQLiteStore)

        def fold(index: int) -> Folded:
            part = parts[index]
            return fold_on_snapshot(
                own_store,
                lambda tx: _fold_part(own, tx, part, until, history_before),
                earlier.get(index, frozenset()),
            )

        try:
            yield fold
        finally:
            own_store.close()

    version = store.data_version()
    alone = False  # another connection wrote: the rest is folded here
    with Workers(workers, range(len(parts)), start, ahead=2) as running:
        for index in range(len(parts)):
            folded = None if alone else running.take(index)
            stats = None
            if folded is not None and folded.stats is not None:
                try:
                    stats = engine._retrying(partial(_write, store, version, folded))
                except Stale:
                    alone = True
                    running.kill()  # what they fold now would be as stale
            if stats is None:
                work = partial(_fold_batch, engine, parts[index], until, history_before)
                stats = engine._retrying(work)
                version = store.data_version()
            report(stats)


def _write(store: SQLiteStore, version: int, folded: Folded) -> BatchStats:
    """Apply a worker's writes in one transaction (``split.write_folded``)."""
    with store.transaction(durable=False, bulk=True) as tx:
        return write_folded(store, tx, version, folded)


def _earlier_keys(parts: Parts) -> dict[int, frozenset[str]]:
    """For each part, the event keys an earlier part also has (logged there first), when
    the events are held in memory. Events read into a spill file are not read twice for
    this: a key a worker took for new that an earlier batch logged is found by the writer
    (``Stale``), which then folds that batch and the rest itself."""
    if not isinstance(parts.read, Held):
        return {}
    first: dict[str, int] = {}
    earlier: dict[int, set[str]] = {}
    for index in range(len(parts)):
        for p in parts[index]:
            seen = first.setdefault(p.event.key, index)
            if seen != index:
                earlier.setdefault(index, set()).add(p.event.key)
    return {index: frozenset(keys) for index, keys in earlier.items()}


def _last(engine: Engine, until: datetime, history_before: datetime | None) -> BatchStats:
    """Fire the timers no batch fired (persons the events do not name) and move the clock."""
    with engine.store.transaction(durable=False, bulk=True) as tx:
        return _run(engine, tx, [], until, history_before, own_timers=False)


def _fold_batch(
    engine: Engine,
    part: Sequence[Pending],
    until: datetime,
    history_before: datetime | None,
) -> BatchStats:
    with engine.store.transaction(durable=False, bulk=True) as tx:
        return _fold_part(engine, tx, part, until, history_before)


def _fold_part(
    engine: Engine,
    tx: FoldTx,
    part: Sequence[Pending],
    until: datetime,
    history_before: datetime | None,
) -> BatchStats:
    rows = [
        EventRow(
            key=p.event.key,
            kind=EVENT_KIND[type(p.event)],
            at_us=to_us(p.event.at),
            source=p.source,
            document_id=p.document_id,
            canonical=p.canonical or codec.dumps(p.event),
        )
        for p in part
    ]
    inserted = tx.insert_events(rows)
    fresh = [p.event for p, ok in zip(part, inserted, strict=True) if ok]
    stats = _run(engine, tx, fresh, until, history_before, own_timers=True)
    stats.received = len(part)
    stats.duplicates = len(part) - len(fresh)
    for row, ok in zip(rows, inserted, strict=True):
        if not ok:
            stats.duplicates_by_source[row.source] += 1
    return stats


def _run(
    engine: Engine,
    tx: FoldTx,
    events: Sequence[Event],
    until: datetime,
    history_before: datetime | None,
    *,
    own_timers: bool,
) -> BatchStats:
    """``Engine._run`` swept to ``until``, the latest event of the whole fold (or the clock,
    if another process moved it past that): ``own_timers`` leaves the clock where it is,
    so every batch sweeps from where the import started (``_last`` moves it). Like every
    fold, it refuses while a replay is unfinished."""
    return engine._run(tx, events, until, history_before=history_before, own_timers=own_timers)


def _add(total: BatchStats, stats: BatchStats) -> None:
    total.received += stats.received
    total.applied += stats.applied
    total.duplicates += stats.duplicates
    total.rejected += stats.rejected
    total.entered += stats.entered
    total.exited += stats.exited
    total.state_changes += stats.state_changes
    total.timers_fired += stats.timers_fired
    total.persons_touched += stats.persons_touched
    total.duplicates_by_source += stats.duplicates_by_source

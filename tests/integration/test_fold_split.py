"""A fold apart from its writes (``tactful.engine.split``): a ``Recorder`` over a snapshot
reads what the store's own transaction would after the same writes, its recorded writes
leave the same rows once applied, and a worker that dies mid-import leaves only whole
batches, which a re-run completes to the same store as an import that never failed."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.core.events import Event, UserDeleted, time_order
from tactful.core.messages import PersonErased
from tactful.core.segments import Change
from tactful.engine import grouped
from tactful.engine.components import Pending
from tactful.engine.engine import Engine
from tactful.engine.grouped import fold_grouped
from tactful.engine.split import Recorder, pack, unpack, write
from tactful.engine.workers import WorkerFailed
from tactful.store.base import FoldTx, HistoryRow, IdentKey
from tactful.store.records import to_us
from tactful.store.sqlite import SQLiteStore
from tactful.testing import at, harness

from .test_import_by_person import (
    CONFIG,
    SALT,
    STORED_UNTIL,
    _compare,
    _export,
    _in_time_order,
    _tables,
    _with_workers,
)


def _stored(url: str) -> Engine:
    """A store holding the first days of a coupled export: persons with identifiers,
    tickets and membership history."""
    events = _export(3, 1200, neighbourhoods=2)
    engine = harness(CONFIG, url, salt=SALT).engine
    _in_time_order(engine, [e for e in events if e.at < STORED_UNTIL], 50)
    return engine


def _reads(tx: FoldTx, pids: list[str], keys: list[IdentKey], tickets: list[int]) -> Any:
    return (
        tx.load_persons(pids),
        tx.identifiers_of(pids),
        tx.lookup_identifiers(keys),
        [(pid, change) for _, pid, change in tx.history_rows(pids)],  # ids: handles only
        tx.tickets_of(pids),
        tx.load_tickets(tickets),
        [tx.resolve_person_id(p) for p in pids],
    )


def test_a_recorder_reads_what_the_store_would_after_the_same_writes(tmp_path: Path) -> None:
    real, split = (
        _stored(f"sqlite:///{tmp_path}/real.db"),
        _stored(f"sqlite:///{tmp_path}/split.db"),
    )
    store = split.store
    assert isinstance(store, SQLiteStore)
    with real.store.reader() as reader:
        ids = reader.person_ids(None, 1000)
        owned = reader.tickets_of(ids)
        with_history = [p for p in ids if reader.history_of(p) and owned[p]]
        a, b, c = with_history[:3]
        keys = sorted({k for ks in reader.identifiers_of([a, b, c]).values() for k in ks})
        tickets = sorted(t.ticket_id for p in (a, b, c) for t in owned[p])
    keys.append(("email", "new@x.example"))

    def steps(tx: FoldTx) -> list[Any]:
        """Writes a batch with two merges makes, each followed by every read of them. A
        batch cut at a merge (``Batch.fold``) appends a part's history before the next part
        merges: its own rows are read, moved and deleted with the stored ones."""
        seen = [_reads(tx, [a, b, c], keys, tickets)]
        tx.add_identifiers([("email", "new@x.example", a)])
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        tx.append_history(
            [HistoryRow(p, Change("recent", "entered", at(days=7), "r", False)) for p in (a, c)]
        )
        tx.append_history([HistoryRow(a, Change("recent", "exited", at(days=8), "r", False))])
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        rows = tx.load_persons([a, b])
        kept = rows[b]
        kept.facts = kept.facts.combine(rows[a].facts)
        tx.save_persons([kept], new=set())
        tx.merge_person(a, b)
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        history = tx.history_rows([b])
        tx.delete_history([history[0][0]])
        tx.merge_person(b, c)
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        history = tx.history_rows([c])  # the stored rows, then the appended ones, in order
        tx.delete_history([history[-3][0], history[-1][0], history[0][0]])
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        record = tx.tickets_of([c])[c][0]
        tx.save_tickets([(record.ticket_id, c, replace(record, risk=not record.risk))])
        tx.save_persons(list(tx.load_persons([c]).values()), new=set())
        tx.load_persons([c])[c].state.clear()  # a batch changes the rows it loads
        seen.append(_reads(tx, [a, b, c], keys, tickets))
        return seen

    with real.store.transaction() as tx:
        expected = steps(tx)
    with store.snapshot() as snapshot:
        recorder = Recorder(snapshot)
        got = steps(recorder)
    assert len(recorder.ops) == 10
    for step, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have == want, f"after step {step}"
    with store.transaction() as tx:
        write(tx, unpack(pack(recorder.ops)))
    assert _tables(split) == _tables(real)
    assert _history_ids(tmp_path / "split.db") == _history_ids(tmp_path / "real.db")  # ids too


def _history_ids(path: Path) -> list[tuple[int, str, str, str, int]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT id, person_id, segment, change, at_us FROM membership_history ORDER BY id"
        ).fetchall()


def _dies_on_third_batch(parent: int, written: Path) -> Callable[..., Any]:
    """``_fold_part`` for a worker that is killed as it starts its third batch, once the
    writer has written a first one (``written`` exists)."""
    fold_part = grouped._fold_part
    folded = []

    def fold(engine: Engine, tx: FoldTx, part: list[Pending], *args: Any) -> Any:
        folded.append(part)
        if os.getpid() != parent and len(folded) == 3:
            deadline = time.monotonic() + 30
            while not written.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(3)
        return fold_part(engine, tx, part, *args)

    return fold


def _first_days(url: str, events: list[Event]) -> tuple[Engine, list[Pending]]:
    """A store with the export's first days imported, and the rest of the export."""
    cut = sum(e.at < STORED_UNTIL for e in events)
    engine = harness(CONFIG, url, salt=SALT).engine
    _in_time_order(engine, events[:cut], 50)
    return engine, [Pending(e, "test", None) for e in events[cut:]]


def _fold_rest(engine: Engine, rest: list[Pending], on_batch: Callable[[Any], None]) -> None:
    history_before = engine._history_before()
    fold_grouped(
        engine, rest, batch_size=100, history_before=history_before, on_batch=on_batch, workers=2
    )


@pytest.mark.slow  # forks worker processes
def test_a_worker_that_dies_fails_the_import_and_leaves_only_whole_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _export(4, 1200, neighbourhoods=6)
    reference = _with_workers(f"sqlite:///{tmp_path}/one.db", events, 1, 100)
    url = f"sqlite:///{tmp_path}/failed.db"
    failed, rest = _first_days(url, events)
    written = tmp_path / "written"
    with monkeypatch.context() as patch:
        patch.setattr(grouped, "_fold_part", _dies_on_third_batch(os.getpid(), written))
        with pytest.raises(WorkerFailed, match="ended before"):
            _fold_rest(failed, rest, lambda stats: written.touch())
    logged = {row[0] for row in _tables(failed)["events"]}
    later = {p.event.key for p in rest}
    assert 0 < len(logged & later) < len(later)
    failed.store.close()
    # Every event logged was folded with its whole batch: a re-run that folds the rest
    # gives exactly the store of an import that never failed.
    again = _with_workers(url, events, 2, 100)
    _compare(reference, again, "re-run after a worker died")


@pytest.mark.slow  # forks worker processes
def test_another_writer_during_the_import_makes_the_writer_fold_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once another connection commits, the workers' snapshots may be stale: the import
    folds every batch left in its own transactions, and the result is still exact."""
    events = _export(5, 1200, neighbourhoods=6)
    reference = _with_workers(f"sqlite:///{tmp_path}/one.db", events, 1, 100)
    url = f"sqlite:///{tmp_path}/two.db"
    engine, rest = _first_days(url, events)
    folded_here = []
    fold_batch = grouped._fold_batch
    monkeypatch.setattr(
        grouped, "_fold_batch", lambda *args: folded_here.append(1) or fold_batch(*args)
    )

    def another_writer(stats: Any) -> None:
        other = SQLiteStore(url)
        with other.transaction() as tx:
            tx.set_meta("another", str(len(folded_here)))
        other.close()

    _fold_rest(engine, rest, another_writer)
    engine.tick(events[-1].at + timedelta(days=30))
    assert len(folded_here) >= 5  # all but the first batch or two
    _compare(reference, engine, "another writer")


@pytest.mark.slow  # forks worker processes
def test_a_batch_with_an_erasure_is_folded_by_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erasure needs the writer's transaction (``NeedsWriter``): the writer folds that
    batch itself, the workers the others, and the store is as with one process."""
    deleted = [UserDeleted(f"test:deleted:{u}", at(days=12), u, permanent=True) for u in (3, 40)]
    events = sorted([*_export(6, 1200, neighbourhoods=6), *deleted], key=time_order)
    one = _with_workers(f"sqlite:///{tmp_path}/one.db", events, 1, 100)
    folded_here = []
    fold_batch = grouped._fold_batch
    monkeypatch.setattr(
        grouped, "_fold_batch", lambda *args: folded_here.append(1) or fold_batch(*args)
    )
    four = _with_workers(f"sqlite:///{tmp_path}/four.db", events, 4, 100)
    assert 1 <= len(folded_here) <= 2  # the batches holding the erasures
    # Both were erased (a later event about user 3 makes it anew: ``Batch.fold`` looks the
    # events after an erasure up again): one erasure row each, and the log keeps no event
    # about them from before.
    tables = _tables(four)
    assert [row[1] for row in tables["outbox"]].count(PersonErased.TOPIC) == 2
    assert not [
        key
        for key, _, at_us, _ in tables["events"]
        if key.startswith(("zendesk:user:3:", "zendesk:user:40:")) and at_us < to_us(at(days=12))
    ]
    _compare(one, four, "erasures")

"""PostgreSQL: the workers of an import by person fold at once, and nobody else writes
meanwhile (``PostgresStore.hold``).

The importing process holds the whole store on a session lock from its plan to its last pass;
its workers' batches share nothing, so they take no lock of their own. Before, each worker's
batch (more than ``max_key_locks`` keys) locked the whole store exclusively for its
transaction, so the workers folded one at a time."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pytest

from tactful.engine import grouped
from tactful.store import postgres
from tactful.store.base import StoreError
from tactful.store.postgres import PgConn, PgTx, PostgresStore
from tactful.testing import harness

from .test_import_by_person import _compare, _export, _with_workers
from .test_import_order import CONFIG

pytestmark = pytest.mark.postgresql

T = TypeVar("T")


@pytest.mark.slow  # forks worker processes
def test_two_workers_fold_their_batches_at_the_same_time(
    pg_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker's first batch waits, inside its transaction (its locks held), until the
    other worker's first batch is inside its own: possible only if neither waits for the
    other's locks. The result is still one worker's, table by table. ``max_key_locks``:
    these batches of 100 events lock the whole store, as an import's batches of 20,000 do
    with the default."""
    events = _export(3, 1200, neighbourhoods=6)
    one = _with_workers(pg_cluster.new_database(), events, 1, 100)
    monkeypatch.setattr(grouped, "_run", meeting_in_workers(grouped._run))
    two = _with_workers(pg_cluster.new_database() + "?max_key_locks=20", events, 2, 100)
    _compare(one, two, "two workers at once")
    for engine in (one, two):
        engine.store.close()


def meeting_in_workers(fold: Callable[..., T]) -> Callable[..., T]:
    """``fold``, except that each forked worker's first call, once folded (its locks still
    held), waits until a second worker's first call gets there too: two workers that wait
    for each other's locks never meet, and the barrier breaks (``BrokenBarrierError``)."""
    both = multiprocessing.get_context("fork").Barrier(2, timeout=30)
    first = [True]  # per process: each forked worker has its own copy

    def meeting(*args: Any, **kwargs: Any) -> T:
        result = fold(*args, **kwargs)
        if multiprocessing.parent_process() is not None and first[0]:
            first[0] = False
            both.wait()
        return result

    return meeting


def _raw_tx(url: str) -> tuple[Any, PgTx]:
    """A transaction of another process's store, as ``PostgresStore.transaction`` opens
    one, on a connection that gives up waiting for a lock after 300 ms."""
    conn = psycopg.connect(url.split("?")[0], autocommit=True)
    conn.execute("BEGIN")
    conn.execute("SET LOCAL lock_timeout = '300ms'")
    return conn, PgTx(PgConn(conn))


def test_while_an_import_holds_the_store_other_writers_wait(pg_url: str) -> None:
    store = harness(CONFIG, pg_url).engine.store
    assert isinstance(store, PostgresStore)
    with store.hold():
        with store.transaction() as tx:  # this process's (and its workers') own batches
            tx.lock([f"i:email:{n}@x.example" for n in range(5000)])  # no lock, no wait
        for keys in (["i:email:a@x.example"], [f"k{n}" for n in range(2000)]):
            conn, other = _raw_tx(pg_url)  # a batch of another process, small or bulk
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.lock(keys)
            conn.close()
    conn, other = _raw_tx(pg_url)
    other.lock(["i:email:a@x.example"])  # the import ended: it no longer waits
    conn.close()
    store.close()


def test_a_worker_whose_importing_process_is_gone_does_not_fold(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's batch checks that its importing process still holds the store (a dead
    process's session, and its lock, are gone): otherwise it would fold with nobody kept
    out."""
    store = harness(CONFIG, pg_url).engine.store
    assert isinstance(store, PostgresStore)
    with psycopg.connect(pg_url) as gone:  # the importing process's session, since ended
        pid = gone.info.backend_pid
    monkeypatch.setitem(postgres._holders, store._conninfo, pid)  # as its worker sees it
    with (
        pytest.raises(StoreError, match="no longer holds the store"),
        store.transaction() as tx,
    ):
        tx.lock(["i:email:a@x.example"])
    store.close()


def test_a_batch_whose_importing_process_dies_before_it_commits_writes_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = harness(CONFIG, pg_url).engine.store
    assert isinstance(store, PostgresStore)
    holder = psycopg.connect(pg_url, autocommit=True)  # the importing process's session
    holder.execute("SELECT pg_advisory_lock(%s)", (postgres.WHOLE_STORE_LOCK,))
    monkeypatch.setitem(postgres._holders, store._conninfo, holder.info.backend_pid)
    with (
        pytest.raises(StoreError, match="no longer holds the store"),
        store.transaction() as tx,
    ):
        tx.lock(["i:email:a@x.example"])  # held: it folds
        tx.add_identifiers([("email", "a@x.example", "p1")])
        pid = holder.info.backend_pid
        holder.close()  # the importing process dies before this batch commits
        _until_gone(pg_url, pid)
    with store.reader() as reader:
        assert reader.find_persons("email", "a@x.example") == []
    store.close()


def _until_gone(url: str, pid: int) -> None:
    """Wait (up to 10 s) until the server has ended the session ``pid``."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(200):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if row.fetchone() == (0,):
                return
            time.sleep(0.05)
    raise AssertionError(f"session {pid} still there")


def test_the_hold_ends_with_the_block_even_on_an_error(pg_url: str) -> None:
    store = harness(CONFIG, pg_url).engine.store
    assert isinstance(store, PostgresStore)
    with pytest.raises(RuntimeError), store.hold():
        raise RuntimeError("the import failed")
    conn, other = _raw_tx(pg_url)
    other.lock([f"k{n}" for n in range(2000)])  # a bulk batch of another process: no wait
    conn.close()
    store.close()

"""SQLite store: WAL journal, one write transaction per batch (``BEGIN IMMEDIATE``).

The embedded default: one process writes (several readers may). The SQL itself is shared
with the PostgreSQL store (``tactful.store.sql``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tactful.clock import now_us
from tactful.store.base import REPLAY_KEY, StoreError
from tactful.store.dbapi import chunks
from tactful.store.dialect import SQLITE
from tactful.store.erasure import ErasureReport
from tactful.store.inbox import SQLiteInbox
from tactful.store.migrations import LATEST_VERSION, migrate, newer_schema
from tactful.store.sql import SqlQueries, SqlTx

log = logging.getLogger("tactful.store")


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
    return url[len(prefix) :]


def _explain(exc: BaseException) -> str:
    text = str(exc)
    if "full" in text:
        return f"{text} (free disk space, then retry: nothing was written)"
    if "readonly" in text or "read-only" in text:
        return f"{text} (the file or its directory is not writable: nothing was written)"
    return text


def _wal_mode(conn: sqlite3.Connection, wait: float = 10.0) -> None:
    """Put the store in WAL mode (a no-op if it is). SQLite can answer "database is locked"
    here at once, without the busy timeout: a connection that closes and finds itself the
    store's last one checkpoints and removes the WAL under an exclusive lock, and opening
    then fails (seen in the two-imports test when the imports open and close their
    connections at the same moment). Wait for that as for any other lock."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# Kept by the store (migration 9); a state no one is in any more keeps a 0 row.
_STATE_COUNTS_SQL = (
    "SELECT support_state, persons FROM state_counts WHERE persons > 0 ORDER BY support_state"
)


class SQLiteTx(SqlTx):
    STATE_COUNTS_SQL = _STATE_COUNTS_SQL
    COUNTS_STATES = True

    def erase_person(
        self, person_id: str, at_us: int, requested_by: str, ticket_ids: Iterable[int] = ()
    ) -> ErasureReport:
        # Pages this transaction frees are overwritten with zeros too, not only the deleted
        # cells (the store's ``FAST`` default); the store goes back to ``FAST`` afterwards.
        self.conn.execute("PRAGMA secure_delete = ON")
        report = super().erase_person(person_id, at_us, requested_by, ticket_ids)
        self._zero_free_pages()
        return report

    def _zero_free_pages(self) -> None:
        """Overwrite every free page of the file with zeros: pages freed before this
        transaction (an overwritten ticket record's old overflow pages, under ``FAST``) may
        still hold the person's data. A blob of zeros as large as the free list takes its
        pages (SQLite reuses free pages before growing the file) and is deleted again."""
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free:
            size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
            self.conn.execute("INSERT INTO free_pages (b) VALUES (zeroblob(?))", (free * size,))
            self.conn.execute("DELETE FROM free_pages")


class SQLiteSnapshot(SQLiteTx):
    """The engine's reads (``Tx``) in one consistent snapshot, beside the writer: what a
    worker folding for a single writer reads with (``tactful.engine.split``). Its writes
    fail (``query_only``); ``new_event_keys`` answers what ``insert_events`` would."""

    def new_event_keys(self, keys: Sequence[str]) -> set[str]:
        """Of ``keys``, those not in the event log."""
        unique = sorted(set(keys))
        found: set[str] = set()
        for chunk in chunks(unique):
            query = f"SELECT key FROM events WHERE key IN ({SQLITE.marks(len(chunk))})"
            found.update(str(r[0]) for r in self.conn.execute(query, tuple(chunk)))
        return set(unique) - found


class SQLiteReader(SqlQueries):
    STATE_COUNTS_SQL = _STATE_COUNTS_SQL

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


# A fork while another thread is inside SQLite leaves the child with SQLite's mutexes held by
# a thread it does not have: the child hangs at its first SQLite call (seen: a worker of a
# replay by person forked while a checkpoint ran, stuck in ``sqlite3Malloc``). The
# checkpointer's thread does its SQLite work holding this lock, and a fork (the workers of
# ``tactful.engine.workers``) waits for it.
NO_FORK = threading.Lock()
os.register_at_fork(
    before=NO_FORK.acquire, after_in_parent=NO_FORK.release, after_in_child=NO_FORK.release
)


class _Checkpointer:
    """Copies the WAL into the database file from a thread of its own, with a connection of
    its own, while the writer goes on (bulk imports). SQLite does this work inside the
    ``COMMIT`` that crosses ``wal_autocheckpoint``: there it holds up the writer, here it runs
    beside it (SQLite releases the GIL while it copies and syncs). A ``PASSIVE`` checkpoint
    never blocks the writer or readers and leaves the WAL consistent if it stops half way; a
    checkpoint that fails (a full disk) leaves the frames in the WAL, where the next one, or
    the writer's own, copies them.

    SQLite starts the WAL over from its beginning only when a write transaction begins after
    a checkpoint that copied every frame. Back-to-back bulk transactions begin while the
    checkpoint of the previous one is still running, so without ``settle`` the WAL never
    started over: it grew by each batch's pages for the whole import (3.2 GB for a
    100k-person import whose database is 1.4 GB)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.wal = Path(f"{path}-wal")
        self._cond = threading.Condition()
        self._pending = False  # a pass was asked for and has not started
        self._busy = False  # a pass is running
        self._stop = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the last checkpoint's failure, if it failed

    def wal_bytes(self) -> int:
        try:
            return self.wal.stat().st_size
        except OSError:
            return 0

    def poke(self, over_bytes: int) -> None:
        """Checkpoint soon if the WAL has grown past ``over_bytes``."""
        if self.wal_bytes() <= over_bytes:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tactful-sqlite-checkpoint", daemon=True
            )
            self._thread.start()
        with self._cond:
            self._pending = True
            self._cond.notify_all()

    def settle(self, wait: float = 60.0) -> None:
        """Wait (at most ``wait`` seconds) until no checkpoint is asked for or running: the
        next write transaction then finds every frame copied and starts the WAL over."""
        with self._cond:
            self._cond.wait_for(lambda: not (self._pending or self._busy), timeout=wait)

    def _run(self) -> None:
        with NO_FORK:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._pending or self._stop)
                    if self._stop:
                        return
                    self._pending, self._busy = False, True
                try:
                    with NO_FORK:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.error = None
                except sqlite3.Error as exc:
                    if self.error is None:  # once per run of failures
                        log.warning("background WAL checkpoint of %s failed: %s", self.path, exc)
                    self.error = _explain(exc)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            with NO_FORK:
                conn.close()

    def stop(self) -> None:
        if self._thread is not None:
            with self._cond:
                self._stop = True
                self._cond.notify_all()
            self._thread.join()
            self._thread = None


class SQLiteStore:
    """The embedded default store. One writer at a time; readers never block the writer."""

    dialect = SQLITE

    # Non-durable transactions leave checkpoints to a thread once the WAL passes this.
    BACKGROUND_CHECKPOINT_BYTES = 4 * 1024 * 1024
    # A non-durable transaction that finds the WAL larger than this first waits for the
    # background checkpoint to finish, so that it starts the WAL over (``_Checkpointer``);
    # the WAL file is also cut back to this size when it starts over (``journal_size_limit``).
    WAL_RESTART_BYTES = 64 * 1024 * 1024
    # SQLite's own page cache (the OS caches the file as well). A webhook, a tick or a read
    # touches a few pages per person, once: a large cache only keeps pages nobody reads again
    # (a tick among 1M persons: 64 MiB of cache held 21 MB more at the same speed). A bulk
    # import's 20,000-event transactions do come back to their pages (8% faster at 100k
    # persons with 64 MiB than with 8 MiB), so they get the large one while they run.
    CACHE_KIB = 8 * 1024
    BULK_CACHE_KIB = 64 * 1024

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._held: set[str] = set()
        self._inbox: SQLiteInbox | None = None
        self._inbox_lock = threading.Lock()
        path = sqlite_path(url)
        self._checkpointer: _Checkpointer | None = None
        if path != ":memory:":
            self._checkpointer = _Checkpointer(os.path.abspath(path))
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"store directory does not exist: {parent}")
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # first: another process may be migrating this store right now
            self.conn.execute("PRAGMA busy_timeout = 10000")
            _wal_mode(self.conn)
            self.conn.execute("PRAGMA synchronous = FULL")
            self._sync = "FULL"
            self.conn.execute(f"PRAGMA cache_size = {-self.CACHE_KIB}")
            self._cache_kib = self.CACHE_KIB
            self.conn.execute(f"PRAGMA journal_size_limit = {self.WAL_RESTART_BYTES}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            # Deleted content is overwritten with zeros where that costs no extra writes (in
            # the pages a transaction writes anyway). An erasure also zeroes the pages it
            # frees and every free page of the file (``SQLiteTx.erase_person``). ``ON`` for
            # every transaction cost about 10% more CPU in a write-heavy run (``FAST``: no
            # measurable difference): each overwritten large record wrote zeros over its
            # old overflow pages.
            self.conn.execute("PRAGMA secure_delete = FAST")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {url}: {exc}") from exc

    def _migrate(self) -> None:
        c = self.conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_us INTEGER NOT NULL)"
        )
        version = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        current = int(c.execute(version).fetchone()[0])
        if current > LATEST_VERSION:
            raise StoreError(newer_schema(current))
        if current == LATEST_VERSION:
            return  # nothing to write (a read-only store still opens)
        c.execute("BEGIN IMMEDIATE")
        try:
            # read again under the write lock: another process may have just migrated
            migrate(
                "sqlite",
                int(c.execute(version).fetchone()[0]),
                c.execute,
                lambda version, description: c.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (version, description, now_us()),
                ),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self, *, durable: bool = True, bulk: bool = False) -> Iterator[SQLiteTx]:
        """One write transaction. ``durable=False`` skips the fsync at commit (WAL with
        synchronous=NORMAL): still atomic and safe against a process crash, but the last
        commits may be lost on power failure. Only for work that is redone if lost (import,
        ticks), whose commits also leave copying the WAL into the database to a background
        thread (``_Checkpointer``) instead of doing it themselves. ``bulk``: a large
        transaction (an import batch), given the large page cache."""
        with self._lock:
            self._settle(durable, bulk)
            checkpointer = self._checkpointer
            if (
                not durable
                and checkpointer is not None
                and checkpointer.wal_bytes() > self.WAL_RESTART_BYTES
            ):
                checkpointer.poke(self.WAL_RESTART_BYTES)
                checkpointer.settle()
            tx: SQLiteTx | None = None
            try:
                with self._transaction() as tx:
                    yield tx
            finally:
                if tx is not None and tx.erased:
                    self.conn.execute("PRAGMA secure_delete = FAST")
            if tx.erased:
                self._wipe_wal()
            if not durable and self._checkpointer is not None:
                self._checkpointer.poke(self.BACKGROUND_CHECKPOINT_BYTES)

    def _wipe_wal(self, wait: float = 10.0) -> None:
        """After an erasure: copy the WAL into the database and empty it (``TRUNCATE``), so
        the erased rows' old page images leave the WAL file (the deleted content itself was
        zeroed in the pages: ``secure_delete``). A checkpoint running in the background
        thread, or a reader on an older snapshot (another process), makes it answer busy:
        it is tried again until ``wait`` runs out, then logged; the next erasure's
        checkpoint empties the WAL then."""
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            try:
                busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint after an erasure failed on %s: %s", self.url, exc)
                return
            if not busy:
                return
            if time.monotonic() > deadline:
                log.warning("WAL checkpoint after an erasure could not finish on %s", self.url)
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _settle(self, durable: bool, bulk: bool) -> None:
        """The connection's settings for this kind of transaction, changed only when they
        differ from the last one's (a smaller cache frees the pages beyond it)."""
        level = "FULL" if durable else "NORMAL"
        if level != self._sync:
            self.conn.execute(f"PRAGMA synchronous = {level}")
            background = not durable and self._checkpointer is not None
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {0 if background else 1000}")
            self._sync = level
        cache = self.BULK_CACHE_KIB if bulk else self.CACHE_KIB
        if cache != self._cache_kib:
            self.conn.execute(f"PRAGMA cache_size = {-cache}")
            self._cache_kib = cache

    @contextmanager
    def _transaction(self) -> Iterator[SQLiteTx]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_explain(exc)}") from exc
        try:
            yield SQLiteTx(self.conn)
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot write to store {self.url}: {_explain(exc)}") from exc
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot commit to store {self.url}: {_explain(exc)}") from exc

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def reader(self) -> Iterator[SQLiteReader]:
        """A consistent read snapshot (the connection is shared, so readers take the lock)."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield SQLiteReader(self.conn)
            finally:
                self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[SQLiteSnapshot]:
        """A read-only transaction on this connection: one consistent snapshot of the store,
        taken beside a writer in another process (WAL: neither waits for the other)."""
        with self._lock:
            self.conn.execute("PRAGMA query_only = ON")
            try:
                self.conn.execute("BEGIN")
                try:
                    yield SQLiteSnapshot(self.conn)
                finally:
                    self.conn.execute("ROLLBACK")
            finally:
                self.conn.execute("PRAGMA query_only = OFF")

    def data_version(self) -> int:
        """SQLite's ``data_version``: it changes when another connection (another process,
        or another store object) commits, never for this one's own commits."""
        with self._lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def claim(self, name: str) -> Iterator[bool]:
        """Work that runs in one place at a time. SQLite serves one process, so a claim is
        only refused while another thread of this process holds it."""
        with self._lock:
            got = name not in self._held
            self._held.add(name)
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._held.discard(name)

    # -- replays and the inbox (``base.Store``) -------------------------------------------
    # A file lock (``flock``) on ``<store>.replay-lock``: exclusive for a replay, shared and
    # never waited for by other writers. The kernel releases it when the process dies.
    def _replay_lock_path(self) -> str | None:
        path = sqlite_path(self.url)
        return None if path == ":memory:" else os.path.abspath(path) + ".replay-lock"

    @contextmanager
    def replay_lock(self) -> Iterator[None]:
        path = self._replay_lock_path()
        if path is None:  # one connection in one process: nobody else writes
            yield
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def unless_replaying(self) -> Iterator[bool]:
        path = self._replay_lock_path()
        if path is None:
            yield True
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield not self._replay_unfinished()
        finally:
            os.close(fd)

    def _replay_unfinished(self) -> bool:
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM meta WHERE key = ?", (REPLAY_KEY,))
            return row.fetchone() is not None

    def inbox(self) -> SQLiteInbox | None:
        """The inbox file beside the store (``<store>.inbox``); none in memory."""
        path = sqlite_path(self.url)
        if path == ":memory:":
            return None
        with self._inbox_lock:  # not the store's lock: a long transaction may hold that
            if self._inbox is None:
                self._inbox = SQLiteInbox(os.path.abspath(path) + ".inbox")
            return self._inbox

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._inbox is not None:
            self._inbox.close()
        self.conn.close()


def schema_version(url: str) -> int:
    """The store's schema version without opening (or migrating) it: 0 for a store not
    created yet. Read-only: what ``tactful migrate --status`` reports before an upgrade."""
    if url.startswith(("postgresql:", "postgres:")):
        from tactful.store.postgres import schema_version as pg_schema_version

        return pg_schema_version(url)
    path = sqlite_path(url)
    if path == ":memory:" or not Path(path).expanduser().exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{Path(path).expanduser()}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if found is None:
                return 0
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            return int(row.fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read store {url}: {_explain(exc)}") from exc


def open_store(url: str) -> Any:
    """The store a URL names: ``sqlite:///path`` or ``postgresql://…``."""
    if url.startswith("sqlite:"):
        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from tactful.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///path or postgresql://…")

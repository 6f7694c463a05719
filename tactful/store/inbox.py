"""The inbox: webhook requests acknowledged while a replay holds the store (``base.Inbox``).

SQLite: a small SQLite file beside the store (``<store>.inbox``), in WAL mode with
``synchronous = FULL``, so an insert is on disk when it returns and never waits for the
store's write lock. PostgreSQL: the ``inbox`` table (migration 13), which a replay never
touches, each insert committed on its own. Rows are drained in ``seq`` order; a row that
cannot be applied is kept with its error (``failed``) and skipped, never dropped.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from tactful.clock import now_us
from tactful.store.base import InboxRow, InboxSummary, StoreError
from tactful.store.dialect import SQLITE

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "received_us INTEGER NOT NULL, payload BLOB NOT NULL, failed TEXT)"
)


_COUNTS = (
    "SELECT COUNT(*) FILTER (WHERE failed IS NULL), COUNT(*) FILTER (WHERE failed IS NOT NULL) "
    "FROM inbox"
)
_OLDEST_FAILED = (
    "SELECT received_us, failed FROM inbox WHERE failed IS NOT NULL ORDER BY seq LIMIT 1"
)


def _summary(counts: Sequence[Any], oldest: Sequence[Any]) -> InboxSummary:
    (waiting, failed), first = counts[0], (oldest[0] if oldest else (None, None))
    return InboxSummary(
        int(waiting or 0),
        int(failed or 0),
        None if first[0] is None else int(first[0]),
        None if first[1] is None else str(first[1]),
    )


class SQLiteInbox:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            # Applied requests are deleted; their bytes (personal data) do not stay behind.
            self.conn.execute("PRAGMA secure_delete = ON")
            self.conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the inbox {path}: {exc}") from exc

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"inbox {self.path}: {exc}") from exc

    def put(self, payloads: Sequence[bytes]) -> None:
        now = now_us()
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(
                    "INSERT INTO inbox (received_us, payload) VALUES (?, ?)",
                    [(now, p) for p in payloads],
                )
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StoreError(f"cannot write to the inbox {self.path}: {exc}") from exc

    def pending(self) -> bool:
        return bool(self._run("SELECT 1 FROM inbox WHERE failed IS NULL LIMIT 1"))

    def take(self, limit: int) -> list[InboxRow]:
        rows = self._run(
            "SELECT seq, payload, received_us FROM inbox WHERE failed IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [InboxRow(int(seq), bytes(payload), int(at)) for seq, payload, at in rows]

    def done(self, seqs: Sequence[int]) -> None:
        if seqs:
            among, values = SQLITE.among("seq", seqs)
            self._run(f"DELETE FROM inbox WHERE {among}", values)

    def fail(self, seq: int, error: str) -> None:
        self._run("UPDATE inbox SET failed = ? WHERE seq = ?", (error or "error", seq))

    def failed(self) -> list[tuple[int, str]]:
        rows = self._run("SELECT seq, failed FROM inbox WHERE failed IS NOT NULL ORDER BY seq")
        return [(int(seq), str(error)) for seq, error in rows]

    def summary(self) -> InboxSummary:
        return _summary(self._run(_COUNTS), self._run(_OLDEST_FAILED))

    def close(self) -> None:
        with self._lock:
            self.conn.close()


class PgInbox:
    """The ``inbox`` table, through the store's connection pool (autocommit: each statement
    its own durable transaction)."""

    def __init__(self, connection: Callable[[], AbstractContextManager[Any]]) -> None:
        self._connection = connection

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []

    def put(self, payloads: Sequence[bytes]) -> None:
        now = now_us()
        with self._connection() as conn, conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO inbox (received_us, payload) VALUES (%s, %s)",
                [(now, p) for p in payloads],
            )

    def pending(self) -> bool:
        return bool(self._run("SELECT 1 FROM inbox WHERE failed IS NULL LIMIT 1"))

    def take(self, limit: int) -> list[InboxRow]:
        rows = self._run(
            "SELECT seq, payload, received_us FROM inbox WHERE failed IS NULL ORDER BY seq "
            "LIMIT %s",
            (limit,),
        )
        return [InboxRow(int(seq), bytes(payload), int(at)) for seq, payload, at in rows]

    def done(self, seqs: Sequence[int]) -> None:
        if seqs:
            self._run("DELETE FROM inbox WHERE seq = ANY(%s)", (list(seqs),))

    def fail(self, seq: int, error: str) -> None:
        self._run("UPDATE inbox SET failed = %s WHERE seq = %s", (error or "error", seq))

    def failed(self) -> list[tuple[int, str]]:
        rows = self._run("SELECT seq, failed FROM inbox WHERE failed IS NOT NULL ORDER BY seq")
        return [(int(seq), str(error)) for seq, error in rows]

    def summary(self) -> InboxSummary:
        return _summary(self._run(_COUNTS), self._run(_OLDEST_FAILED))

    def close(self) -> None:
        pass

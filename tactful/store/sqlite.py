"""SQLite store: WAL journal, one write transaction per batch (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from tactful.core.segments import Change, Membership
from tactful.core.state import TicketRecord
from tactful.store import records
from tactful.store.base import (
    EventRow,
    HistoryRow,
    IdentKey,
    OutboxRow,
    PersonRow,
    StateChangeRow,
    StoreError,
)
from tactful.store.erasure import ErasureReport, erase
from tactful.store.migrations import migrate

_CHUNK = 500  # parameters per IN (...) list


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
    return url[len(prefix) :]


class _Queries:
    """Reads shared by the writer transaction and the read-only snapshot."""

    conn: sqlite3.Connection

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def resolve_person_id(self, person_id: str) -> str | None:
        seen = set()
        current = person_id
        while current not in seen:
            seen.add(current)
            row = self.conn.execute(
                "SELECT 1 FROM persons WHERE person_id = ?", (current,)
            ).fetchone()
            if row is not None:
                return current
            alias = self.conn.execute(
                "SELECT person_id FROM person_aliases WHERE old_id = ?", (current,)
            ).fetchone()
            if alias is None:
                return None
            current = alias[0]
        return None

    def find_persons(self, kind: str | None, value: str) -> list[str]:
        if kind is None:
            rows = self.conn.execute(
                "SELECT DISTINCT person_id FROM identifiers WHERE value = ? ORDER BY person_id",
                (value,),
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT person_id FROM identifiers WHERE kind = ? AND value = ? ORDER BY person_id",
                (kind, value),
            ).fetchall()
        return [r[0] for r in rows]

    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]:
        out: dict[str, list[IdentKey]] = {pid: [] for pid in person_ids}
        for chunk in _chunks(list(person_ids)):
            for kind, value, pid in self.conn.execute(
                f"SELECT kind, value, person_id FROM identifiers WHERE person_id IN "
                f"({_marks(len(chunk))}) ORDER BY kind, value",
                tuple(chunk),
            ):
                out[pid].append((kind, value))
        return out

    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]:
        out: dict[str, list[TicketRecord]] = {pid: [] for pid in person_ids}
        for chunk in _chunks(list(person_ids)):
            for tid, pid, blob in self.conn.execute(
                f"SELECT ticket_id, person_id, record FROM tickets WHERE person_id IN "
                f"({_marks(len(chunk))})",
                tuple(chunk),
            ):
                out[pid].append(records.load_ticket(tid, blob))
        return out

    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]:
        out: dict[str, PersonRow] = {}
        ids = list(person_ids)
        for chunk in _chunks(ids):
            marks = _marks(len(chunk))
            for pid, facts, state, created in self.conn.execute(
                f"SELECT person_id, facts, state, created_us FROM persons "
                f"WHERE person_id IN ({marks})",
                tuple(chunk),
            ):
                out[pid] = PersonRow(
                    pid, records.load_facts(facts), records.load_state(state), {}, None, created
                )
            for segment, pid, since, false_since, holdout in self.conn.execute(
                f"SELECT segment, person_id, since_us, false_since_us, holdout FROM memberships "
                f"WHERE person_id IN ({marks})",
                tuple(chunk),
            ):
                if pid in out:
                    out[pid].memberships[segment] = records.membership_from_row(
                        since, false_since, holdout
                    )
            for pid, due in self.conn.execute(
                f"SELECT person_id, due_us FROM timers WHERE person_id IN ({marks})", tuple(chunk)
            ):
                if pid in out:
                    out[pid].wake = records.from_us(due)
        return out

    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]:
        rows = self.conn.execute(
            "SELECT due_us, person_id FROM timers WHERE due_us <= ? ORDER BY due_us, person_id",
            (records.to_us(until),),
        ).fetchall()
        return [(records.from_us(due), pid) for due, pid in rows]

    def history_of(self, person_id: str) -> list[Change]:
        rows = self.conn.execute(
            "SELECT segment, change, at_us, rule, holdout, detail FROM membership_history "
            "WHERE person_id = ? ORDER BY at_us, id",
            (person_id,),
        ).fetchall()
        return [Change(s, c, records.from_us(at), r, bool(h), d) for s, c, at, r, h, d in rows]

    def documents_with_source_prefix(self, prefix: str, after_id: int) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            "SELECT id, source FROM documents WHERE source LIKE ? AND id > ? ORDER BY id",
            (prefix + "%", after_id),
        ).fetchall()
        return [(int(i), str(src)) for i, src in rows if str(src).startswith(prefix)]

    def person_ids(self, after: str | None, limit: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT person_id FROM persons WHERE person_id > ? ORDER BY person_id LIMIT ?",
            (after or "", limit),
        ).fetchall()
        return [r[0] for r in rows]

    def segment_counts(self) -> dict[str, tuple[int, int]]:
        rows = self.conn.execute(
            "SELECT segment, COUNT(*), SUM(holdout) FROM memberships GROUP BY segment"
        ).fetchall()
        return {s: (int(n), int(h or 0)) for s, n, h in rows}

    def segment_members(
        self, segment: str, after: str | None, limit: int
    ) -> list[tuple[str, Membership]]:
        rows = self.conn.execute(
            "SELECT person_id, since_us, false_since_us, holdout FROM memberships "
            "WHERE segment = ? AND person_id > ? ORDER BY person_id LIMIT ?",
            (segment, after or "", limit),
        ).fetchall()
        return [(pid, records.membership_from_row(s, f, h)) for pid, s, f, h in rows]

    def state_counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT support_state, COUNT(*) FROM persons GROUP BY support_state"
        ).fetchall()
        return {s: int(n) for s, n in rows}

    def counts(self) -> dict[str, int]:
        out = {}
        for table in (
            "documents",
            "events",
            "persons",
            "tickets",
            "identifiers",
            "timers",
            "outbox",
        ):
            out[table] = int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        return out


class SQLiteTx(_Queries):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def insert_document(self, source: str, body: bytes) -> int:
        digest = hashlib.sha256(body).hexdigest()
        row = self.conn.execute("SELECT id FROM documents WHERE sha256 = ?", (digest,)).fetchone()
        if row is not None:
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO documents (sha256, source, received_us, encoding, body) "
            "VALUES (?, ?, ?, 'zlib', ?)",
            (digest, source, time.time_ns() // 1000, zlib.compress(body, 1)),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]:
        received = time.time_ns() // 1000
        cur = self.conn.cursor()
        inserted: list[bool] = []
        for row in rows:
            cur.execute(
                "INSERT INTO events (key, kind, at_us, source, received_us, document_id, "
                "canonical) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (
                    row.key,
                    row.kind,
                    row.at_us,
                    row.source,
                    received,
                    row.document_id,
                    row.canonical,
                ),
            )
            inserted.append(cur.rowcount == 1)
        return inserted

    def event_batches(self, batch_size: int) -> Iterator[list[tuple[int, str, bytes]]]:
        last = 0
        while True:
            rows = self.conn.execute(
                "SELECT seq, kind, canonical FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, batch_size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(int(s), str(k), bytes(c)) for s, k, c in rows]

    def event_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def lookup_identifiers(self, keys: Iterable[IdentKey]) -> dict[IdentKey, set[str]]:
        by_kind: dict[str, list[str]] = {}
        for kind, value in set(keys):
            by_kind.setdefault(kind, []).append(value)
        out: dict[IdentKey, set[str]] = {}
        for kind, values in by_kind.items():
            for chunk in _chunks(values):
                for value, pid in self.conn.execute(
                    f"SELECT value, person_id FROM identifiers WHERE kind = ? AND value IN "
                    f"({_marks(len(chunk))})",
                    (kind, *chunk),
                ):
                    out.setdefault((kind, value), set()).add(pid)
        return out

    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.conn.executemany(
            "INSERT INTO identifiers (kind, value, person_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            list(rows),
        )

    def merge_person(self, absorbed: str, survivor: str) -> None:
        c = self.conn
        c.execute(
            "INSERT INTO identifiers (kind, value, person_id) "
            "SELECT kind, value, ? FROM identifiers WHERE person_id = ? ON CONFLICT DO NOTHING",
            (survivor, absorbed),
        )
        c.execute("DELETE FROM identifiers WHERE person_id = ?", (absorbed,))
        c.execute("UPDATE tickets SET person_id = ? WHERE person_id = ?", (survivor, absorbed))
        c.execute("UPDATE outcomes SET person_id = ? WHERE person_id = ?", (survivor, absorbed))
        c.execute(
            "UPDATE person_aliases SET person_id = ? WHERE person_id = ?", (survivor, absorbed)
        )
        c.execute(
            "INSERT INTO person_aliases (old_id, person_id) VALUES (?, ?) "
            "ON CONFLICT (old_id) DO UPDATE SET person_id = excluded.person_id",
            (absorbed, survivor),
        )
        c.execute(
            "UPDATE membership_history SET person_id = ? WHERE person_id = ?", (survivor, absorbed)
        )
        c.execute(
            "UPDATE state_changes SET person_id = ? WHERE person_id = ?", (survivor, absorbed)
        )
        self.delete_person(absorbed)

    def delete_person(self, person_id: str) -> None:
        for table in ("persons", "memberships", "timers"):
            self.conn.execute(f"DELETE FROM {table} WHERE person_id = ?", (person_id,))

    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]:
        out: dict[int, tuple[str, TicketRecord]] = {}
        for chunk in _chunks(list(set(ticket_ids))):
            for tid, pid, blob in self.conn.execute(
                f"SELECT ticket_id, person_id, record FROM tickets WHERE ticket_id IN "
                f"({_marks(len(chunk))})",
                tuple(chunk),
            ):
                out[tid] = (pid, records.load_ticket(tid, blob))
        return out

    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None:
        self.conn.executemany(
            "INSERT INTO tickets (ticket_id, person_id, record) VALUES (?, ?, ?) "
            "ON CONFLICT (ticket_id) DO UPDATE SET person_id = excluded.person_id, "
            "record = excluded.record",
            [(tid, pid, records.dump_ticket(rec)) for tid, pid, rec in rows],
        )

    def save_persons(self, rows: Iterable[PersonRow], *, new: set[str]) -> None:
        rows = list(rows)
        self.conn.executemany(
            "INSERT INTO persons (person_id, facts, state, support_state, created_us) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET facts = excluded.facts, "
            "state = excluded.state, support_state = excluded.support_state",
            [
                (
                    r.person_id,
                    records.dump_facts(r.facts),
                    records.dump_state(r.state),
                    r.state.get("support_state", "clear"),
                    r.created_us,
                )
                for r in rows
            ],
        )
        ids = [(r.person_id,) for r in rows if r.person_id not in new]
        self.conn.executemany("DELETE FROM memberships WHERE person_id = ?", ids)
        self.conn.executemany(
            "INSERT INTO memberships (segment, person_id, since_us, false_since_us, holdout) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                records.membership_row(seg, r.person_id, m)
                for r in rows
                for seg, m in r.memberships.items()
                if m.member
            ],
        )
        self.conn.executemany(
            "INSERT INTO timers (person_id, due_us) VALUES (?, ?) "
            "ON CONFLICT (person_id) DO UPDATE SET due_us = excluded.due_us",
            [(r.person_id, records.to_us(r.wake)) for r in rows if r.wake is not None],
        )
        self.conn.executemany(
            "DELETE FROM timers WHERE person_id = ?",
            [(r.person_id,) for r in rows if r.wake is None and r.person_id not in new],
        )

    def append_history(self, rows: Iterable[HistoryRow]) -> None:
        self.conn.executemany(
            "INSERT INTO membership_history (person_id, segment, change, at_us, rule, holdout, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.person_id,
                    c.segment,
                    c.change,
                    records.to_us(c.at),
                    c.rule,
                    int(c.holdout),
                    c.detail,
                )
                for r in rows
                for c in (r.change,)
            ],
        )

    def append_state_changes(self, rows: Iterable[StateChangeRow]) -> None:
        self.conn.executemany(
            "INSERT INTO state_changes (person_id, at_us, old_state, new_state, changed) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (r.person_id, records.to_us(r.at), r.old_state, r.new_state, ",".join(r.changed))
                for r in rows
            ],
        )

    def append_outbox(self, rows: Iterable[OutboxRow]) -> None:
        now = time.time_ns() // 1000
        self.conn.executemany(
            "INSERT INTO outbox (person_id, topic, at_us, payload, created_us) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.person_id, r.topic, records.to_us(r.at), r.payload, now) for r in rows],
        )

    def append_outcomes(self, rows: Iterable[tuple[str, Any]]) -> None:
        self.conn.executemany(
            "INSERT INTO outcomes (key, person_id, at_us, outcome, amount, currency, properties) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            [
                (
                    e.key,
                    pid,
                    records.to_us(e.at),
                    e.outcome,
                    e.amount,
                    e.currency,
                    orjson.dumps(dict(e.properties)),
                )
                for pid, e in rows
            ],
        )

    def erase_person(self, person_id: str, at_us: int, requested_by: str) -> ErasureReport:
        return erase(self.conn, person_id, at_us, requested_by)

    def reset_derived(self) -> None:
        for table in (
            "persons",
            "person_aliases",
            "identifiers",
            "tickets",
            "memberships",
            "membership_history",
            "state_changes",
            "timers",
            "outbox",
            "outcomes",
        ):
            self.conn.execute(f"DELETE FROM {table}")
        self.conn.execute("DELETE FROM meta WHERE key = 'clock'")


class SQLiteReader(_Queries):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class SQLiteStore:
    """The embedded default store. One writer at a time; readers never block the writer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        path = sqlite_path(url)
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"store directory does not exist: {parent}")
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self._sync = "FULL"
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self.conn.execute("PRAGMA cache_size = -131072")  # 128 MiB: big stores stay fast
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {url}: {exc}") from exc

    def _migrate(self) -> None:
        c = self.conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_us INTEGER NOT NULL)"
        )
        current = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        c.execute("BEGIN IMMEDIATE")
        try:
            migrate(
                "sqlite",
                int(current[0]),
                c.execute,
                lambda version, description: c.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (version, description, time.time_ns() // 1000),
                ),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[SQLiteTx]:
        """One write transaction. ``durable=False`` skips the fsync at commit (WAL with
        synchronous=NORMAL): still atomic and safe against a process crash, but the last
        commits may be lost on power failure. Only for re-runnable bulk work (import)."""
        with self._lock, self._transaction(durable) as tx:
            yield tx

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[SQLiteTx]:
        level = "FULL" if durable else "NORMAL"
        if level != self._sync:
            self.conn.execute(f"PRAGMA synchronous = {level}")
            self._sync = level
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {exc}") from exc
        try:
            yield SQLiteTx(self.conn)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"cannot commit to store {self.url}: {exc}") from exc

    @contextmanager
    def reader(self) -> Iterator[SQLiteReader]:
        """A consistent read snapshot (the connection is shared, so readers take the lock)."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield SQLiteReader(self.conn)
            finally:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def open_store(url: str) -> SQLiteStore:
    if url.startswith("sqlite:"):
        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        raise StoreError("the PostgreSQL store is not available yet (see the Production issue)")
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///path or postgresql://…")

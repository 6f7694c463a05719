"""Delivery rows, attempts and the audience ledger (portable SQL: SQLite and PostgreSQL).

Outbox rows are claimed for routing with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and marked
``routed`` in the same transaction that inserts their deliveries, so a row is routed once
even when several processes route, and rows committed out of id order are never skipped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tactful.store.base import Store


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    destination: str
    person_id: str
    kind: str
    name: str
    segment: str | None
    key: str
    at_us: int
    payload: dict[str, Any]
    status: str
    attempts: int
    next_us: int
    created_us: int
    last_error: str


_COLUMNS = (
    "id, destination, person_id, kind, name, segment, key, at_us, payload, status, "
    "attempts, next_us, created_us, last_error"
)


def _row(r: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        orjson.loads(r[8]),
        r[9],
        r[10],
        r[11],
        r[12],
        r[13],
    )


@dataclass(frozen=True, slots=True)
class NewDelivery:
    destination: str
    person_id: str
    kind: str
    name: str
    segment: str | None
    key: str
    at_us: int
    payload: dict[str, Any]


class DeliveryStore:
    def __init__(self, store: Store, clock_us: Callable[[], int] = now_us) -> None:
        self.store = store
        self.now_us = clock_us

    def route(
        self,
        limit: int,
        plan: Callable[[Any, list[tuple[int, str, str, int, bytes]]], list[NewDelivery]],
    ) -> tuple[int, int]:
        """Claim up to ``limit`` unrouted outbox rows (oldest first), turn them into
        deliveries with ``plan`` and mark them routed, in one transaction.
        Returns (outbox rows routed, deliveries inserted)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            conn: Any = tx.conn  # type: ignore[attr-defined]
            skip = " FOR UPDATE SKIP LOCKED" if getattr(tx, "locking", False) else ""
            raw = conn.execute(
                "SELECT id, person_id, topic, at_us, payload FROM outbox WHERE routed = 0 "
                "ORDER BY id LIMIT ?" + skip,
                (limit,),
            ).fetchall()
            rows = [(int(i), p, t, int(a), bytes(b)) for i, p, t, a, b in raw]
            if not rows:
                return 0, 0
            inserted = self._insert(conn, plan(tx, rows), now)
            ids = [(r[0],) for r in rows]
            conn.executemany("UPDATE outbox SET routed = 1 WHERE id = ?", ids)
            # Erasure rows carry identifiers only until they are routed.
            erased = [(b"{}", r[0]) for r in rows if r[2] == "person_erased"]
            conn.executemany("UPDATE outbox SET payload = ? WHERE id = ?", erased)
            tx.erased = tx.erased or bool(erased)  # the store then wipes the old bytes
            return len(rows), inserted

    def unrouted(
        self,
        limit: int,
        plan: Callable[[Any, list[tuple[int, str, str, int, bytes]]], list[NewDelivery]],
    ) -> list[NewDelivery]:
        """What routing the oldest ``limit`` unrouted outbox rows would insert, read only
        (``tactful sync --dry-run``)."""
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            raw = conn.execute(
                "SELECT id, person_id, topic, at_us, payload FROM outbox WHERE routed = 0 "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            rows = [(int(i), p, t, int(a), bytes(b)) for i, p, t, a, b in raw]
            return plan(reader, rows) if rows else []

    def enqueue(self, rows: Iterable[NewDelivery]) -> int:
        now = self.now_us()
        with self.store.transaction() as tx:
            return self._insert(tx.conn, rows, now)  # type: ignore[attr-defined]

    @staticmethod
    def _insert(conn: Any, rows: Iterable[NewDelivery], now: int) -> int:
        cur = conn.executemany(
            "INSERT INTO deliveries (destination, person_id, kind, name, segment, key, "
            "at_us, payload, status, attempts, next_us, created_us, updated_us) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
            "ON CONFLICT (destination, key) DO NOTHING",
            [
                (
                    r.destination,
                    r.person_id,
                    r.kind,
                    r.name,
                    r.segment,
                    r.key,
                    r.at_us,
                    orjson.dumps(r.payload),
                    now,
                    now,
                    now,
                )
                for r in rows
            ],
        )
        return max(0, int(cur.rowcount))

    def candidates(self, destination: str, limit: int) -> list[DeliveryRow]:
        """Pending rows in id order (due or not: the worker keeps per-person order)."""
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE destination = ? AND status = 'pending' "
                "ORDER BY id LIMIT ?",
                (destination, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def finish(
        self,
        results: Sequence[tuple[DeliveryRow, str, int | None, str, int | None, str]],
        run_id: int | None = None,
    ) -> None:
        """Record attempts: (row, new status, next_us, error, http status, outcome kind),
        made during the sync run ``run_id``."""
        now = self.now_us()
        with self.store.transaction() as tx:
            conn: Any = tx.conn  # type: ignore[attr-defined]
            for row, status, next_us, error, http_status, outcome in results:
                conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_us = ?, "
                    "updated_us = ?, last_error = ? WHERE id = ?",
                    (status, next_us if next_us is not None else row.next_us, now, error, row.id),
                )
                conn.execute(
                    "INSERT INTO delivery_attempts (delivery_id, at_us, outcome, status, error, "
                    "run_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (row.id, now, outcome, http_status, error, run_id),
                )
                # An add whose answer was lost (retry) may have been applied: the ledger
                # records it, so a later removal is sent (removing a non-member is harmless).
                if row.kind == "audience_add" and (status == "done" or outcome == "retry"):
                    conn.execute(
                        "INSERT INTO audience_ledger (destination, person_id, added_us) "
                        "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (row.destination, row.person_id, now),
                    )
                elif status == "done" and row.kind in ("audience_remove", "erase"):
                    conn.execute(
                        "DELETE FROM audience_ledger WHERE destination = ? AND person_id = ?",
                        (row.destination, row.person_id),
                    )
                if row.kind == "erase" and status in ("done", "dead", "skipped"):
                    # identifiers of an erased person live only until the erasure is out
                    conn.execute("UPDATE deliveries SET payload = ? WHERE id = ?", (b"{}", row.id))
                    tx.erased = True  # the store then wipes the old bytes

    def skip(self, rows: Sequence[DeliveryRow], reason: str) -> None:
        now = self.now_us()
        with self.store.transaction() as tx:
            conn: Any = tx.conn  # type: ignore[attr-defined]
            conn.executemany(
                "UPDATE deliveries SET status = 'skipped', updated_us = ?, last_error = ?, "
                "payload = CASE WHEN kind = 'erase' THEN ? ELSE payload END WHERE id = ?",
                [(now, reason, b"{}", r.id) for r in rows],
            )

    def expire(self, destination: str, created_before_us: int, reason: str) -> int:
        """Dead-letter the pending rows created before ``created_before_us`` without an
        attempt (their destination's circuit is open: they would have aged out retrying)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            conn: Any = tx.conn  # type: ignore[attr-defined]
            cur = conn.execute(
                "UPDATE deliveries SET status = 'dead', updated_us = ?, last_error = ?, "
                "payload = CASE WHEN kind = 'erase' THEN ? ELSE payload END "
                "WHERE destination = ? AND status = 'pending' AND created_us < ?",
                (now, reason, b"{}", destination, created_before_us),
            )
            return max(0, int(cur.rowcount))

    def ledger(self, destination: str) -> set[str]:
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                "SELECT person_id FROM audience_ledger WHERE destination = ?", (destination,)
            ).fetchall()
        return {r[0] for r in rows}

    def in_ledger(self, destination: str, person_ids: Sequence[str]) -> set[str]:
        if not person_ids:
            return set()
        marks = ",".join("?" * len(person_ids))
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                f"SELECT person_id FROM audience_ledger WHERE destination = ? AND person_id IN "
                f"({marks})",
                (destination, *person_ids),
            ).fetchall()
        return {r[0] for r in rows}

    def received(self, destination: str, person_ids: Sequence[str]) -> set[str]:
        """Who among ``person_ids`` the destination already received something about (a
        delivery done, erasures aside): the ESP holds them, so an unsubscribe may name them."""
        if not person_ids:
            return set()
        marks = ",".join("?" * len(person_ids))
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                f"SELECT DISTINCT person_id FROM deliveries WHERE destination = ? AND person_id "
                f"IN ({marks}) AND status = 'done' AND kind NOT IN ('erase', 'unsubscribe')",
                (destination, *person_ids),
            ).fetchall()
        return {r[0] for r in rows}

    def listing(self, statuses: Sequence[str], limit: int = 500) -> list[DeliveryRow]:
        marks = ",".join("?" * len(statuses))
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE status IN ({marks}) ORDER BY id LIMIT ?",
                (*statuses, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def retry(self, ids: Sequence[int] | None) -> int:
        """Dead letters back to pending, due now (all when ``ids`` is None)."""
        now = self.now_us()
        with self.store.transaction() as tx:
            conn: Any = tx.conn  # type: ignore[attr-defined]
            if ids is None:
                cur = conn.execute(
                    "UPDATE deliveries SET status = 'pending', next_us = ?, created_us = ? "
                    "WHERE status = 'dead'",
                    (now, now),
                )
            else:
                cur = conn.executemany(
                    "UPDATE deliveries SET status = 'pending', next_us = ?, created_us = ? "
                    "WHERE status = 'dead' AND id = ?",
                    [(now, now, i) for i in ids],
                )
            return int(cur.rowcount)

    def health(self) -> dict[str, dict[str, Any]]:
        with self.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            rows = conn.execute(
                "SELECT destination, status, COUNT(*), MIN(created_us), MAX(updated_us) "
                "FROM deliveries GROUP BY destination, status"
            ).fetchall()
            errors = conn.execute(  # the latest error of each destination
                "SELECT d.destination, d.last_error, d.updated_us FROM deliveries d JOIN "
                "(SELECT destination, MAX(updated_us) AS at FROM deliveries "
                "WHERE last_error != '' AND status != 'skipped' GROUP BY destination) m "
                "ON d.destination = m.destination AND d.updated_us = m.at "
                "WHERE d.last_error != '' AND d.status != 'skipped' ORDER BY d.id"
            ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for dest, status, count, oldest, newest in rows:
            h = out.setdefault(
                dest,
                {
                    "pending": 0,
                    "dead": 0,
                    "done": 0,
                    "skipped": 0,
                    "oldest_pending_us": None,
                    "last_success_us": None,
                },
            )
            h[status] = int(count)
            if status == "pending":
                h["oldest_pending_us"] = oldest
            if status == "done":
                h["last_success_us"] = newest
        for dest, error, at in errors:
            h = out.setdefault(dest, {})
            h["last_error"], h["last_error_us"] = error, at
        return out

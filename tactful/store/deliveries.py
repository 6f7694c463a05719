"""The outbox, deliveries, their attempts and the audience ledger: the rows and their SQL
(portable: SQLite and PostgreSQL), reached through ``tx.deliveries`` / ``reader.deliveries``.

Outbox rows are claimed for routing with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and marked
``routed`` in the same transaction that inserts their deliveries, so a row is routed once
even when several processes route, and rows committed out of id order are never skipped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tactful.core.messages import PersonErased
from tactful.store.dbapi import Conn
from tactful.store.dialect import Dialect


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


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send of a delivery and what it led to (``finish``)."""

    row: DeliveryRow
    status: str  # the delivery's new status
    next_us: int | None  # when it is due again (None: unchanged)
    error: str
    http_status: int | None
    outcome: str  # ok | retry | reject | …


# An unrouted outbox row: (id, person_id, topic, at_us, payload).
OutboxEntry = tuple[int, str, str, int, bytes]

_COLUMNS = (
    "id, destination, person_id, kind, name, segment, key, at_us, payload, status, "
    "attempts, next_us, created_us, last_error"
)


def _row(r: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]), *r[9:14])


def _health() -> dict[str, Any]:
    return {
        "pending": 0,
        "dead": 0,
        "done": 0,
        "skipped": 0,
        "oldest_pending_us": None,
        "last_success_us": None,
    }


class SqlDeliveries:
    """The delivery port on one connection (inside the caller's transaction or snapshot)."""

    def __init__(self, conn: Conn, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    # reads

    def unrouted(self, limit: int, *, claim: bool = False) -> list[OutboxEntry]:
        """The oldest ``limit`` unrouted outbox rows; ``claim`` locks them against other
        routers (skipping rows another transaction holds)."""
        raw = self.conn.execute(
            "SELECT id, person_id, topic, at_us, payload FROM outbox WHERE routed = 0 "
            f"ORDER BY id LIMIT {self.dialect.p}" + (" FOR UPDATE SKIP LOCKED" if claim else ""),
            (limit,),
        ).fetchall()
        return [(int(i), pid, t, int(a), bytes(b)) for i, pid, t, a, b in raw]

    def pending(self, destination: str, limit: int) -> list[DeliveryRow]:
        """Pending rows in id order (due or not: the worker keeps per-person order)."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE destination = {p} AND status = 'pending' "
            f"ORDER BY id LIMIT {p}",
            (destination, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def listing(self, statuses: Sequence[str], limit: int) -> list[DeliveryRow]:
        among, values = self.dialect.among("status", statuses)
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE {among} ORDER BY id LIMIT {self.dialect.p}",
            (*values, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def dead_ids(self, destination: str) -> list[int]:
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT id FROM deliveries WHERE status = 'dead' AND destination = {p}",
            (destination,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def ledger(self, destination: str, person_ids: Sequence[str] | None = None) -> set[str]:
        """Who the audience ledger holds for ``destination`` (among ``person_ids``)."""
        p = self.dialect.p
        if person_ids is None:
            rows = self.conn.execute(
                f"SELECT person_id FROM audience_ledger WHERE destination = {p}", (destination,)
            ).fetchall()
        elif not person_ids:
            return set()
        else:
            among, values = self.dialect.among("person_id", person_ids)
            rows = self.conn.execute(
                f"SELECT person_id FROM audience_ledger WHERE destination = {p} AND {among}",
                (destination, *values),
            ).fetchall()
        return {r[0] for r in rows}

    def received(self, destination: str, person_ids: Sequence[str]) -> set[str]:
        """Who among ``person_ids`` the destination already received something about (a
        delivery done, erasures aside): the ESP holds them, so an unsubscribe may name them."""
        if not person_ids:
            return set()
        among, values = self.dialect.among("person_id", person_ids)
        rows = self.conn.execute(
            f"SELECT DISTINCT person_id FROM deliveries WHERE destination = {self.dialect.p} "
            f"AND {among} AND status = 'done' AND kind NOT IN ('erase', 'unsubscribe')",
            (destination, *values),
        ).fetchall()
        return {r[0] for r in rows}

    def health(self) -> dict[str, dict[str, Any]]:
        """Per destination: rows by status, the oldest pending, the last success and the
        latest error (the shape ``tactful deliveries --json`` prints)."""
        rows = self.conn.execute(
            "SELECT destination, status, COUNT(*), MIN(created_us), MAX(updated_us) "
            "FROM deliveries GROUP BY destination, status"
        ).fetchall()
        errors = self.conn.execute(  # the latest error of each destination
            "SELECT d.destination, d.last_error, d.updated_us FROM deliveries d JOIN "
            "(SELECT destination, MAX(updated_us) AS at FROM deliveries "
            "WHERE last_error != '' AND status != 'skipped' GROUP BY destination) m "
            "ON d.destination = m.destination AND d.updated_us = m.at "
            "WHERE d.last_error != '' AND d.status != 'skipped' ORDER BY d.id"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for dest, status, count, oldest, newest in rows:
            h = out.setdefault(dest, _health())
            h[status] = int(count)
            if status == "pending":
                h["oldest_pending_us"] = oldest
            if status == "done":
                h["last_success_us"] = newest
        for dest, error, at in errors:
            h = out.setdefault(dest, {})
            h["last_error"], h["last_error_us"] = error, at
        return out

    # writes

    def mark_routed(self, rows: Sequence[OutboxEntry]) -> bool:
        """Mark outbox rows routed; an erasure's row drops its identifiers. True when one
        did (the store then wipes the old bytes)."""
        p = self.dialect.p
        self.conn.executemany(
            f"UPDATE outbox SET routed = 1 WHERE id = {p}", [(r[0],) for r in rows]
        )
        erased = [(b"{}", r[0]) for r in rows if r[2] == PersonErased.TOPIC]
        self.conn.executemany(f"UPDATE outbox SET payload = {p} WHERE id = {p}", erased)
        return bool(erased)

    def insert(self, rows: Iterable[NewDelivery], now_us: int) -> int:
        """New pending deliveries (a key already there is kept); how many were inserted."""
        p = self.dialect.p
        cur = self.conn.executemany(
            "INSERT INTO deliveries (destination, person_id, kind, name, segment, key, "
            "at_us, payload, status, attempts, next_us, created_us, updated_us) VALUES "
            f"({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, 'pending', 0, {p}, {p}, {p}) "
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
                    now_us,
                    now_us,
                    now_us,
                )
                for r in rows
            ],
        )
        return max(0, int(cur.rowcount))

    def record(self, attempts: Iterable[Attempt], now_us: int, run_id: int | None) -> bool:
        """Record attempts made during the sync run ``run_id`` and keep the audience ledger.
        True when an erasure's identifiers were dropped (the store then wipes them)."""
        p = self.dialect.p
        erased = False
        for a in attempts:
            row = a.row
            self.conn.execute(
                f"UPDATE deliveries SET status = {p}, attempts = attempts + 1, next_us = {p}, "
                f"updated_us = {p}, last_error = {p} WHERE id = {p}",
                (
                    a.status,
                    row.next_us if a.next_us is None else a.next_us,
                    now_us,
                    a.error,
                    row.id,
                ),
            )
            self.conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, at_us, outcome, status, error, "
                f"run_id) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                (row.id, now_us, a.outcome, a.http_status, a.error, run_id),
            )
            # An add whose answer was lost (retry) may have been applied: the ledger
            # records it, so a later removal is sent (removing a non-member is harmless).
            if row.kind == "audience_add" and (a.status == "done" or a.outcome == "retry"):
                self.conn.execute(
                    "INSERT INTO audience_ledger (destination, person_id, added_us) "
                    f"VALUES ({p}, {p}, {p}) ON CONFLICT DO NOTHING",
                    (row.destination, row.person_id, now_us),
                )
            elif a.status == "done" and row.kind in ("audience_remove", "erase"):
                self.conn.execute(
                    f"DELETE FROM audience_ledger WHERE destination = {p} AND person_id = {p}",
                    (row.destination, row.person_id),
                )
            if row.kind == "erase" and a.status in ("done", "dead", "skipped"):
                # identifiers of an erased person live only until the erasure is out
                self.conn.execute(
                    f"UPDATE deliveries SET payload = {p} WHERE id = {p}", (b"{}", row.id)
                )
                erased = True
        return erased

    def skip(self, ids: Sequence[int], reason: str, now_us: int) -> None:
        p = self.dialect.p
        self.conn.executemany(
            f"UPDATE deliveries SET status = 'skipped', updated_us = {p}, last_error = {p}, "
            f"payload = CASE WHEN kind = 'erase' THEN {p} ELSE payload END WHERE id = {p}",
            [(now_us, reason, b"{}", i) for i in ids],
        )

    def expire(self, destination: str, created_before_us: int, reason: str, now_us: int) -> int:
        """Dead-letter the pending rows created before ``created_before_us``."""
        p = self.dialect.p
        cur = self.conn.execute(
            f"UPDATE deliveries SET status = 'dead', updated_us = {p}, last_error = {p}, "
            f"payload = CASE WHEN kind = 'erase' THEN {p} ELSE payload END "
            f"WHERE destination = {p} AND status = 'pending' AND created_us < {p}",
            (now_us, reason, b"{}", destination, created_before_us),
        )
        return max(0, int(cur.rowcount))

    def retry(self, ids: Sequence[int] | None, now_us: int) -> int:
        """Dead letters back to pending, due now (all when ``ids`` is None)."""
        p = self.dialect.p
        if ids is None:
            cur = self.conn.execute(
                f"UPDATE deliveries SET status = 'pending', next_us = {p}, created_us = {p} "
                "WHERE status = 'dead'",
                (now_us, now_us),
            )
        else:
            cur = self.conn.executemany(
                f"UPDATE deliveries SET status = 'pending', next_us = {p}, created_us = {p} "
                f"WHERE status = 'dead' AND id = {p}",
                [(now_us, now_us, i) for i in ids],
            )
        return int(cur.rowcount)

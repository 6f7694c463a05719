"""PostgreSQL: a batch's rows written as one statement per 2,000 rows, not one per row.

``SqlTx`` writes a batch's history, state changes, outbox rows, identifiers, tickets and
user names with ``executemany``: psycopg sends them in one round trip (pipeline mode), but
the server still parses, plans and runs one ``INSERT`` per row, and psycopg adapts each
row's parameters in Python (about 145,000 statements for an import of 10,000 persons).
Here each column goes as one array parameter (psycopg adapts a Python list to an array:
https://www.psycopg.org/psycopg3/docs/basic/adapt.html#lists-adaptation) and ``unnest``
turns the arrays back into rows in the server. ``WITH ORDINALITY ... ORDER BY n`` keeps the
rows' order (the ordinality column numbers the function's rows from 1:
https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-TABLEFUNCTIONS),
so serial ids come in the order ``executemany`` gave them. An upsert may change a row once
per statement, so rows with one key are first reduced to the one the row-by-row statements
would have left. Same rows, same ids' order, as ``SqlTx``'s statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tactful.clock import now_us
from tactful.core.state import TicketRecord
from tactful.store import records
from tactful.store.base import HistoryRow, OutboxRow, StateChangeRow
from tactful.store.dbapi import Conn, chunks
from tactful.store.pages import fold

ROWS = 2000  # rows per statement (arrays of 2,000 values a column)


def insert_rows(
    conn: Conn,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    tail: str = "",
) -> None:
    """``INSERT INTO table (columns) … tail`` of ``rows`` (in order), as one statement per
    ``ROWS`` rows. ``columns``: (name, PostgreSQL type) each."""
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) "
        f"WITH ORDINALITY AS u({names}, n) ORDER BY n {tail}"
    ).rstrip()
    for chunk in chunks(rows, ROWS):
        conn.execute(sql, tuple(list(column) for column in zip(*chunk, strict=True)))


class ArrayRows:
    """``SqlTx``'s per-row writes as array statements (mixed into ``PgTx`` before it)."""

    conn: Conn

    def append_history(self, rows: Iterable[HistoryRow]) -> None:
        insert_rows(
            self.conn,
            "membership_history",
            [
                ("person_id", "text"),
                ("segment", "text"),
                ("change", "text"),
                ("at_us", "bigint"),
                ("rule", "text"),
                ("holdout", "integer"),
                ("detail", "text"),
            ],
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
        insert_rows(
            self.conn,
            "state_changes",
            [
                ("person_id", "text"),
                ("at_us", "bigint"),
                ("old_state", "text"),
                ("new_state", "text"),
                ("changed", "text"),
            ],
            [
                (r.person_id, records.to_us(r.at), r.old_state, r.new_state, ",".join(r.changed))
                for r in rows
            ],
        )

    def append_outbox(self, rows: Iterable[OutboxRow]) -> None:
        now = now_us()
        insert_rows(
            self.conn,
            "outbox",
            [
                ("person_id", "text"),
                ("topic", "text"),
                ("at_us", "bigint"),
                ("payload", "bytea"),
                ("created_us", "bigint"),
            ],
            [(r.person_id, r.topic, records.to_us(r.at), r.payload, now) for r in rows],
        )

    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None:
        insert_rows(
            self.conn,
            "identifiers",
            [("kind", "text"), ("value", "text"), ("person_id", "text")],
            list(rows),
            "ON CONFLICT DO NOTHING",
        )

    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None:
        last = {tid: (tid, pid, records.dump_ticket(rec)) for tid, pid, rec in rows}
        insert_rows(
            self.conn,
            "tickets",
            [("ticket_id", "bigint"), ("person_id", "text"), ("record", "bytea")],
            list(last.values()),
            "ON CONFLICT (ticket_id) DO UPDATE SET person_id = excluded.person_id, "
            "record = excluded.record",
        )

    def save_user_names(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """Of several rows for one user, the row by row upsert keeps the latest (the last
        of those as late): that row alone goes to the statement."""
        latest: dict[int, tuple[int, str, str, int]] = {}
        for user_id, name, at_us in rows:
            kept = latest.get(user_id)
            if kept is None or at_us >= kept[3]:
                latest[user_id] = (user_id, name, fold(name), at_us)
        insert_rows(
            self.conn,
            "user_names",
            [
                ("zendesk_user_id", "bigint"),
                ("name", "text"),
                ("folded", "text"),
                ("at_us", "bigint"),
            ],
            list(latest.values()),
            "ON CONFLICT (zendesk_user_id) DO UPDATE SET name = excluded.name, "
            "folded = excluded.folded, at_us = excluded.at_us "
            "WHERE excluded.at_us >= user_names.at_us",
        )

"""PostgreSQL writes a batch's rows as column arrays (``tactful.store.postgres_rows``): the
same rows, with the same serial ids, as ``SqlTx``'s row-by-row statements, for values that
are awkward in text (quotes, tabs, newlines, backslashes, braces and commas of an array's
text form, NULL, non-ASCII), more rows than one statement takes, a key given twice, and
nothing at all. A NUL byte in text is refused either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tactful.core.segments import Change
from tactful.core.state import TicketRecord
from tactful.store import postgres_rows
from tactful.store.base import HistoryRow, OutboxRow, StateChangeRow, StoreError
from tactful.store.postgres import PgTx, PostgresStore
from tactful.store.sql import SqlTx
from tactful.store.sqlite import open_store

pytestmark = pytest.mark.postgresql

AWKWARD = [
    "plain",
    'it\'s "quoted"',
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\\\",
    "{brace},comma",
    "NULL",
    "",
    " spaced ",
    "émoji 🙂 ü",
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = {
    "membership_history": "id, person_id, segment, change, at_us, rule, holdout, detail",
    "state_changes": "id, person_id, at_us, old_state, new_state, changed",
    "outbox": "id, person_id, topic, at_us, payload",
    "identifiers": "kind, value, person_id",
    "tickets": "ticket_id, person_id, record",
    "user_names": "zendesk_user_id, name, folded, at_us",
}


def at(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def _write(tx: Any, n: int) -> None:
    """The same writes, twice each (a second batch upserts what the first wrote)."""
    for round_ in range(2):
        texts = [AWKWARD[(i + round_) % len(AWKWARD)] for i in range(n)]
        tx.append_history(
            [
                HistoryRow(
                    f"p{i % 7}", Change(t, "entered", T0 + timedelta(seconds=i), t, i % 2 == 0, t)
                )
                for i, t in enumerate(texts)
            ]
        )
        tx.append_state_changes(
            [
                StateChangeRow(f"p{i}", T0, None if i % 3 == 0 else t, t, (t, "x") if i % 2 else ())
                for i, t in enumerate(texts)
            ]
        )
        tx.append_outbox([OutboxRow(t, "topic", T0, t.encode() + b"\x00\xff") for t in texts])
        tx.add_identifiers([("email", t, f"p{i % 5}") for i, t in enumerate(texts)])
        tx.save_tickets([(i % 40, f"p{i}", _ticket(i % 40, t)) for i, t in enumerate(texts)])
        tx.save_user_names(
            [(i % 30, t, 1_000 + (i * 7919 + round_) % 13) for i, t in enumerate(texts)]
        )


def _ticket(ticket_id: int, reason: str) -> TicketRecord:
    return TicketRecord(ticket_id, None, reason, False, None, frozenset())


class _RowByRow(PgTx):
    """``SqlTx``'s own statements on PostgreSQL (one per row)."""

    append_history = SqlTx.append_history
    append_state_changes = SqlTx.append_state_changes
    append_outbox = SqlTx.append_outbox
    add_identifiers = SqlTx.add_identifiers
    save_tickets = SqlTx.save_tickets
    save_user_names = SqlTx.save_user_names


def _tables(url: str) -> dict[str, list[Any]]:
    with psycopg.connect(url) as conn:
        return {
            table: [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3")
            ]
            for table, columns in TABLES.items()
        }


@pytest.mark.parametrize("n", [0, 1, 45, postgres_rows.ROWS * 2 + 3])
def test_array_rows_are_the_row_by_row_rows(
    pg_cluster: Any, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    for tx_class in (PgTx, _RowByRow):
        url = pg_cluster.new_database()
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        monkeypatch.setattr("tactful.store.postgres.PgTx", tx_class)
        with store.transaction() as tx:
            assert type(tx) is tx_class
            _write(tx, n)
        store.close()
        seen.append(_tables(url))
    assert seen[0] == seen[1]
    if n:
        assert all(seen[0].values())


@pytest.mark.parametrize("write", ["history", "identifiers", "user_names"])
def test_a_nul_in_text_is_refused_and_nothing_is_written(pg_url: str, write: str) -> None:
    store = open_store(pg_url)
    rows: dict[str, Any] = {
        "history": lambda tx: tx.append_history(
            [HistoryRow("p", Change("s", "entered", T0, "nul\x00here", False, "d"))]
        ),
        "identifiers": lambda tx: tx.add_identifiers([("email", "a\x00b", "p")]),
        "user_names": lambda tx: tx.save_user_names([(1, "a\x00b", 1)]),
    }
    with pytest.raises((StoreError, psycopg.DataError)), store.transaction() as tx:
        tx.add_identifiers([("email", "kept?", "p")])
        rows[write](tx)
    with store.reader() as reader:
        assert reader.find_persons("email", "kept?") == []
    store.close()

"""PostgreSQL statements: lists of values sent as one array parameter (``Dialect.among``),
the event log inserted from column arrays. Same answers as the shared SQL gives on SQLite."""

from __future__ import annotations

from pathlib import Path

from tactful.store.base import EventRow
from tactful.store.sqlite import open_store


def _rows(keys: list[str], document_id: int | None) -> list[EventRow]:
    return [
        EventRow(
            key=k,
            kind="health_set",
            at_us=1_700_000_000_000_000 + i,
            source="test",
            document_id=document_id,
            canonical=f'{{"k":"{k}","i":{i}}}'.encode(),
        )
        for i, k in enumerate(keys)
    ]


def test_event_log_inserts_agree_with_sqlite(pg_url: str, tmp_path: Path) -> None:
    stores = [open_store(pg_url), open_store(f"sqlite:///{tmp_path}/t.db")]
    answers = []
    for store in stores:
        with store.transaction() as tx:
            doc = tx.insert_document("test", b'{"page": 1}')
            first = tx.insert_events(_rows(["a", "b", "a", "c"], None))  # a twice in one call
            second = tx.insert_events(_rows(["c", "d", "e", "d"], doc))  # c seen before
            persons = tx.load_persons([f"p{i}" for i in range(1200)])  # lists past 500
            tickets = tx.load_tickets(list(range(1200)))
        with store.reader() as reader:
            conn = reader.conn  # type: ignore[attr-defined]
            log = conn.execute(
                "SELECT key, at_us, document_id IS NULL, canonical FROM events ORDER BY seq"
            ).fetchall()
        answers.append((first, second, persons, tickets, [tuple(r) for r in log]))
        store.close()
    pg, sqlite = answers
    assert pg[0] == [True, True, False, True]
    assert pg[1] == [False, True, True, False]
    assert [row[0] for row in pg[4]] == ["a", "b", "c", "d", "e"]  # log order = arrival order
    assert [(r[0], r[1], r[2], bytes(r[3])) for r in pg[4]] == [
        (r[0], r[1], r[2], bytes(r[3])) for r in sqlite[4]
    ]
    assert pg[:4] == sqlite[:4]

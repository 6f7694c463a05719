"""A full disk or a read-only database: clear errors, nothing half-written, no corruption,
and the work goes through once the fault is gone."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from tactful.cli.main import main
from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, Incoming, rules_from_settings
from tactful.store.base import StoreError
from tactful.store.sqlite import SQLiteStore, open_store
from tactful.testing import T0, at, harness, ticket, user
from tactful.web.app import create_app
from tactful.zendesk.signing import sign
from tests.integration.test_engine_scenarios import CONFIG

SECRET = "c3RvcmUtZmF1bHRzLXNlY3JldA=="


def many_tickets(start: int, n: int) -> list[object]:
    return [
        ticket(start + i, at(i / 60), "open", requester_id=1000 + start + i, subject="x" * 400)
        for i in range(n)
    ]


def test_sqlite_disk_full_fails_the_batch_cleanly_then_recovers(tmp_path: Path) -> None:
    h = harness(CONFIG, f"sqlite:///{tmp_path}/t.db")
    h.engine.apply([user(1, emails=("ann@example.com",)), ticket(1, T0, "open")])
    store = h.engine.store
    assert isinstance(store, SQLiteStore)
    with store.reader() as reader:
        before = reader.counts()
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is (nearly) full
    with pytest.raises(StoreError, match=r"full.*nothing was written"):
        h.engine.apply(many_tickets(100, 400))
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with store.reader() as reader:
        assert reader.counts() == before  # the batch is all or nothing
    store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    stats = h.engine.apply(many_tickets(100, 400))
    assert stats.applied == 400
    with store.reader() as reader:
        assert reader.counts()["events"] == before["events"] + 400


def post(client: TestClient, body: bytes) -> int:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.post(
        "/webhooks/zendesk",
        content=body,
        headers={
            "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json",
        },
    )
    if r.status_code == 503:
        assert r.headers["Retry-After"] == "30"
        assert r.json()["error"] == "store_unavailable"
        assert "readonly" in r.json()["detail"]
    return r.status_code


def test_read_only_sqlite_refuses_webhooks_with_503_and_keeps_nothing(tmp_path: Path) -> None:
    settings = settings_from_toml(f'[zendesk]\nwebhook_secret = "{SECRET}"\n' + CONFIG, environ={})
    store = SQLiteStore(f"sqlite:///{tmp_path}/t.db")
    engine = Engine(rules_from_settings(settings), store)
    stamp = "2026-01-01T00:00:00Z"
    body = json.dumps(
        {
            "ticket": {
                "id": 5,
                "status": "Open",
                "priority": "High",
                "tags": "refund",
                "subject": "Refund",
                "via": "Mail",
                "created_at": stamp,
                "updated_at": stamp,
                "requester": {"id": 9, "email": "bo@example.com"},
            }
        }
    ).encode()
    with TestClient(create_app(settings, engine, tick_seconds=0)) as client:
        store.conn.execute("PRAGMA query_only = ON")  # as if the file became read-only
        assert post(client, body) == 503  # not acknowledged: Zendesk sends it again
        with store.reader() as reader:
            assert reader.counts()["events"] == 0
        store.conn.execute("PRAGMA query_only = OFF")
        assert post(client, body) == 200  # the retry is applied
        with store.reader() as reader:
            assert reader.counts()["events"] >= 1
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.postgresql
def test_read_only_postgresql_gives_a_clear_error_and_still_reads(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tactful.toml"
    config.write_text(f'[store]\nurl = "{pg_url}"\n' + CONFIG)
    export = tmp_path / "users.json"
    export.write_text(
        json.dumps(
            {"users": [{"id": 1, "email": "ann@example.com", "updated_at": "2026-01-01T00:00:00Z"}]}
        )
    )
    assert main(["--config", str(config), "import", str(export)]) == 0
    store = open_store(pg_url)
    with store.reader() as reader:
        before = reader.counts()
    store.close()
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # like a standby: read-only
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    capsys.readouterr()
    export.write_text(
        json.dumps(
            {"users": [{"id": 2, "email": "bo@example.com", "updated_at": "2026-01-01T00:00:00Z"}]}
        )
    )
    assert main(["--config", str(config), "import", str(export)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "read-only" in err and "nothing was written" in err
    assert main(["--config", str(config), "person", "ann@example.com"]) == 0  # reads work
    store = open_store(pg_url)
    with store.reader() as reader:
        assert reader.counts() == before
    store.close()


def test_sqlite_bulk_commits_leave_checkpoints_to_a_thread(tmp_path: Path) -> None:
    """Import-style (non-durable) commits do not copy the WAL into the database themselves
    (SQLite's autocheckpoint is off for them); a background thread does, once the WAL has
    passed 4 MiB, while the writer goes on. Durable commits checkpoint as before."""
    db = tmp_path / "t.db"
    store = SQLiteStore(f"sqlite:///{db}")
    try:
        for i in range(6):  # 6 MiB through the WAL
            with store.transaction(durable=False) as tx:
                tx.set_meta(f"blob{i}", str(i) * (1024 * 1024))
        autocheckpoint = store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert autocheckpoint == 0
        deadline = time.monotonic() + 20
        while db.stat().st_size < 6 * 1024 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size >= 6 * 1024 * 1024  # the frames reached the database file
        assert store._checkpointer is not None and store._checkpointer.error is None
        with store.transaction() as tx:
            tx.set_meta("after", "durable")
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        store.close()
    assert store._checkpointer._thread is None  # close() stopped the thread
    reopened = SQLiteStore(f"sqlite:///{db}")
    try:
        assert reopened.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = reopened.conn.execute("SELECT key, length(value) FROM meta WHERE key LIKE 'blob%'")
        assert sorted(rows.fetchall()) == [(f"blob{i}", 1024 * 1024) for i in range(6)]
    finally:
        reopened.close()


def test_sqlite_page_cache_is_large_only_for_bulk_transactions(tmp_path: Path) -> None:
    """Webhooks, ticks and reads run with an 8 MiB page cache (it only held pages nobody read
    again); import batches (``apply_many(durable=False)``) with 64 MiB, which they re-read."""
    h = harness(CONFIG, f"sqlite:///{tmp_path}/t.db")
    store = h.engine.store
    assert isinstance(store, SQLiteStore)

    def cache_kib() -> int:
        return -int(store.conn.execute("PRAGMA cache_size").fetchone()[0])

    seen: list[int] = []
    real = store._transaction

    def spy():  # type: ignore[no-untyped-def]
        seen.append(cache_kib())
        return real()

    store._transaction = spy  # type: ignore[method-assign]
    assert cache_kib() == 8 * 1024
    h.engine.apply([user(1, emails=("ann@example.com",)), ticket(1, T0, "open")])
    h.engine.apply_many(
        [Incoming([ticket(2, at(1), "open", requester_id=1)], None, "import:x")], durable=False
    )
    h.engine.tick(at(48))
    assert seen == [8 * 1024, 64 * 1024, 8 * 1024]
    assert cache_kib() == 8 * 1024

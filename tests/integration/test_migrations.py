"""Schema migrations on existing data, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.migrations import LATEST_VERSION
from tactful.store.sqlite import open_store
from tactful.testing import at, consent, new_store_url, ticket, user

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[segments]]
name = "held"
when = "has_open_ticket"
holdout = 0.5
"""


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _migrated_again(engine: Engine, url: str, undo: Callable[[Any], None]) -> Engine:
    """Undo migrations with ``undo(conn)`` in one transaction, close the store, and open it
    again: the opening migrates it back to the latest version."""
    with engine.store.transaction() as tx:
        undo(tx.conn)  # type: ignore[attr-defined]
    engine.store.close()
    engine = Engine(engine.rules, open_store(url))
    assert _rows(engine, "SELECT MAX(version) FROM schema_migrations") == [(LATEST_VERSION,)]
    return engine


def _back_to_13(conn: Any) -> None:
    """Undo migration 14: no replay snapshot tables, no erased keys."""
    for table in ("replay_before_persons", "replay_before_memberships", "erased_keys"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DELETE FROM schema_migrations WHERE version = 14")


def _back_to_11(conn: Any) -> None:
    """Undo migrations 14, 13 and 12: no inbox table (PostgreSQL; SQLite keeps it in its own
    file), no user names."""
    _back_to_13(conn)
    conn.execute("DROP TABLE IF EXISTS inbox")
    conn.execute("DROP TABLE user_names")
    conn.execute("DELETE FROM schema_migrations WHERE version IN (12, 13)")


def _back_to_10(conn: Any) -> None:
    """Undo migrations 13, 12 and 11: no sync runs, attempts without a run."""
    _back_to_11(conn)
    conn.execute("DROP INDEX delivery_attempts_run")
    conn.execute("ALTER TABLE delivery_attempts DROP COLUMN run_id")
    conn.execute("DROP TABLE delivery_runs")
    conn.execute("DELETE FROM schema_migrations WHERE version = 11")


def _back_to_9(conn: Any) -> None:
    """Undo migrations 11 and 10: no event index, bare SHA-256 proofs."""
    _back_to_10(conn)
    conn.execute("DROP TABLE event_persons")
    conn.execute("DROP TABLE event_tickets")
    conn.execute("DROP TABLE IF EXISTS free_pages")
    conn.execute("UPDATE erasures SET identifiers_proof = substr(identifiers_proof, 13)")
    conn.execute("ALTER TABLE erasures RENAME COLUMN identifiers_proof TO identifiers_sha256")
    conn.execute("DELETE FROM schema_migrations WHERE version = 10")


def _back_to_8(conn: Any, dialect: str) -> None:
    """Undo migrations 10 and 9 (SQLite): the support_state index back, no counts kept."""
    _back_to_9(conn)
    if dialect == "sqlite":
        conn.execute("DROP TRIGGER persons_uncounted")
        conn.execute("DROP TABLE state_counts")
        conn.execute("CREATE INDEX persons_support_state ON persons (support_state)")
    conn.execute("DELETE FROM schema_migrations WHERE version = 9")


def _back_to_7(conn: Any, dialect: str) -> None:
    """Undo migrations 9 and 8: the timers in a table of their own, no column."""
    _back_to_8(conn, dialect)
    conn.execute("CREATE TABLE timers (person_id TEXT PRIMARY KEY, due_us BIGINT NOT NULL)")
    conn.execute("INSERT INTO timers SELECT person_id, wake_us FROM persons WHERE wake_us > 0")
    conn.execute("CREATE INDEX timers_due ON timers (due_us)")
    conn.execute("DROP INDEX persons_wake")
    conn.execute("ALTER TABLE persons DROP COLUMN wake_us")
    conn.execute("DELETE FROM schema_migrations WHERE version = 8")


def test_migration_7_keeps_memberships_and_fills_consents_from_facts(
    tmp_path: Path, store_kind: str
) -> None:
    url = new_store_url(tmp_path)
    rules = rules_from_settings(settings_from_toml(CONFIG, environ={}))
    engine = Engine(rules, open_store(url))
    events: list[Any] = []
    for i in range(1, 13):
        email = f"p{i}@example.com"
        events += [user(i, emails=(email,)), ticket(i, at(0), "open", requester_id=i)]
        if i % 3 == 0:
            events.append(consent(at(1), "ads", True, email=email))
            events.append(consent(at(2), "email", False, email=email))
        elif i % 3 == 1:
            events.append(consent(at(1), "ads", False, email=email))
    engine.apply(events)
    memberships = "SELECT * FROM memberships ORDER BY segment, person_id"
    before = _rows(engine, memberships)
    consents = _rows(engine, "SELECT * FROM consents ORDER BY person_id, purpose")
    assert len(consents) == 12  # 4 x (ads, email) + 4 x ads
    assert {(p, g) for _, p, g in consents} == {("ads", 1), ("ads", 0), ("email", 0)}

    # Back to version 6 as far as migration 7's backfill is concerned: no consents table.
    def undo(conn: Any) -> None:
        _back_to_7(conn, store_kind)
        conn.execute("DROP TABLE consents")
        conn.execute("DELETE FROM schema_migrations WHERE version = 7")

    engine = _migrated_again(engine, url, undo)
    assert _rows(engine, memberships) == before
    assert _rows(engine, "SELECT * FROM consents ORDER BY person_id, purpose") == consents
    # and the engine goes on writing both
    engine.apply([consent(at(3), "ads", True, email="p1@example.com")])
    with engine.store.reader() as reader:
        (p1,) = reader.find_persons("email", "p1@example.com")
        got = dict(reader.member_consents("suppress", "ads", None, 100))
    assert got[p1] is True
    engine.store.close()


def test_migration_8_moves_each_timer_into_its_person(tmp_path: Path, store_kind: str) -> None:
    url = new_store_url(tmp_path)
    config = CONFIG + '\n[[segments]]\nname = "recent"\nwhen = "last_ticket_at within 3d"\n'
    rules = rules_from_settings(settings_from_toml(config, environ={}))
    engine = Engine(rules, open_store(url))
    engine.apply(
        [e for i in range(1, 9) for e in (user(i), ticket(i, at(i), "open", requester_id=i))]
    )
    wakes = _rows(engine, "SELECT person_id, wake_us FROM persons ORDER BY 1")
    assert len(wakes) == 8 and all(w is not None for _, w in wakes)
    # Back to version 7: the timers in a table of their own, no column.
    engine = _migrated_again(engine, url, lambda conn: _back_to_7(conn, store_kind))
    assert _rows(engine, "SELECT person_id, wake_us FROM persons ORDER BY 1") == wakes
    # and the timers fire from the column: everyone leaves "recent" 3 days after the ticket
    stats = engine.tick(at(days=20))
    assert stats.timers_fired == 8 and stats.exited == 8
    assert _rows(engine, "SELECT COUNT(*) FROM persons WHERE wake_us IS NOT NULL") == [(0,)]
    engine.store.close()


def test_migration_9_counts_the_persons_already_stored(tmp_path: Path, store_kind: str) -> None:
    url = new_store_url(tmp_path)
    rules = rules_from_settings(settings_from_toml(CONFIG, environ={}))
    engine = Engine(rules, open_store(url))
    engine.apply([user(i) for i in range(1, 6)])
    engine = _migrated_again(engine, url, lambda conn: _back_to_8(conn, store_kind))
    with engine.store.reader() as reader:
        assert reader.state_counts() == {"clear": 5}
    # and the counts follow the persons from then on
    engine.apply([user(6), ticket(1, at(0), "open", requester_id=6)])
    with engine.store.reader() as reader:
        assert reader.state_counts() == {"clear": 6}
    engine.store.close()


def test_migration_10_indexes_the_stored_events_by_person_and_ticket(
    tmp_path: Path, store_kind: str
) -> None:
    """The upgrade indexes the events already stored by their exact keys: the same index the
    batches write as they resolve events (for identifiers stored in normalized form)."""
    from tactful.core.events import Identifier, PersonErased

    url = new_store_url(tmp_path)
    rules = rules_from_settings(settings_from_toml(CONFIG, environ={}))
    engine = Engine(rules, open_store(url))
    events: list[Any] = []
    for i in range(1, 7):
        email = f"p{i}@example.com"
        events += [user(i, emails=(email,)), ticket(i, at(0), "open", requester_id=i)]
        events.append(consent(at(1), "ads", True, email=email))
    engine.apply(events)
    engine.apply([PersonErased("erase-6", at(2), Identifier("email", "p6@example.com"))])
    by_person = "SELECT person_id, event_key FROM event_persons ORDER BY 1, 2"
    by_ticket = "SELECT ticket_id, event_key FROM event_tickets ORDER BY 1, 2"
    persons, tickets = _rows(engine, by_person), _rows(engine, by_ticket)
    assert len(persons) == 15 and len(tickets) == 5  # 5 persons x 3 events, 5 tickets
    proof = _rows(engine, "SELECT identifiers_proof FROM erasures")
    engine = _migrated_again(engine, url, _back_to_9)
    assert _rows(engine, by_person) == persons
    assert _rows(engine, by_ticket) == tickets
    # the proof kept from before is marked as the bare digest it was
    assert _rows(engine, "SELECT identifiers_proof FROM erasures") == [
        ("sha256:" + proof[0][0][len("hmac-sha256:") :],)
    ]
    engine.store.close()


HOOK = """
[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
"""


def test_migration_11_adds_sync_runs_and_keeps_the_attempts(
    tmp_path: Path, store_kind: str
) -> None:
    """The upgrade keeps every attempt made before it (without a run) and records runs."""
    from tactful.delivery.worker import DeliveryWorker
    from tactful.testing import RecordingDestination

    url = new_store_url(tmp_path)
    settings = settings_from_toml(
        CONFIG + HOOK,
        environ={},
    )
    engine = Engine(rules_from_settings(settings), open_store(url))
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    hook = RecordingDestination("hook")
    DeliveryWorker(settings, engine.store, destinations={"hook": hook}).sync()
    attempts = _rows(engine, "SELECT delivery_id, outcome FROM delivery_attempts ORDER BY id")
    assert attempts and _rows(engine, "SELECT COUNT(*) FROM delivery_runs") == [(1,)]
    engine = _migrated_again(engine, url, _back_to_10)
    assert _rows(engine, "SELECT delivery_id, outcome FROM delivery_attempts ORDER BY id") == (
        attempts
    )
    assert _rows(engine, "SELECT COUNT(*) FROM delivery_attempts WHERE run_id IS NULL") == [
        (len(attempts),)
    ]
    engine.apply([ticket(1, at(5), "solved")])
    DeliveryWorker(settings, engine.store, destinations={"hook": hook}).sync()
    assert _rows(engine, "SELECT COUNT(*) FROM delivery_runs") == [(1,)]
    engine.store.close()

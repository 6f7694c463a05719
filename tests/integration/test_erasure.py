"""Erasure is exact (found by keys, never by text) and complete (no identifier survives), on
both stores; the store's own bytes are searched on SQLite."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from tactful.core.events import HealthSet, Identifier, PersonErased
from tactful.engine.engine import Engine
from tactful.testing import at, harness, ticket, user
from tactful.zendesk.parse import parse_object
from tests.integration.test_delivery import setup

pytestmark = pytest.mark.store

TRICKY = [
    # (the person erased, the person who must stay): identifiers that are LIKE wildcards,
    # escapes and quotes, or that LIKE with them would match another's
    ("email", "john_doe@example.com", "john.doe@example.com"),
    ("external_id", "%", "ext-1"),
    ("external_id", "a\\b", "a\\\\b"),
    ("external_id", 'o\'neil "x"', "o'neil"),
    ("external_id", "_", "x"),
]


def _conn(engine: Engine) -> Any:
    with engine.store.reader() as reader:
        return reader.conn  # type: ignore[attr-defined]


def _events_of(engine: Engine, key_part: str) -> int:
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        keys = [str(k) for (k,) in conn.execute("SELECT key FROM events").fetchall()]
    return sum(1 for k in keys if key_part in k)


@pytest.mark.parametrize(("kind", "erased", "kept"), TRICKY)
def test_erasure_takes_exactly_the_persons_events(kind: str, erased: str, kept: str) -> None:
    h = harness("")
    engine = h.engine
    if kind == "email":
        gone, stay = user(1, emails=(erased,)), user(2, emails=(kept,))
    else:
        gone, stay = user(1, external_ids=(erased,)), user(2, external_ids=(kept,))
    others = [user(3, emails=("ann@example.com",)), ticket(3, at(1), requester_id=3)]
    engine.apply([gone, stay, ticket(1, at(1), requester_id=1), ticket(2, at(1), requester_id=2)])
    engine.apply(others)
    before = _events_of(engine, "")
    assert before == 6
    engine.apply([PersonErased("erase-1", at(2), Identifier(kind, erased))])  # type: ignore[arg-type]
    with engine.store.reader() as reader:
        assert reader.find_persons(kind, erased) == []
        assert len(reader.find_persons(kind, kept)) == 1
        conn: Any = reader.conn  # type: ignore[attr-defined]
        keys = sorted(str(k) for (k,) in conn.execute("SELECT key FROM events").fetchall())
        (deleted,) = conn.execute("SELECT events_deleted FROM erasures").fetchone()
    # the erased person's user, ticket and the erase request went; the other 4 stayed
    assert deleted == 3
    assert len(keys) == 4 and not any(k.startswith("zendesk:user:1:") for k in keys)
    assert any(k.startswith("zendesk:user:2:") for k in keys)
    assert any(k.startswith("zendesk:ticket:2:") for k in keys)


def test_erasure_takes_the_events_of_the_persons_tickets_and_of_merged_persons() -> None:
    h = harness("")
    engine = h.engine
    from tactful.testing import status_change, user_merge

    engine.apply([user(1, emails=("a@example.com",)), ticket(1, at(1), requester_id=1)])
    engine.apply([status_change(1, at(2), "solved")])  # names only the ticket
    engine.apply([user(2, emails=("b@example.com",)), ticket(2, at(1), requester_id=2)])
    engine.apply([user_merge(2, 1, at(3))])  # user 2 into user 1: one person
    engine.apply([user(4, emails=("c@example.com",)), ticket(4, at(1), requester_id=4)])
    engine.apply([PersonErased("erase-1", at(4), Identifier("email", "b@example.com"))])
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        keys = sorted(str(k) for (k,) in conn.execute("SELECT key FROM events").fetchall())
        assert len(keys) == 2 and all(":4:" in k for k in keys), keys
        assert conn.execute("SELECT COUNT(*) FROM event_persons").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM event_tickets").fetchone()[0] == 1


def _raw_forms() -> list[bytes]:
    """Every form of Ann's identifiers the edges accept, as searched for (lower case)."""
    return [
        b"ann.doe@example.com",
        b"+14155550100",
        b"14155550100",
        b"(415) 555-0100",
        b"415-555-0100",
        b"4155550100",
        b"ext-ann-77",
    ]


USERS_PAGE = {
    "users": [
        {
            "id": 101,
            "name": "Ann Doe",
            "email": "Ann.Doe@Example.COM",
            "phone": "+1 (415) 555-0100",
            "external_id": "ext-ann-77",
            "updated_at": "2026-11-20T10:00:00Z",
        },
        {
            "id": 102,
            "name": "Bob Roe",
            "email": "bob@example.com",
            "updated_at": "2026-11-20T10:00:00Z",
        },
    ],
    "end_of_stream": True,
}
TICKETS_PAGE = {
    "tickets": [
        {
            "id": 501,
            "requester_id": 101,
            "status": "open",
            "subject": "Call me at 415-555-0100 or ANN.DOE@example.com",
            "created_at": "2026-11-20T11:00:00Z",
            "updated_at": "2026-11-20T11:00:00Z",
        },
        {
            "id": 502,
            "requester_id": 102,
            "status": "open",
            "subject": "Where is my parcel?",
            "created_at": "2026-11-20T11:00:00Z",
            "updated_at": "2026-11-20T11:00:00Z",
        },
    ],
    "end_of_stream": True,
}


def _store_bytes(engine: Engine, path: Path) -> bytes:
    """The database file and its WAL, plus every stored document decompressed."""
    raw = path.read_bytes()
    wal = Path(f"{path}-wal")
    if wal.exists():
        raw += wal.read_bytes()
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        for encoding, body in conn.execute("SELECT encoding, body FROM documents"):
            raw += zlib.decompress(body) if encoding == "zlib" else bytes(body)
    return raw.lower()


def _found(raw: bytes) -> list[bytes]:
    return [form for form in _raw_forms() if form in raw]


def test_no_raw_form_of_an_erased_identifier_survives_in_the_store_bytes(
    tmp_path: Path, store_kind: str
) -> None:
    if store_kind != "sqlite":
        pytest.skip("the bytes of a PostgreSQL cluster are the server's (docs/privacy.md)")
    engine, worker, dests, _ = setup(tmp_path)
    path = tmp_path / "t.db"
    for page in (USERS_PAGE, TICKETS_PAGE):
        body = orjson.dumps(page)
        engine.apply(parse_object(page).events, document=body, source="import:page")
    worker.sync()
    request = {
        "events": [
            {"type": "erase", "person": {"email": "ANN.DOE@EXAMPLE.COM"}},
            {"type": "health", "person": {"email": "bob@example.com"}, "health": "happy"},
        ]
    }
    erase = PersonErased("api:erase:1", at(5), Identifier("email", "ANN.DOE@EXAMPLE.COM"))
    health = HealthSet("api:health:1", at(5), Identifier("email", "bob@example.com"), "happy")
    # the test can fail: before the erasure, every form is in the store's bytes
    assert _found(_store_bytes(engine, path)) == _raw_forms()
    engine.apply([erase, health], document=orjson.dumps(request), source="api:events")
    worker.sync()  # the erasure goes out (then Bob's row); its identifiers are then dropped
    assert [d.kind for d in dests["cio"].delivered[-2:]] == ["erase", "profile"]
    raw = _store_bytes(engine, path)
    assert _found(raw) == []
    assert re.search(rb"ann\W?doe", raw) is None  # the users page lost Ann's whole record
    # Bob's data stayed (in the shared pages too)
    assert raw.count(b"bob@example.com") >= 2 and b"where is my parcel?" in raw
    with engine.store.reader() as reader:
        assert reader.find_persons("email", "bob@example.com") != []


def test_replay_rebuilds_the_event_index() -> None:
    h = harness("")
    engine = h.engine
    from tactful.testing import status_change, user_merge

    engine.apply([user(1, emails=("a@example.com",)), ticket(1, at(1), requester_id=1)])
    engine.apply([user(2, external_ids=("%",)), status_change(1, at(2), "solved")])
    engine.apply([user_merge(2, 1, at(3))])
    sql = (
        "SELECT 'p', person_id, event_key FROM event_persons UNION ALL "
        "SELECT 't', CAST(ticket_id AS TEXT), event_key FROM event_tickets ORDER BY 1, 2, 3"
    )
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        before = [tuple(r) for r in conn.execute(sql).fetchall()]
    assert len(before) == 6  # 4 events of one person (merged), 2 of ticket 1
    engine.replay()
    with engine.store.reader() as reader:
        conn = reader.conn  # type: ignore[attr-defined]
        assert [tuple(r) for r in conn.execute(sql).fetchall()] == before


def test_an_erasure_zeroes_the_pages_freed_before_it(tmp_path: Path, store_kind: str) -> None:
    """Under ``secure_delete = FAST`` a large value's overflow pages go to the free list as
    they were; the next erasure overwrites every free page."""
    from tactful.store.sqlite import SQLiteStore

    if store_kind != "sqlite":
        pytest.skip("SQLite's free pages")

    path = tmp_path / "s.db"
    store = SQLiteStore(f"sqlite:///{path}")
    marker = b"ann.doe@example.com"
    with store.transaction() as tx:
        tx.set_meta("scratch", (marker.decode() + " ") * 2000)  # ~40 kB: overflow pages
    with store.transaction() as tx:
        tx.conn.execute("DELETE FROM meta WHERE key = 'scratch'")  # type: ignore[attr-defined]
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert store.conn.execute("PRAGMA freelist_count").fetchone()[0] >= 8
    assert marker in path.read_bytes()  # the free pages still hold it
    with store.transaction() as tx:
        tx.erase_person("p_nobody", 0, "test")
    assert store.conn.execute("PRAGMA freelist_count").fetchone()[0] >= 8  # free again
    raw = path.read_bytes() + (tmp_path / "s.db-wal").read_bytes()
    assert marker not in raw
    store.close()


def test_the_proof_is_keyed_by_the_stores_own_secret() -> None:
    from tactful.store.erasure import SECRET_KEY, identifiers_proof

    proofs = []
    for _ in range(2):
        engine = harness("").engine
        engine.apply([user(1, emails=("ann@example.com",))])
        engine.apply([PersonErased("erase-1", at(2), Identifier("email", "ann@example.com"))])
        with engine.store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            (proof,) = conn.execute("SELECT identifiers_proof FROM erasures").fetchone()
            secret = reader.get_meta(SECRET_KEY)
        assert secret is not None and len(secret) == 64
        idents = [("email", "ann@example.com"), ("zendesk_user_id", "1")]
        assert proof == identifiers_proof(secret, idents)
        proofs.append(proof)
    assert proofs[0] != proofs[1]  # two stores, two secrets: the same person, other proofs


def test_sidebar_actions_and_delivery_errors_about_the_person_go() -> None:
    engine = harness("").engine
    engine.apply([user(1, emails=("ann@example.com",)), user(2, emails=("bob@example.com",))])
    with engine.store.reader() as reader:
        (ann,) = reader.find_persons("email", "ann@example.com")
        (bob,) = reader.find_persons("email", "bob@example.com")
    p = engine.store.dialect.p
    with engine.store.transaction() as tx:
        conn: Any = tx.conn  # type: ignore[attr-defined]
        for n, (pid, email) in enumerate(
            [(ann, "ann@example.com"), (None, "Ann@Example.com"), (bob, "bob@example.com")]
        ):
            conn.execute(
                "INSERT INTO agent_actions (idempotency_key, at_us, agent, account, person_id, "
                "email, action, params, status, result, updated_us) "
                f"VALUES ({p}, 0, 'agent', 'acct', {p}, {p}, 'suppress', '{{}}', 'done', '', 0)",
                (f"k{n}", pid, email),
            )
        for n, pid in enumerate((ann, bob)):
            conn.execute(
                "INSERT INTO deliveries (destination, person_id, kind, name, key, at_us, "
                "payload, status, next_us, created_us, updated_us, last_error) VALUES "
                f"('cio', {p}, 'profile', '', {p}, 0, {p}, 'done', 0, 0, 0, 'bad email x@y')",
                (pid, f"d{n}", b'{"email": "x"}'),
            )
            conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, at_us, outcome, status, error) "
                f"SELECT id, 0, 'reject', 400, 'bad email x@y' FROM deliveries WHERE key = {p}",
                (f"d{n}",),
            )
    engine.apply([PersonErased("erase-1", at(2), Identifier("email", "ann@example.com"))])
    with engine.store.reader() as reader:
        conn = reader.conn  # type: ignore[attr-defined]
        actions = conn.execute("SELECT email FROM agent_actions").fetchall()
        deliveries = conn.execute(
            "SELECT person_id, payload, last_error FROM deliveries ORDER BY key"
        ).fetchall()
        errors = conn.execute("SELECT error FROM delivery_attempts ORDER BY id").fetchall()
    assert [a[0] for a in actions] == ["bob@example.com"]
    assert [(p, bytes(b), e) for p, b, e in deliveries] == [
        (ann, b"{}", ""),
        (bob, b'{"email": "x"}', "bad email x@y"),
    ]
    assert [e[0] for e in errors] == ["", "bad email x@y"]

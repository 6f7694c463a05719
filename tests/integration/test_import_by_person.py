"""Folding person by person (``tactful.engine.grouped``) gives exactly what folding in time order
gives: every person, ticket, history row, state change and outbox row, on an export full of
what couples persons (emails shared by Zendesk users, user merges, tickets that change
requester, status changes and ratings of tickets, timers), onto an empty store and onto one
that already holds persons (whose stored identifiers and tickets couple the export's
events too, and whose timers fall due during it)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from tactful.core.events import Event, time_order
from tactful.core.graph import IdentityPlan
from tactful.engine import grouped
from tactful.engine.batch import BatchStats
from tactful.engine.components import Pending, partition
from tactful.engine.engine import Engine, Incoming
from tactful.engine.grouped import fold_grouped
from tactful.engine.spill import Spill
from tactful.testing import (
    at,
    consent,
    harness,
    health,
    rating,
    status_change,
    ticket,
    user,
    user_merge,
)

from .test_import_order import CONFIG, QUERIES

SALT = "by-person-test"
STORED_UNTIL = at(days=6)
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")


def _export(seed: int, n: int, neighbourhoods: int = 1) -> list[Event]:
    """``n`` random events over 20 days, in time order. ``neighbourhoods``: that many sets
    of 12 users, 16 tickets and 14 emails, each event within one (one set couples nearly
    all its events: several sets give the fold several groups)."""
    rng = random.Random(seed)
    events: list[Event] = []
    users, tickets = 12, 16
    for i in range(n):
        when = at(hours=rng.uniform(0, 20 * 24))
        kind = rng.random()
        g = rng.randrange(neighbourhoods) if neighbourhoods > 1 else 0
        u = g * users + rng.randint(1, users)
        first_ticket, first_email = g * tickets, g * 14
        if kind < 0.2:
            # Emails 1-10 join users before the import only (during it, a consent by one of
            # them meets a user's ticket only through the stored person), 11-14 during it.
            pool = range(1, 11) if when < STORED_UNTIL else range(11, 15)
            n = rng.choice([0, 1, 2])
            emails = tuple(f"e{first_email + rng.choice(pool)}@x.example" for _ in range(n))
            events.append(user(u, when, emails=emails))
        elif kind < 0.23:  # by email only: coupled to a user through the store, or not at all
            email = f"e{first_email + rng.randint(1, 14)}@x.example"
            events.append(consent(when, "email", rng.random() < 0.5, email=email))
        elif kind < 0.26:
            events.append(health(when, rng.choice(["good", "at_risk"]), zendesk_user_id=u))
        elif kind < 0.3:
            other = g * users + rng.randint(1, users)
            if other != u:
                events.append(user_merge(u, other, when))
        elif kind < 0.6:
            tid = first_ticket + rng.randint(1, tickets)
            requester = u if rng.random() < 0.9 else None
            events.append(ticket(tid, when, rng.choice(STATUSES), requester_id=requester))
        elif kind < 0.8:
            tid = first_ticket + rng.randint(1, tickets)
            events.append(status_change(tid, when, rng.choice(STATUSES)))
        else:
            score: int | Literal["good", "bad"] = rng.choice([1, 2, 3, 4, 5, "good", "bad"])
            tid = first_ticket + rng.randint(1, tickets)
            events.append(rating(i, when, score, requester_id=u, ticket_id=tid))
    return sorted(events, key=time_order)


def _tables(engine: Engine) -> dict[str, Any]:
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        return {
            name: conn.execute(sql).fetchall()
            for name, sql in QUERIES.items()
            if name not in ("documents", "event_documents")
        }


def _in_time_order(engine: Engine, events: list[Event], batch: int) -> None:
    for i in range(0, len(events), batch):
        engine.apply_many([Incoming(events[i : i + batch], None, "test")], history=True)


def _by_person(engine: Engine, events: list[Event], batch: int) -> None:
    pending = [Pending(e, "test", None) for e in events]
    fold_grouped(engine, pending, batch_size=batch, history_before=engine._history_before())


@pytest.mark.parametrize("seed", range(8))
def test_by_person_equals_time_order(seed: int, tmp_path: Path) -> None:
    events = _export(seed, 400)
    cut = sum(e.at < STORED_UNTIL for e in events)  # in the store before the import
    engines = {}
    # The reference is one batch in time order (the engine sorts every event itself), as in
    # test_import_order.py.
    for name, fold, batch in [
        ("time", _in_time_order, 10**6),
        ("person", _by_person, 1),
        ("person-big", _by_person, 150),
    ]:
        engine = harness(CONFIG, f"sqlite:///{tmp_path}/{name}.db", salt=SALT).engine
        _in_time_order(engine, events[:cut], 50)
        fold(engine, events[cut:], batch)
        engine.tick(events[-1].at + timedelta(days=30))  # every timer after, too
        engines[name] = engine
    reference = _tables(engines["time"])
    assert reference["history"] and reference["outbox"]
    with engines["time"].store.reader() as reader:
        assert len(reader.find_persons("zendesk_user_id", "1")) == 1
    for name in ("person", "person-big"):
        tables = _tables(engines[name])
        for table, rows in reference.items():
            assert tables[table] == rows, f"seed {seed}, {name}: {table} differs"


def test_partition_joins_what_couples_events() -> None:
    plan = IdentityPlan("email", None)
    events: list[Event] = [
        user(1, at(0), emails=("a@x.example", "b@x.example")),  # 0
        user(2, at(0), emails=("a@x.example",)),  # 1: shares an email with user 1
        ticket(7, at(1), requester_id=3),  # 2
        status_change(7, at(2), "solved"),  # 3: the ticket of event 2
        user(4, at(3)),  # 4: linked to user 3 only through the store
        user_merge(5, 6, at(4)),  # 5
        user(6, at(5)),  # 6
        user(8, at(6)),  # 7: alone
        consent(at(7), "email", True, email="b@x.example"),  # 8: user 1's second email
    ]

    def stored(keys: Any, tickets: Any, person_ids: Any) -> Any:
        assert ("zendesk_user_id", "4") in keys and 7 in tickets and not person_ids
        return [(("i", "zendesk_user_id\0004"), "p_stored"), (("t", "7"), "p_stored")]

    parts = sorted(partition(plan, "salt", events, stored))
    assert parts == [[0, 1, 8], [2, 3, 4], [5, 6], [7]]


def _through_reader(engine: Engine) -> dict[str, Any]:
    with engine.store.reader() as reader:
        ids = reader.person_ids(None, 100_000)
        persons = reader.load_persons(ids)
        return {
            "persons": [(pid, persons[pid]) for pid in ids],
            "identifiers": reader.identifiers_of(ids),
            "tickets": reader.tickets_of(ids),
            "history": {pid: reader.history_of(pid) for pid in ids},
            "counts": reader.counts(),
        }


@pytest.mark.store
@pytest.mark.parametrize("seed", range(3))
def test_by_person_equals_time_order_on_either_store(seed: int) -> None:
    events = _export(seed, 300)
    cut = sum(e.at < STORED_UNTIL for e in events)
    seen = []
    for fold, batch in [(_in_time_order, 10**6), (_by_person, 20)]:
        engine = harness(CONFIG, salt=SALT).engine
        _in_time_order(engine, events[:cut], 50)
        fold(engine, events[cut:], batch)
        engine.tick(events[-1].at + timedelta(days=30))
        seen.append(_through_reader(engine))
        engine.store.close()
    assert seen[0]["history"] and seen[1] == seen[0]


def _spilled(engine: Engine, events: list[Event]) -> Spill:
    """``events`` in a spill file, as ``import --by-person`` reads an export."""
    spill = Spill(engine.plan)
    spill.documents[0] = ("test", None)
    for event in events:
        spill.add(event, 0)
    spill.flush()
    return spill


def _store_urls(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Fresh stores of ``kind``: SQLite files, or databases on the throwaway server."""
    if kind == "postgresql":
        cluster: Any = request.getfixturevalue("pg_cluster")
        while True:
            yield cluster.new_database()
    for n in itertools.count():
        yield f"sqlite:///{tmp_path}/workers-{n}.db"


def _with_workers(
    url: str, events: list[Event], workers: int, batch: int, spilled: bool = False
) -> Engine:
    """The export's first days imported in time order, the rest by person on ``workers``
    (``spilled``: from a spill file, as ``import --by-person`` reads an export)."""
    cut = sum(e.at < STORED_UNTIL for e in events)
    engine = harness(CONFIG, url, salt=SALT).engine
    _in_time_order(engine, events[:cut], 50)
    pending: list[Pending] | Spill = (
        _spilled(engine, events[cut:])
        if spilled
        else [Pending(e, "test", None) for e in events[cut:]]
    )
    history_before = engine._history_before()
    fold_grouped(engine, pending, batch_size=batch, history_before=history_before, workers=workers)
    if isinstance(pending, Spill):
        pending.close()
    engine.tick(events[-1].at + timedelta(days=30))
    return engine


def _compare(one: Engine, other: Engine, what: str) -> None:
    """Every person through the reader, and every row of every table, the outbox's too."""
    seen = [_through_reader(engine) for engine in (one, other)]
    for persons in seen:  # a person's tickets come in the rows' physical order (PostgreSQL)
        persons["tickets"] = {
            pid: sorted(tickets, key=lambda t: t.ticket_id)
            for pid, tickets in persons["tickets"].items()
        }
    assert seen[0]["history"]
    assert seen[1] == seen[0], what
    tables, other_tables = _tables(one), _tables(other)
    for table, rows in tables.items():  # rows the queries' order leaves tied, in any order
        assert sorted(map(_row, other_tables[table])) == sorted(map(_row, rows)), f"{what}: {table}"


@pytest.mark.slow  # forks worker processes
@pytest.mark.parametrize("spilled", [False, True], ids=["held", "spilled"])
@pytest.mark.parametrize(
    ("store", "seed"),
    [("sqlite", seed) for seed in range(6)]
    + [pytest.param("postgresql", seed, marks=pytest.mark.postgresql) for seed in range(2)],
)
def test_four_workers_equal_one(
    store: str,
    seed: int,
    spilled: bool,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite the workers fold on snapshots and this process writes their writes
    (``tactful.engine.split``); on PostgreSQL each worker writes its own. Several
    neighbourhoods of users give several groups, each with merges and shared emails."""
    events = _export(seed, 1200, neighbourhoods=6)
    urls = _store_urls(store, tmp_path, request)
    one = _with_workers(next(urls), events, 1, 100)
    if store == "sqlite":  # every batch is folded by a worker, none by the writer itself
        monkeypatch.setattr(grouped, "_fold_batch", _not_here)
    four = _with_workers(next(urls), events, 4, 100, spilled)  # the workers read the file
    _compare(one, four, f"{store}, seed {seed}")
    for engine in (one, four):
        engine.store.close()


def _not_here(*args: Any) -> BatchStats:
    raise AssertionError("the writer folded a batch itself")


def _row(row: Any) -> tuple[Any, ...]:
    return tuple(repr(_plain(value)) for value in row)


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value

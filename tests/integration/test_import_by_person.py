"""Folding person by person (``tactful.engine.grouped``) gives exactly what folding in time order
gives: every person, ticket, history row, state change and outbox row, on an export full of
what couples persons (emails shared by Zendesk users, user merges, tickets that change
requester, status changes and ratings of tickets, timers), onto an empty store and onto one
that already holds persons (whose stored identifiers and tickets couple the export's
events too, and whose timers fall due during it)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from tactful.core.events import Event, time_order
from tactful.core.graph import IdentityPlan
from tactful.engine.engine import Engine, Incoming
from tactful.engine.grouped import Pending, fold_grouped, partition
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


def _export(seed: int, n: int) -> list[Event]:
    """``n`` random events over 20 days, in time order."""
    rng = random.Random(seed)
    events: list[Event] = []
    users, tickets = 12, 16
    for i in range(n):
        when = at(hours=rng.uniform(0, 20 * 24))
        kind = rng.random()
        u = rng.randint(1, users)
        if kind < 0.2:
            # Emails 1-10 join users before the import only (during it, a consent by one of
            # them meets a user's ticket only through the stored person), 11-14 during it.
            pool = range(1, 11) if when < STORED_UNTIL else range(11, 15)
            n = rng.choice([0, 1, 2])
            emails = tuple(f"e{rng.choice(pool)}@x.example" for _ in range(n))
            events.append(user(u, when, emails=emails))
        elif kind < 0.23:  # by email only: coupled to a user through the store, or not at all
            email = f"e{rng.randint(1, 14)}@x.example"
            events.append(consent(when, "email", rng.random() < 0.5, email=email))
        elif kind < 0.26:
            events.append(health(when, rng.choice(["good", "at_risk"]), zendesk_user_id=u))
        elif kind < 0.3:
            other = rng.randint(1, users)
            if other != u:
                events.append(user_merge(u, other, when))
        elif kind < 0.6:
            tid = rng.randint(1, tickets)
            requester = u if rng.random() < 0.9 else None
            events.append(ticket(tid, when, rng.choice(STATUSES), requester_id=requester))
        elif kind < 0.8:
            events.append(status_change(rng.randint(1, tickets), when, rng.choice(STATUSES)))
        else:
            score: int | Literal["good", "bad"] = rng.choice([1, 2, 3, 4, 5, "good", "bad"])
            events.append(rating(i, when, score, requester_id=u, ticket_id=rng.randint(1, 16)))
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


@pytest.mark.postgresql
@pytest.mark.parametrize("spilled", [False, True], ids=["held", "spilled"])
@pytest.mark.parametrize("seed", range(2))
def test_four_workers_equal_one_on_postgresql(seed: int, spilled: bool, pg_cluster: Any) -> None:
    events = _export(seed, 400)
    cut = sum(e.at < STORED_UNTIL for e in events)
    seen = []
    for workers in (1, 4):
        engine = harness(CONFIG, pg_cluster.new_database(), salt=SALT).engine
        _in_time_order(engine, events[:cut], 50)
        pending: list[Pending] | Spill = (
            _spilled(engine, events[cut:])
            if spilled and workers > 1  # the workers read the file their parent wrote
            else [Pending(e, "test", None) for e in events[cut:]]
        )
        history_before = engine._history_before()
        fold_grouped(engine, pending, batch_size=5, history_before=history_before, workers=workers)
        if isinstance(pending, Spill):
            pending.close()
        engine.tick(events[-1].at + timedelta(days=30))
        seen.append((_through_reader(engine), _tables(engine)))
        engine.store.close()
    (one, one_tables), (four, four_tables) = seen
    assert one["history"] and four == one
    for table, rows in one_tables.items():  # every row, the outbox's too
        assert [tuple(map(_plain, r)) for r in four_tables[table]] == [
            tuple(map(_plain, r)) for r in rows
        ], table


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value

"""A merge in the middle of two persons' histories gives the same rows in every table however
the time-ordered events are cut into batches: one batch, a batch per event, or any size
between, and folded person by person. Events before the merge are folded against the two
persons as they were then, and timers due before it fire before it (issue 24)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tactful.core.events import Event, Identifier, PersonErased
from tactful.engine.engine import Engine
from tactful.testing import TIMED_RULES, at, harness, status_change, ticket, user, user_merge

from .test_import_by_person import (
    SALT,
    STORED_UNTIL,
    _by_person,
    _export,
    _in_time_order,
    _plain,
    _tables,
)

# Two users each with a ticket; user 1's is solved, then user 1 is merged into user 2 (a
# day later: the "recent" window of user 1's ticket ends before the merge), then user 2's
# ticket is solved and user 1's reopens.
EXPORT: list[Event] = [
    user(1, at(0)),
    ticket(1, at(1), "open", requester_id=1),
    user(2, at(2)),
    ticket(2, at(3), "open", requester_id=2),
    status_change(1, at(5), "solved"),
    user_merge(1, 2, at(24 * 4)),
    status_change(2, at(24 * 4 + 1), "solved"),
    status_change(1, at(24 * 4 + 2), "open"),
]


def _rows(engine: Engine) -> dict[str, Any]:
    rows = {
        table: [tuple(map(_plain, row)) for row in rows] for table, rows in _tables(engine).items()
    }
    with engine.store.reader() as reader:
        ids = reader.person_ids(None, 10_000)
        rows["identifiers"] = sorted(reader.identifiers_of(ids).items())
    return rows


def _imported(
    events: list[Event], batch: int, *, by_person: bool = False, stored: int = 0
) -> dict[str, Any]:
    """``stored``: how many of the events are in the store before the import (in time order)."""
    engine = harness(TIMED_RULES, salt=SALT).engine
    _in_time_order(engine, events[:stored], 1)
    (_by_person if by_person else _in_time_order)(engine, events[stored:], batch)
    engine.tick(events[-1].at + timedelta(days=30))
    rows = _rows(engine)
    engine.store.close()
    return rows


@pytest.mark.store
@pytest.mark.parametrize("stored", [0, 5], ids=["empty-store", "stored-persons"])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_a_merge_gives_the_same_rows_whatever_the_batches(batch: int, stored: int) -> None:
    """With ``stored-persons``, the persons and their timers are stored before the import,
    which holds the merge and what follows it: folded person by person, the timers due
    before the merge (user 1's ticket stops being recent) fire before it too."""
    reference = _imported(EXPORT, 10**6, stored=stored)
    assert reference["history"] and reference["state_changes"] and reference["outbox"]
    for by_person in (False, True):
        tables = _imported(EXPORT, batch, by_person=by_person, stored=stored)
        for table, rows in reference.items():
            assert tables[table] == rows, f"batch {batch}, by person {by_person}: {table} differs"


@pytest.mark.parametrize("seed", range(6))
def test_random_exports_give_the_same_rows_whatever_the_batches(seed: int) -> None:
    """Twelve users who merge, share emails and change tickets' requesters, onto a store
    that already holds some of them."""
    events = _export(seed, 300)
    cut = sum(e.at < STORED_UNTIL for e in events)
    seen = {}
    for name, fold, batch in [
        ("one", _in_time_order, 10**6),
        ("each", _in_time_order, 1),
        ("seven", _in_time_order, 7),
        ("by-person", _by_person, 3),
    ]:
        engine = harness(TIMED_RULES, salt=SALT).engine
        _in_time_order(engine, events[:cut], 50)
        fold(engine, events[cut:], batch)
        engine.tick(events[-1].at + timedelta(days=30))
        seen[name] = _rows(engine)
        engine.store.close()
    reference = seen.pop("one")
    assert reference["history"] and reference["outbox"]
    for name, tables in seen.items():
        for table, rows in reference.items():
            assert tables[table] == rows, f"seed {seed}, {name}: {table} differs"


def _erase(user: int, when: Any) -> PersonErased:
    return PersonErased(f"erase:{user}", when, Identifier("zendesk_user_id", str(user)), "test")


@pytest.mark.store
@pytest.mark.parametrize("merge", [True, False], ids=["merge-after", "no-merge"])
def test_what_follows_an_erasure_in_a_batch_makes_a_new_person(merge: bool) -> None:
    """An erasure ends its part of a batch too: a later event about the erased user makes a
    new person (with its identifiers), as in a batch of its own; a merge between the two
    does not bring the erased person back without them."""
    events: list[Event] = [
        user(1, at(0)),
        ticket(1, at(1), "open", requester_id=1),
        user(2, at(2)),
        user(3, at(3)),
        _erase(1, at(4)),
        *([user_merge(2, 3, at(5))] if merge else []),
        ticket(2, at(6), "open", requester_id=1),
    ]
    reference = _imported(events, 1)
    assert ("zendesk_user_id", "1") in {i for _, ids in reference["identifiers"] for i in ids}
    for batch, by_person in [(10**6, False), (3, False), (10**6, True), (1, True)]:
        tables = _imported(events, batch, by_person=by_person)
        for table, rows in reference.items():
            assert tables[table] == rows, f"batch {batch}, by person {by_person}: {table} differs"

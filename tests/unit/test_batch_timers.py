"""``Batch.fire_timers``: a due timer of a person no longer in the store is skipped.

The store claims due timers from the persons' rows; a claim that names a person whose row is
gone by the time the batch loads it (erased or merged away by another writer in between)
must not bring that person back as a blank row, nor fire for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import cast

from tactful.engine.batch import Batch
from tactful.store.base import Tx
from tactful.testing import TIMED_RULES, at, harness, ticket, user

GONE = "p_00000000000000000000"


class GhostTimers:
    """A transaction whose due timers also name a person it does not hold."""

    def __init__(self, tx: Tx, when: datetime) -> None:
        self._tx = tx
        self._when = when

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)

    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]:
        return sorted([*self._tx.due_timers(until), (self._when, GONE)])


@contextmanager
def ghost_batch(until: datetime) -> Iterator[tuple[Batch, Tx]]:
    h = harness(TIMED_RULES)
    engine = h.engine
    engine.apply([user(1, emails=("a@example.com",)), ticket(1, at(0), "open")])
    with engine.store.transaction() as tx:
        ghost = GhostTimers(tx, at(1))
        batch = Batch(cast(Tx, ghost), engine.rules, engine.plan, engine._salt(tx))
        yield batch, tx


def test_a_timer_of_a_person_gone_from_the_store_is_skipped() -> None:
    until = at(24 * 20)
    with ghost_batch(until) as (batch, tx):
        batch.load([], [], until)
        assert GONE not in batch.persons  # not materialized as a blank person
        batch.sweep([], [], None, until)
        batch.flush()
        assert GONE not in batch.touched and batch.stats.timers_fired > 0  # the live one fired
        assert GONE not in tx.load_persons([GONE])
        assert all(row.person_id != GONE for row in batch.outbox)

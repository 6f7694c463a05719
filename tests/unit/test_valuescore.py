"""Value score quartiles, hand-computed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tactful.core.events import Identifier, OutcomeRecorded
from tactful.readmodels.valuescore import high_value_people, score_of, value_score
from tactful.testing import T0, harness

pytestmark = pytest.mark.store


def test_quartiles_by_rank_with_ties_sharing_the_higher_score() -> None:
    revenues = sorted([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0])
    assert [score_of(r, revenues) for r in revenues] == [1, 1, 2, 2, 3, 3, 4, 4]
    tied = sorted([5.0, 5.0, 5.0, 100.0])
    assert score_of(5.0, tied) == 3  # 3 of 4 at or below: ceil(4*3/4)
    assert score_of(100.0, tied) == 4
    assert score_of(0.0, revenues) is None
    assert score_of(10.0, []) is None


def order(email: str, amount: float, days_ago: float, key: str) -> OutcomeRecorded:
    return OutcomeRecorded(
        key, T0 - timedelta(days=days_ago), Identifier("email", email), "order", amount, "USD"
    )


def test_trailing_365_days_from_orders() -> None:
    h = harness("")
    h.engine.apply(
        [
            order("a@example.com", 100, 10, "o1"),
            order("a@example.com", 50, 400, "o2"),  # outside the window
            order("b@example.com", 20, 30, "o3"),
            order("c@example.com", 300, 1, "o4"),
            order("d@example.com", 80, 200, "o5"),
        ]
    )
    with h.engine.store.reader() as reader:
        (a,) = reader.find_persons("email", "a@example.com")
        (c,) = reader.find_persons("email", "c@example.com")
        vs = value_score(reader, a, T0)
        assert (vs.revenue_365d, vs.customers_with_orders) == (100.0, 4)
        assert vs.score == 3  # 20, 80, 100, 300: a is 3rd of 4
        assert value_score(reader, c, T0).score == 4
        assert high_value_people(reader, T0) == {c}

"""Value score 1–4: the quartile of a person's trailing-365-day revenue among people with
orders in that window.

Revenue = the sum of ``amount`` of ``order`` outcomes (``POST /api/events`` or import) with
``at`` in (now − 365 days, now]. People without orders in the window have no score (None).
Quartiles are by rank: with people sorted by revenue, the lowest quarter scores 1 and the
highest quarter 4; ties share the higher score (a person's score is
``ceil(4 × (number of people with revenue ≤ theirs) / N)``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tactful.store.base import Reader
from tactful.store.records import to_us

WINDOW = timedelta(days=365)


def score_of(revenue: float, sorted_revenues: Sequence[float]) -> int | None:
    """Pure: the quartile score of ``revenue`` among ``sorted_revenues`` (ascending)."""
    n = len(sorted_revenues)
    if n == 0 or revenue <= 0:
        return None
    at_or_below = bisect.bisect_right(sorted_revenues, revenue)
    return max(1, min(4, math.ceil(4 * at_or_below / n)))


@dataclass(frozen=True)
class ValueScore:
    score: int | None
    revenue_365d: float
    customers_with_orders: int


def revenues(reader: Reader, now: datetime) -> dict[str, float]:
    """Trailing-window revenue per person (the store's ``outcomes``)."""
    return reader.read_models.revenues(to_us(now - WINDOW), to_us(now))


def value_score(reader: Reader, person_id: str, now: datetime) -> ValueScore:
    totals = revenues(reader, now)
    ordered = sorted(totals.values())
    mine = totals.get(person_id, 0.0)
    return ValueScore(score_of(mine, ordered), mine, len(ordered))


def high_value_people(reader: Reader, now: datetime, min_score: int = 4) -> set[str]:
    """Everyone whose score is at least ``min_score`` (for the Zendesk high-value tag)."""
    totals = revenues(reader, now)
    ordered = sorted(totals.values())
    return {pid for pid, r in totals.items() if (score_of(r, ordered) or 0) >= min_score}

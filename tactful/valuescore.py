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
from typing import Any

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


def revenues(conn: Any, now: datetime) -> dict[str, float]:
    """Trailing-window revenue per person (SQL over the ``outcomes`` table)."""
    start, end = to_us(now - WINDOW), to_us(now)
    rows = conn.execute(
        "SELECT person_id, SUM(amount) FROM outcomes WHERE outcome = 'order' "
        "AND amount IS NOT NULL AND at_us > ? AND at_us <= ? GROUP BY person_id",
        (start, end),
    ).fetchall()
    return {pid: float(total) for pid, total in rows if total and total > 0}


def value_score(conn: Any, person_id: str, now: datetime) -> ValueScore:
    totals = revenues(conn, now)
    ordered = sorted(totals.values())
    mine = totals.get(person_id, 0.0)
    return ValueScore(score_of(mine, ordered), mine, len(ordered))


def high_value_people(conn: Any, now: datetime, min_score: int = 4) -> set[str]:
    """Everyone whose score is at least ``min_score`` (for the Zendesk high-value tag)."""
    totals = revenues(conn, now)
    ordered = sorted(totals.values())
    return {pid for pid, r in totals.items() if (score_of(r, ordered) or 0) >= min_score}

"""Canonical events (``tactful.core.events``): the order they are applied in, the merge of
ordered streams, and the vocabularies the rest of the core relies on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from tactful.core.events import (
    CONSENT_PURPOSES,
    EVENT_KIND,
    EVENT_TYPES,
    KNOWN_STATUSES,
    OPEN_STATUSES,
    RESOLVED_STATUSES,
    Purpose,
    TicketStatusChanged,
    merge_by_time,
    time_order,
)

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


def change(key: str, minutes: int) -> TicketStatusChanged:
    return TicketStatusChanged(key, T0 + timedelta(minutes=minutes), 1, "open")


def test_events_apply_by_time_then_by_key() -> None:
    events = [change("b", 1), change("c", 0), change("a", 1), change("a", 0)]
    ordered = sorted(events, key=time_order)
    assert [(e.key, e.at.minute) for e in ordered] == [("a", 0), ("c", 0), ("a", 1), ("b", 1)]


MERGES = {
    "interleaved streams": (
        [[(T0, "a"), (T0 + timedelta(hours=2), "c")], [(T0 + timedelta(hours=1), "b")]],
        ["a", "b", "c"],
    ),
    "equal times order by key": ([[(T0, "b")], [(T0, "a")], [(T0, "c")]], ["a", "b", "c"]),
    "an empty stream": ([[], [(T0, "a")]], ["a"]),
    "no streams": ([], []),
}


@pytest.mark.parametrize(("streams", "keys"), MERGES.values(), ids=MERGES.keys())
def test_merge_by_time(streams: list[list[tuple[datetime, str]]], keys: list[str]) -> None:
    assert [key for _, key in merge_by_time(streams)] == keys


def test_merge_by_time_is_lazy() -> None:
    def endless() -> Iterator[tuple[datetime, str]]:
        n = 0
        while True:
            yield (T0 + timedelta(seconds=n), f"k{n:09d}")
            n += 1

    merged = merge_by_time([endless(), [(T0, "a")]])
    assert [next(merged)[1] for _ in range(3)] == ["a", "k000000000", "k000000001"]


def test_statuses_are_open_resolved_or_deleted() -> None:
    assert not OPEN_STATUSES & RESOLVED_STATUSES
    assert OPEN_STATUSES | RESOLVED_STATUSES | {"deleted"} == KNOWN_STATUSES


def test_every_kind_names_one_type() -> None:
    assert {EVENT_TYPES[kind]: kind for kind in EVENT_TYPES} == EVENT_KIND
    assert len(set(EVENT_TYPES.values())) == len(EVENT_TYPES)


def test_the_consent_purposes_are_the_purpose_type() -> None:
    """One list of purposes: the config's ``purpose`` keys, consent fields and the
    destinations' purposes all take ``Purpose``."""
    assert get_args(Purpose) == CONSENT_PURPOSES

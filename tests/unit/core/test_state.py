"""Properties of the state machine: any order and any duplication give the same state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.core.events import TicketStatusChanged, TicketVersion
from tactful.core.state import (
    PersonFacts,
    TicketRecord,
    apply_status_change,
    apply_version,
    derive_state,
)
from tactful.testing import T0, harness, rating, status_change, ticket
from tests.integration.test_engine_scenarios import CONFIG

pytestmark = pytest.mark.store

STATUSES = ["new", "open", "pending", "hold", "solved", "closed", "deleted"]

versions = st.builds(
    lambda tid, hour, status, prio, tags, req: ticket(
        tid,
        T0 + timedelta(hours=hour),
        status,
        priority=prio,
        tags=tags,
        requester_id=req,
        created_at=T0 + timedelta(hours=tid),
    ),
    st.integers(1, 4),
    st.integers(0, 48),
    st.sampled_from(STATUSES),
    st.sampled_from([None, "low", "normal", "high", "urgent"]),
    st.sampled_from([(), ("refund",), ("shipping",), ("closed_by_merge",), ("vip", "refund")]),
    st.integers(1, 2),
)
status_events = st.builds(
    lambda tid, hour, status: status_change(tid, T0 + timedelta(hours=hour), status),
    st.integers(1, 4),
    st.integers(0, 48),
    st.sampled_from(STATUSES[:-1]),
)
ratings = st.builds(
    lambda rid, hour, score, req: rating(rid, T0 + timedelta(hours=hour), score, requester_id=req),
    st.integers(1, 3),
    st.integers(0, 48),
    st.sampled_from(["good", "bad", 1, 3, 5]),
    st.integers(1, 2),
)
event_lists = st.lists(st.one_of(versions, status_events, ratings), min_size=1, max_size=14)


def fold(events: list[Any]) -> dict[int, TicketRecord]:
    records: dict[int, TicketRecord] = {}
    for e in events:
        if isinstance(e, TicketVersion):
            reason = "refund" if "refund" in e.tags else "other"
            records[e.ticket_id] = apply_version(
                records.get(e.ticket_id), e, reason, reason == "refund"
            )
        elif isinstance(e, TicketStatusChanged):
            records[e.ticket_id] = apply_status_change(records.get(e.ticket_id), e)
    return records


@given(event_lists, st.randoms(use_true_random=False))
def test_fold_is_order_and_duplication_independent(events: list[Any], rnd: Any) -> None:
    shuffled = events + rnd.sample(events, k=len(events) // 2)
    rnd.shuffle(shuffled)
    a = derive_state(fold(events).values(), PersonFacts())
    b = derive_state(fold(shuffled).values(), PersonFacts())
    assert a == b


@given(event_lists)
def test_has_open_ticket_iff_some_counted_ticket_open(events: list[Any]) -> None:
    records = fold(events).values()
    state = derive_state(records, PersonFacts())
    expected = any(r.counted and r.is_open for r in records)
    assert state["has_open_ticket"] == expected
    assert state["open_ticket_count"] == sum(1 for r in records if r.counted and r.is_open)
    assert state["ticket_count"] == sum(1 for r in records if r.counted)


def engine_states(batches: list[list[Any]]) -> dict[str, Any]:
    h = harness(CONFIG)
    for batch in batches:
        h.engine.apply(batch)
    h.engine.tick(T0 + timedelta(days=3))
    out = {}
    with h.engine.store.reader() as reader:
        for uid in ("1", "2"):
            ids = reader.find_persons("zendesk_user_id", uid)
            if ids:
                row = reader.load_persons(ids)[ids[0]]
                out[uid] = row.state
    return out


@settings(max_examples=40, deadline=None)
@given(event_lists, st.randoms(use_true_random=False), st.integers(1, 4))
def test_engine_state_is_independent_of_arrival_order_and_batching(
    events: list[Any], rnd: Any, parts: int
) -> None:
    reference = engine_states([events])
    shuffled = events + rnd.sample(events, k=len(events) // 2)
    rnd.shuffle(shuffled)
    size = max(1, len(shuffled) // parts)
    batches = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    assert engine_states(batches) == reference

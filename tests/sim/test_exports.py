"""Export endpoints: Zendesk's pagination shapes, ordering, resumption and field sets."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.testing.sim import ZendeskSimulator

from .conftest import Served, story

FIXTURES = Path(__file__).parents[1] / "fixtures" / "zendesk"
TICKETS = "/api/v2/incremental/tickets/cursor.json"
USERS = "/api/v2/incremental/users/cursor.json"
EVENTS = "/api/v2/incremental/ticket_events.json"
RATINGS = "/api/v2/satisfaction_ratings"


def many_tickets(sim: ZendeskSimulator, n: int) -> list[int]:
    user = sim.create_user("Ann Lee", "ann@example.com")
    ids = []
    for i in range(n):
        sim.advance(timedelta(seconds=7 if i % 3 else 0))  # some share a second
        ids.append(sim.create_ticket(user, f"Question {i}"))
    return ids


def follow(
    served: Served, first: str, key: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow ``after_url`` from ``first`` until ``end_of_stream``: (records, pages)."""
    records: list[dict[str, Any]] = []
    pages = []
    url = first
    for _ in range(50):
        page = served.client.get(url).json()
        pages.append(page)
        records.extend(page[key])
        if page["end_of_stream"]:
            return records, pages
        url = page["after_url"]
    raise AssertionError("no end_of_stream")


def test_ticket_cursor_export_pages_until_end_of_stream(served: Served) -> None:
    ids = many_tickets(served.sim, 7)
    records, pages = follow(served, f"{TICKETS}?start_time=0&per_page=3", "tickets")
    assert [t["id"] for t in records] == ids
    assert [len(p["tickets"]) for p in pages] == [3, 3, 1]
    assert [p["end_of_stream"] for p in pages] == [False, False, True]
    first = pages[0]
    assert first["before_cursor"] is None and first["before_url"] is None
    assert pages[1]["before_cursor"] is not None
    assert first["after_url"].startswith(served.base_url + TICKETS + "?cursor=")
    assert set(first) == {
        "tickets", "after_url", "before_url", "after_cursor", "before_cursor", "end_of_stream",
    }  # fmt: skip
    # The recorded page's cursor shape: base64 of "<epoch>.0||<id>|".
    import base64

    assert base64.b64decode(pages[-1]["after_cursor"]).decode().endswith(f"||{ids[-1]}|")


def test_cursor_resumes_with_later_changes_only(served: Served) -> None:
    sim = served.sim
    ids = many_tickets(sim, 3)
    page = served.client.get(f"{TICKETS}?start_time=0").json()
    assert page["end_of_stream"] is True and len(page["tickets"]) == 3
    empty = served.client.get(f"{TICKETS}?cursor={page['after_cursor']}").json()
    assert empty["tickets"] == [] and empty["end_of_stream"] is True
    assert empty["after_cursor"] == page["after_cursor"]
    sim.advance(timedelta(minutes=1))
    sim.solve(ids[0])
    sim.delete_ticket(ids[1])
    later = served.client.get(page["after_url"]).json()
    assert [(t["id"], t["status"]) for t in later["tickets"]] == [
        (ids[0], "solved"),
        (ids[1], "deleted"),
    ]
    excluded = served.client.get(f"{TICKETS}?start_time=0&exclude_deleted=true").json()
    assert ids[1] not in [t["id"] for t in excluded["tickets"]]


def test_start_time_is_inclusive_and_current_state_only(served: Served) -> None:
    sim = served.sim
    ids = many_tickets(sim, 2)
    stamp = int(sim.now().timestamp())
    sim.update_ticket(ids[0], status="open")
    sim.update_ticket(ids[0], status="pending")
    page = served.client.get(f"{TICKETS}?start_time={stamp}").json()
    # Same second: ordered by id; each ticket once, in its current state.
    assert [(t["id"], t["status"]) for t in page["tickets"]] == [
        (ids[0], "pending"),
        (ids[1], "new"),
    ]


def test_export_lag_hides_the_last_minute() -> None:
    sim = ZendeskSimulator(export_lag=timedelta(minutes=1))
    from tactful.testing.sim.exports import cursor_page

    many_tickets(sim, 1)
    assert cursor_page(sim, "tickets", {"start_time": "0"}, "")["tickets"] == []
    sim.advance(timedelta(seconds=61))
    assert len(cursor_page(sim, "tickets", {"start_time": "0"}, "")["tickets"]) == 1


def test_bad_export_parameters(served: Served) -> None:
    assert served.client.get(TICKETS).status_code == 400
    future = int(served.sim.now().timestamp()) + 3600
    assert served.client.get(f"{TICKETS}?start_time={future}").status_code == 400
    bad = served.client.get(f"{TICKETS}?cursor=not-a-cursor")
    assert bad.status_code == 400 and bad.json()["error"] == "InvalidPaginationParameter"
    capped = served.client.get(f"{TICKETS}?start_time=0&per_page=5000")
    assert capped.status_code == 200


def test_users_export_shape_and_deleted_users(served: Served) -> None:
    ids = story(served.sim)
    records, pages = follow(served, f"{USERS}?start_time=0&per_page=2", "users")
    by_id = {u["id"]: u for u in records}  # later pages carry later versions
    assert by_id[ids["gone"]]["active"] is False
    assert by_id[ids["gone"]]["email"] is None
    assert by_id[ids["gone"]]["permanently_deleted"] is False
    assert by_id[ids["dup"]]["active"] is False
    assert by_id[ids["bob"]]["user_fields"] == {"marketing_consent_email": True}
    assert len(pages) >= 2


def test_ticket_events_time_based_paging(served: Served) -> None:
    sim = served.sim
    many_tickets(sim, 5)
    seen: list[int] = []
    url = f"{EVENTS}?start_time=0&per_page=2"
    for _ in range(20):
        page = served.client.get(url).json()
        assert set(page) == {"ticket_events", "next_page", "count", "end_time", "end_of_stream"}
        assert page["count"] == len(page["ticket_events"])
        seen.extend(e["id"] for e in page["ticket_events"])
        if page["end_of_stream"]:
            break
        assert page["next_page"].endswith(f"start_time={page['end_time']}")
        url = page["next_page"]
    assert len(set(seen)) == 5  # every audit, possibly repeated (time-based paging)
    event = page["ticket_events"][-1]
    assert event["event_type"] == "Audit"
    statuses = [c for c in event["child_events"] if "status" in c]
    assert statuses and statuses[0]["status"] == "new" and statuses[0]["event_type"] == "Create"


def test_ticket_events_record_status_changes(served: Served) -> None:
    ids = story(served.sim)
    page = served.client.get(f"{EVENTS}?start_time=0").json()
    changes = [
        (e["ticket_id"], c["status"], c.get("previous_value"))
        for e in page["ticket_events"]
        for c in e["child_events"]
        if "status" in c and c["event_type"] == "Change"
    ]
    assert (ids["t1"], "solved", "pending") in changes
    assert (ids["t2"], "closed", "new") in changes
    merge = [e for e in page["ticket_events"] if e["ticket_id"] == ids["t2"]][-1]
    assert merge["via"] == "Merge"


def test_satisfaction_ratings_cursor_pagination(served: Served) -> None:
    sim = served.sim
    user = sim.create_user("Ann Lee", "ann@example.com")
    for i in range(5):
        t = sim.create_ticket(user, f"Question {i}")
        sim.solve(t)
        sim.advance(timedelta(minutes=1))
        sim.rate(t, "good" if i % 2 else "bad")
    url = f"{RATINGS}?page[size]=2"
    scores: list[str] = []
    for _ in range(10):
        page = served.client.get(url).json()
        assert set(page) == {"satisfaction_ratings", "meta", "links"}
        scores.extend(r["score"] for r in page["satisfaction_ratings"])
        if not page["meta"]["has_more"]:
            assert page["links"]["next"] is None
            break
        assert page["links"]["next"].startswith(served.base_url + RATINGS)
        url = page["links"]["next"]
    assert scores == ["bad", "good", "bad", "good", "bad"]
    received = served.client.get(f"{RATINGS}.json?score=received").json()
    assert len(received["satisfaction_ratings"]) == 5


@pytest.mark.parametrize(
    ("fixture", "key", "path"),
    [
        ("incremental-tickets-cursor-page.json", "tickets", TICKETS),
        ("incremental-users-cursor-page.json", "users", USERS),
    ],
)
def test_field_sets_match_recorded_zendesk(
    served: Served, fixture: str, key: str, path: str
) -> None:
    story(served.sim)
    recorded = json.loads((FIXTURES / fixture).read_text())
    page = served.client.get(f"{path}?start_time=0").json()
    assert set(page) == set(recorded)
    recorded_keys = {frozenset(r) for r in recorded[key]}
    for record in page[key]:
        assert frozenset(record) in recorded_keys, sorted(set(record) ^ set(recorded[key][0]))

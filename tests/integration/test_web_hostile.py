"""Issue 19, receiver and API: correctly signed but hostile bodies are refused (400) or
fetched (202), never a 500, and change nothing; ids are recovered exactly; amounts are finite;
metric labels are fixed codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tactful.web.metrics import REASONS, reason_code
from tactful.web.receiver import recover_ticket_id
from tests.integration.test_web import auth, client, signed

__all__ = ["client"]

TICKET = {
    "id": 42,
    "status": "Open",
    "priority": "-",
    "tags": "refund",
    "subject": "s",
    "via": "Mail",
    "created_at": "2026-01-01T10:00Z",
    "updated_at": "2026-01-01T10:00Z",
    "requester": {"id": 7, "email": "ann@example.com"},
}


def envelope(**detail: Any) -> dict[str, Any]:
    return {
        "type": "zen:event-type:ticket.status_changed",
        "id": "e1",
        "time": "2026-01-01T10:00:00Z",
        "detail": {
            "id": "42",
            "status": "OPEN",
            "requester_id": "7",
            "created_at": "2026-01-01T10:00:00Z",
            "updated_at": "2026-01-01T10:00:00Z",
            **detail,
        },
        "event": {"current": "OPEN", "previous": "NEW"},
    }


def post(client: TestClient, doc: Any) -> Any:
    body = json.dumps(doc).encode()
    return client.post("/webhooks/zendesk", content=body, headers=signed(body))


def stored(client: TestClient) -> tuple[int, int]:
    with client.app.state.ctx.engine.store.reader() as reader:  # type: ignore[attr-defined]
        conn = reader.conn
        docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return docs, events


@pytest.mark.parametrize(
    "doc",
    [
        {"ticket": {**TICKET, "id": 2**63}},
        {"ticket": {**TICKET, "id": 2**64}},
        {"ticket": {**TICKET, "id": 9e25}},
        {"ticket": {**TICKET, "id": -3}},
        envelope(id=str(2**64)),
        {
            "type": "zen:event-type:user.tags_changed",
            "id": "u1",
            "time": "2026-01-01T10:00:00Z",
            "detail": {"id": str(2**64), "email": "ann@example.com"},
            "event": {"current": ["vip"]},
        },
    ],
    ids=["id-2^63", "id-2^64", "id-9e25", "id-negative", "envelope-id-2^64", "user-id-2^64"],
)
def test_ids_out_of_range_are_400_and_store_nothing(client: TestClient, doc: Any) -> None:
    before = stored(client)
    r = post(client, doc)
    assert r.status_code == 400, r.text
    assert stored(client) == before
    assert client.app.state.ctx.pending_fetches == set()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "doc",
    [
        {"ticket": {**TICKET, "tags": 5}},
        {"ticket": {**TICKET, "custom_fields": 5}},
        {
            "ticket": {
                **TICKET,
                "updated_at": "9999-12-31T23:59Z",
                "created_at": "9999-12-31T23:59Z",
            }
        },
        {"ticket": {**TICKET, "updated_at": "December 31, 9999 23:59"}},
        {"ticket": {**TICKET, "updated_at": "0001-01-01T00:00Z"}},
        {**envelope(), "time": "9999-12-31T23:59:59Z"},
        {**envelope(), "time": "9999-12-31T23:59:59-05:00"},
    ],
    ids=["tags-5", "custom-5", "year-9999", "human-9999", "year-1", "env-9999", "env-9999-off"],
)
def test_unreadable_records_naming_a_ticket_are_fetched_not_applied(
    client: TestClient, doc: Any
) -> None:
    _, events_before = stored(client)
    r = post(client, doc)
    assert r.status_code == 202, r.text
    assert r.json()["ticket_id"] == 42
    assert client.app.state.ctx.pending_fetches == {42}  # type: ignore[attr-defined]
    assert stored(client)[1] == events_before  # no event applied


def test_unknown_event_types_stay_stored_and_acknowledged(client: TestClient) -> None:
    r = post(
        client,
        {"type": "zen:event-type:ann@example.com", "id": "x", "time": "2026-01-01T10:00:00Z"},
    )
    assert r.status_code == 200
    identity_removed = {
        "type": "zen:event-type:user.identity_deleted",
        "id": "y",
        "time": "2026-01-01T10:00:00Z",
        "detail": {"id": "7"},
        "event": {"identity": {"type": "email", "value": "old@example.com"}},
    }
    assert post(client, identity_removed).status_code == 200  # not used, not a failure


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": 1e999}', None),
        (b'{"id": 1.5, "x"', None),
        (b'{"id": 123abc', None),
        (b'{"ticket": {"id": 99999999999999999999}', None),
        (b'{"ticket": {"id": 9223372036854775808, ', None),
        (b'{"ticket": {"id": 0, ', None),
        (b'{"ticket": {"id": 42, "status": ', 42),
        (b'{"ticket": {"id": "42"}, "x": ', 42),
        (b'{"ticket_id": 9223372036854775807}', 2**63 - 1),
        (b'{"detail": {"id": "17"} ', 17),
    ],
)
def test_recover_ticket_id_is_exact(body: bytes, expected: int | None) -> None:
    assert recover_ticket_id(body) == expected


def test_float_exponent_id_is_not_queued_as_ticket_1(client: TestClient) -> None:
    body = b'{"id": 1e999'
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 400
    assert client.app.state.ctx.pending_fetches == set()  # type: ignore[attr-defined]


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_events_api_refuses_non_finite_amounts(client: TestClient, amount: str) -> None:
    body = (
        '{"events": [{"type": "outcome", "outcome": "order", "person": {"email": '
        f'"ann@example.com"}}, "at": "2026-01-01T00:00:00Z", "amount": {amount}}}]}}'
    )
    r = client.post("/api/events", content=body, headers=auth())
    assert r.status_code == 422, r.text
    assert "amount" in r.text


@pytest.mark.parametrize(
    "at", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"]
)
def test_events_api_refuses_times_out_of_range(client: TestClient, at: str) -> None:
    event = {"type": "health", "health": "unsatisfied", "person": {"email": "a@b.co"}, "at": at}
    r = client.post("/api/events", json={"events": [event]}, headers=auth())
    assert r.status_code == 422, r.text
    override = {"type": "override", "person": {"email": "a@b.co"}, "at": "2026-01-01T00:00:00Z"}
    r = client.post("/api/events", json={"events": [{**override, "until": at}]}, headers=auth())
    assert r.status_code == 422, r.text


def test_person_lookup_now_out_of_range_is_400(client: TestClient) -> None:
    r = client.get("/api/people/ann@example.com?now=9999-12-31T23:59:59-05:00", headers=auth())
    assert r.status_code == 400


def test_metric_labels_are_fixed_codes_never_request_text(client: TestClient) -> None:
    post(client, {"ticket": {**TICKET, "status": "ann@example.com"}})
    post(
        client,
        {"type": "zen:event-type:bob@example.com", "id": "x", "time": "2026-01-01T10:00:00Z"},
    )
    text = client.get("/metrics").text
    assert "example.com" not in text
    labels = [
        line.split('reason="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("tactful_events_rejected_total{")
    ]
    assert labels and set(labels) <= set(REASONS)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("bad_signature", "bad_signature"),
        ("unknown event type zen:event-type:x@y.z", "unknown_event_type"),
        ("unknown ticket status 'x@y.z'", "unknown_value"),
        ("ticket without requester", "missing_field"),
        ("updated_at out of range: 9999-12-31", "bad_time"),
        ("tags is not a list: int", "bad_value"),
        ("no person matches carol@example.com", "identity"),
        ("whatever <script>", "other"),
    ],
)
def test_reason_codes(reason: str, code: str) -> None:
    assert reason_code(reason) == code

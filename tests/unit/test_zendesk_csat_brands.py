"""Zendesk CSAT survey responses (the current CSAT) and brands → canonical events.

Shapes follow Zendesk's "CSAT Survey Responses" reference
(https://developer.zendesk.com/api-reference/ticketing/ticket-management/csat_survey_responses):
``GET /api/v2/guide/survey_responses`` → ``{"survey_responses": […]}``, ``GET …/{id}`` →
``{"survey_response": {…}}``; a response names its ticket in ``subject_zrns``
(``zen:ticket:99``) and its user in ``responder_id``; the rating is the ``rating_scale``
answer's ``rating``, on the survey's 2-, 3- or 5-point scale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tactful.core.events import RatingGiven, TicketVersion
from tactful.core.state import csat_score
from tactful.zendesk.parse import parse_object


def utc(y: int, mo: int, d: int, h: int = 0) -> datetime:
    return datetime(y, mo, d, h, tzinfo=UTC)


def rating_answer(rating: int, points: int = 5, at: str = "2026-03-02T10:00:00.000Z") -> Any:
    return {
        "type": "rating_scale",
        "rating": rating,
        "question": {
            "id": "01GFYBENPDGN1R6NAA4WRDNVFQ",
            "alias": "rating_scale",
            "type": "rating_scale",
            "headline": {"type": "static", "value": "How satisfied were you?"},
            "options": [
                {"id": f"opt{i}", "rating": i, "label": {"type": "static", "value": str(i)}}
                for i in range(1, points + 1)
            ],
        },
        "created_at": "2026-03-02T09:00:00.000Z",
        "updated_at": at,
    }


def survey_response(rid: str, *answers: Any, ticket: int = 99, responder: int = 7) -> Any:
    return {
        "id": rid,
        "answers": list(answers),
        "expires_at": "2026-03-30T00:00:00.000Z",
        "responder_id": responder,
        "subject_zrns": [f"zen:ticket:{ticket}"],
        "subjects": [{"id": str(ticket), "type": "ticket", "zrn": f"zen:ticket:{ticket}"}],
        "survey": {"id": "01J58KJ9RAE0D2EK7HRVM7Z8F2", "state": "enabled", "version": 3},
    }


COMMENT = {
    "type": "skipped",
    "question": {"alias": "comment", "id": "01GFYBENPDGN1R6NAA4WRDNVFR", "type": "open_ended"},
    "created_at": "2026-03-02T09:00:00.000Z",
    "updated_at": "2026-03-02T09:00:00.000Z",
}


def test_survey_responses_page_gives_ratings() -> None:
    page = {
        "survey_responses": [
            survey_response("01J1WB51MG6HXTYWE6Q0C93RNW", COMMENT, rating_answer(4)),
            survey_response("01J1WB51MG6HXTYWE6Q0C93RNX", COMMENT),  # rating skipped
        ],
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
    }
    parsed = parse_object(page)
    assert parsed.shape == "survey_responses_page"
    assert parsed.events == [
        RatingGiven(
            key="zendesk:survey_response:01J1WB51MG6HXTYWE6Q0C93RNW:2026-03-02T10:00:00Z",
            at=utc(2026, 3, 2, 10),
            rating_id="01J1WB51MG6HXTYWE6Q0C93RNW",
            ticket_id=99,
            requester_id=7,
            score=4,
        )
    ]
    assert [s.reason for s in parsed.skipped] == ["survey response without a rating"]


def test_single_survey_response_is_the_webhook_shape() -> None:
    parsed = parse_object({"survey_response": survey_response("01JX", rating_answer(2))})
    assert parsed.shape == "survey_response"
    (event,) = parsed.events
    assert isinstance(event, RatingGiven) and event.score == 2 and event.ticket_id == 99


@pytest.mark.parametrize(
    ("points", "rating", "expected"),
    [(5, 1, 1), (5, 3, 3), (5, 5, 5), (3, 1, 1), (3, 2, 3), (3, 3, 5), (2, 1, 2), (2, 2, 4)],
)
def test_smaller_scales_map_onto_csat_1_to_5(points: int, rating: int, expected: int) -> None:
    """A 2-point scale maps like a legacy good/bad rating (here ``[csat] good = 4, bad = 2``)."""
    doc = {"survey_response": survey_response("r", rating_answer(rating, points))}
    (event,) = parse_object(doc).events
    assert isinstance(event, RatingGiven) and event.scale == points
    assert csat_score(event, good=4, bad=2) == expected


def test_rating_outside_the_scale_is_skipped() -> None:
    parsed = parse_object({"survey_response": survey_response("r", rating_answer(4, 3))})
    assert parsed.events == []
    assert [s.reason for s in parsed.skipped] == ["survey rating 4 outside its 3-point scale"]


def test_ticket_brand_id_is_kept_from_api_envelope_and_trigger() -> None:
    api = {
        "id": 5,
        "status": "open",
        "requester_id": 7,
        "brand_id": 360001,
        "created_at": "2026-03-01T00:00:00Z",
        "updated_at": "2026-03-01T00:00:00Z",
    }
    (version,) = parse_object({"tickets": [api]}).events
    assert isinstance(version, TicketVersion) and version.brand_id == 360001
    envelope = {
        "type": "zen:event-type:ticket.brand_changed",
        "id": "e1",
        "time": "2026-03-01T01:00:00Z",
        "detail": {
            "id": "5",
            "status": "OPEN",
            "requester_id": "7",
            "brand_id": "360002",
            "created_at": "2026-03-01T00:00:00Z",
            "updated_at": "2026-03-01T01:00:00Z",
        },
        "event": {"current": "360002", "previous": "360001"},
    }
    (version,) = parse_object(envelope).events
    assert isinstance(version, TicketVersion) and version.brand_id == 360002
    trigger = {
        "ticket": {
            "id": "5",
            "status": "Open",
            "requester_id": "7",
            "brand_id": "360003",
            "tags": "",
            "via": "Web Form",
            "created_at": "2026-03-01T00:00Z",
            "updated_at": "2026-03-01T02:00Z",
        }
    }
    (version,) = parse_object(trigger).events
    assert isinstance(version, TicketVersion) and version.brand_id == 360003
    (version,) = parse_object({"tickets": [api | {"brand_id": None}]}).events
    assert isinstance(version, TicketVersion) and version.brand_id is None


def test_stored_ticket_records_keep_brand_and_read_older_ones() -> None:
    """The store's compact ticket form carries ``brand_id``; a record written before it
    (12 version elements) reads back with ``brand_id`` None."""
    import orjson

    from tactful.core.state import apply_version
    from tactful.store.records import dump_ticket, load_ticket
    from tactful.testing import ticket

    version = ticket(5, utc(2026, 3, 1))
    branded = TicketVersion(**{**_fields(version), "brand_id": 360001})
    record = apply_version(None, branded, "other", False)
    blob = dump_ticket(record)
    assert load_ticket(5, bytes(blob)).version == branded
    raw = orjson.loads(blob)
    raw[0] = raw[0][:12]
    old = load_ticket(5, orjson.dumps(raw))
    assert old.version is not None and old.version.brand_id is None


def test_same_time_same_key_versions_differing_in_brand_fold_in_any_order() -> None:
    from tactful.core.state import apply_version
    from tactful.testing import ticket

    a = ticket(5, utc(2026, 3, 1))
    b = TicketVersion(**{**_fields(a), "brand_id": 360001})
    one = apply_version(apply_version(None, a, "other", False), b, "other", False)
    two = apply_version(apply_version(None, b, "other", False), a, "other", False)
    assert one.version == two.version == b


def _fields(version: TicketVersion) -> dict[str, Any]:
    return {name: getattr(version, name) for name in TicketVersion.__slots__}


def test_a_version_without_a_brand_keeps_the_tickets_latest_known_brand() -> None:
    """Trigger bodies carry no brand. A newer version without one must not flip the ticket's
    brand to null (and back): the brand is the latest *known* one, in any arrival order."""
    from itertools import permutations

    from tactful.core.state import apply_version, ticket_fields
    from tactful.store.records import dump_ticket, load_ticket
    from tactful.testing import ticket

    first = TicketVersion(**{**_fields(ticket(5, utc(2026, 3, 1))), "brand_id": 360001})
    unbranded = ticket(5, utc(2026, 3, 2), status="pending")
    moved = TicketVersion(**{**_fields(ticket(5, utc(2026, 3, 3))), "brand_id": 360002})
    trigger = ticket(5, utc(2026, 3, 4), status="solved")

    def fold(*versions: TicketVersion) -> Any:
        record = None
        for version in versions:
            record = apply_version(record, version, "other", False)
        return record

    record = fold(first, unbranded)
    assert ticket_fields([record])["brand_id"] == 360001
    results = set()
    for order in permutations([first, unbranded, moved, trigger]):
        record = fold(*order)
        fields = ticket_fields([record])
        results.add((fields["brand_id"], tuple(fields["brand_ids"]), record.status))
        assert load_ticket(5, bytes(dump_ticket(record))) == record
    assert results == {(360002, ("360002",), "solved")}

"""Redacting an erased person out of a shared raw document (pure)."""

from __future__ import annotations

from typing import Any

from tactful.store.redact import REDACTED, Erased, redact

ANN = Erased.of(
    [
        ("email", "ann.doe@example.com"),
        ("phone", "+14155550100"),
        ("external_id", "ext-ann-77"),
        ("zendesk_user_id", "101"),
        ("person_id", "p_0123456789abcdef0123"),
    ],
    [501],
)


def test_the_persons_records_are_dropped_and_others_kept() -> None:
    page: dict[str, Any] = {
        "users": [{"id": 101, "name": "Ann Doe"}, {"id": 102, "name": "Bob"}],
        "tickets": [{"id": 501, "requester_id": 9}, {"id": 101, "requester_id": 102}],
        "ticket_events": [{"ticket_id": 501}, {"ticket_id": 101}],
        "ratings": [{"id": 7, "requester_id": 101}],
        "events": [
            {"person": {"email": "ANN.Doe@Example.com "}},
            {"person": {"zendesk_user_id": 101}},
            {"person": {"person_id": "p_0123456789abcdef0123"}},
            {"person": {"email": "b@x.io"}},
        ],
    }
    assert redact(page, ANN) == {
        "users": [{"id": 102, "name": "Bob"}],
        "tickets": [{"id": 101, "requester_id": 102}],  # a ticket id equal to Ann's user id
        "ticket_events": [{"ticket_id": 101}],
        "ratings": [],
        "events": [{"person": {"email": "b@x.io"}}],
    }


def test_every_raw_form_is_replaced_in_what_stays() -> None:
    doc = {
        "ticket": {
            "id": 9,
            "submitter_id": 101,
            "assignee_id": "101",
            "collaborator": "ANN.DOE@EXAMPLE.COM",
            "phones": ["+1 (415) 555-0100", "415.555.0100", "0014155550100", "+1 415 555 0199"],
            "external": "ext-ann-77",
            "subject": "ring (415) 555-0100 or +1-415-555-0100, mail Ann.Doe@example.com now",
            "other": "ext-ann-777 and 24155550100",
        }
    }
    assert redact(doc, ANN) == {
        "ticket": {
            "id": 9,
            "submitter_id": None,
            "assignee_id": REDACTED,
            "collaborator": REDACTED,
            "phones": [REDACTED, REDACTED, REDACTED, "+1 415 555 0199"],
            "external": REDACTED,
            "subject": f"ring {REDACTED} or {REDACTED}, mail {REDACTED} now",
            "other": "ext-ann-777 and 24155550100",
        }
    }


def test_wildcards_and_quotes_in_identifiers_are_plain_text() -> None:
    odd = Erased.of([("external_id", "%"), ("email", "john_doe@example.com")], [])
    doc = ["%", "50% off", "john.doe@example.com", "JOHN_DOE@example.com", "a_b"]
    assert redact(doc, odd) == [REDACTED, "50% off", "john.doe@example.com", REDACTED, "a_b"]


def test_csat_survey_responses_of_the_person_are_dropped() -> None:
    """Survey responses name their user in ``responder_id`` and their ticket in
    ``subject_zrns`` (``zen:ticket:501``): either makes the response the person's."""
    page: dict[str, Any] = {
        "survey_responses": [
            {"id": "01A", "responder_id": 101, "subject_zrns": ["zen:ticket:9"]},
            {"id": "01B", "responder_id": 7, "subject_zrns": ["zen:ticket:501"]},
            {"id": "01C", "responder_id": 7, "subject_zrns": ["zen:ticket:9"]},
        ]
    }
    assert redact(page, ANN) == {
        "survey_responses": [{"id": "01C", "responder_id": 7, "subject_zrns": ["zen:ticket:9"]}]
    }
    single = {"survey_response": {"id": "01D", "responder_id": "101", "subject_zrns": []}}
    assert redact(single, ANN)["survey_response"]["responder_id"] == REDACTED

"""Simulator records → Zendesk JSON (API objects, export rows, webhook ``detail`` objects).

Field sets are copied from recorded Zendesk responses (``tests/fixtures/zendesk``): the
incremental ticket and user cursor pages and the ticket audits; the same sets
``tactful.testing.sample`` writes. Event-subscription ``detail`` objects follow Zendesk's webhook
event-type reference: ids as strings, statuses/priorities/types upper-case.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tactful.testing.sample.documents import (
    BRAND_ID,
    CUSTOM_STATUS_IDS,
    NO_SOURCE,
    ticket_document,
    user_document,
)
from tactful.testing.sim.model import (
    Json,
    SimAudit,
    SimRating,
    SimSurveyResponse,
    SimTicket,
    SimUser,
)

# API ``via.channel`` → the channel name event-subscription payloads use in ``detail.via``.
_EVENT_CHANNELS = {"web": "web_form", "email": "mail", "api": "web_service"}


def iso(value: datetime) -> str:
    """``2026-08-01T10:32:05Z``: what the REST API prints (whole seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_nanos(value: datetime) -> str:
    """``2026-08-01T10:32:05.123456000Z``: envelope ``time`` (Zendesk prints nanoseconds)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond * 1000:09d}Z"


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def user_json(u: SimUser, base_url: str, field_keys: Iterable[str] = ()) -> Json:
    """A user as the API shows it. ``field_keys``: the account's user fields; Zendesk lists
    every one of them for every user, ``null`` when unset."""
    user: Json = user_document(
        base_url=base_url,
        user_id=u.id,
        name=u.name,
        email=u.email,
        created_at=iso(u.created_at),
        updated_at=iso(u.updated_at),
        time_zone=("Eastern Time (US & Canada)", "America/New_York"),
        phone=u.phone,
        role=u.role,
        external_id=u.external_id,
        tags=list(u.tags),
        active=u.active,
        user_fields={**dict.fromkeys(field_keys), **u.user_fields},
    )
    if not u.active:
        user["permanently_deleted"] = u.permanently_deleted
    return user


def embedded_rating(r: SimRating | None) -> Json:
    """The ticket's ``satisfaction_rating`` field."""
    if r is None:
        return {"score": "unoffered"}
    if r.score == "offered":
        return {"score": "offered"}
    return {"score": r.score, "id": r.id, "comment": r.comment}


def ticket_json(t: SimTicket, base_url: str, rating: SimRating | None) -> Json:
    via: Json = {"channel": t.channel, "source": NO_SOURCE}
    fields = [dict(f) for f in t.custom_fields]
    return ticket_document(
        base_url=base_url,
        ticket_id=t.id,
        external_id=t.external_id,
        via=via,
        created_at=iso(t.created_at),
        updated_at=iso(t.updated_at),
        type=t.type,
        subject=t.subject,
        description=t.description,
        priority=t.priority,
        status=t.status,
        recipient=None,
        requester_id=t.requester_id,
        submitter_id=t.submitter_id,
        assignee_id=t.assignee_id,
        group_id=t.group_id,
        tags=sorted(set(t.tags)),
        custom_fields=fields,
        fields=[dict(f) for f in fields],
        satisfaction_rating=embedded_rating(rating),
        custom_status_id=CUSTOM_STATUS_IDS[t.status],
        brand_id=t.brand_id or BRAND_ID,
        generated_timestamp=epoch(t.updated_at),
    )


SURVEY_ID = "01J58KJ9RAE0D2EK7HRVM7Z8F2"
RATING_QUESTION_ID = "01GFYBENPDGN1R6NAA4WRDNVFQ"
COMMENT_QUESTION_ID = "01GFYBENPDGN1R6NAA4WRDNVFR"


def survey_response_json(r: SimSurveyResponse) -> Json:
    """A CSAT survey response as ``GET /api/v2/guide/survey_responses`` shows it
    (https://developer.zendesk.com/api-reference/ticketing/ticket-management/csat_survey_responses):
    the ``rating_scale`` answer's question lists the survey's rating options, the comment
    question is skipped."""
    zrn = f"zen:ticket:{r.ticket_id}"
    options = [
        {"id": f"{RATING_QUESTION_ID[:-2]}{i:02d}", "rating": i,
         "label": {"type": "static", "value": str(i)}}
        for i in range(1, r.points + 1)
    ]  # fmt: skip
    return {
        "id": r.id,
        "answers": [
            {
                "type": "rating_scale",
                "rating": r.rating,
                "question": {
                    "id": RATING_QUESTION_ID,
                    "alias": "rating_scale",
                    "type": "rating_scale",
                    "headline": {"type": "static", "value": "How would you rate your experience?"},
                    "options": options,
                },
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
            },
            {
                "type": "skipped",
                "question": {"id": COMMENT_QUESTION_ID, "alias": "comment", "type": "open_ended"},
                "created_at": iso(r.created_at),
                "updated_at": iso(r.created_at),
            },
        ],
        "expires_at": iso(r.created_at + timedelta(days=28)),
        "responder_id": r.responder_id,
        "subject_zrns": [zrn],
        "subjects": [{"id": str(r.ticket_id), "type": "ticket", "zrn": zrn}],
        "survey": {"id": SURVEY_ID, "state": "enabled", "version": 1},
    }


def rating_json(r: SimRating, base_url: str) -> Json:
    return {
        "url": f"{base_url}/api/v2/satisfaction_ratings/{r.id}.json",
        "id": r.id,
        "assignee_id": r.assignee_id,
        "group_id": r.group_id,
        "requester_id": r.requester_id,
        "ticket_id": r.ticket_id,
        "score": r.score,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "comment": r.comment,
    }


COMMENT_EVENT_KEYS = ("author_id", "body", "public")


def audit_json(a: SimAudit, *, comment_events: bool = False) -> Json:
    """A row of ``/api/v2/incremental/ticket_events.json``; ``comment_events``: as with
    ``include=comment_events``, Comment children carry ``author_id``, ``body`` and
    ``public`` (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/)."""
    children = [
        {k: v for k, v in c.items() if comment_events or k not in COMMENT_EVENT_KEYS}
        for c in a.children
    ]
    return {
        "id": a.id,
        "ticket_id": a.ticket_id,
        "timestamp": epoch(a.at),
        "created_at": iso(a.at),
        "updater_id": a.updater_id,
        "via": a.via,
        "event_type": "Audit",
        "child_events": children,
    }


def _sid(value: Any) -> str | None:
    return None if value is None else str(value)


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def ticket_detail(ticket: Json, actor_id: int) -> Json:
    """Event-subscription ``detail`` for a ticket, from its API JSON."""
    channel = ticket["via"]["channel"]
    return {
        "actor_id": str(actor_id),
        "assignee_id": _sid(ticket["assignee_id"]),
        "brand_id": _sid(ticket["brand_id"]),
        "created_at": ticket["created_at"],
        "custom_status": _sid(ticket["custom_status_id"]),
        "description": ticket["description"],
        "external_id": _sid(ticket["external_id"]),
        "form_id": _sid(ticket["ticket_form_id"]),
        "group_id": _sid(ticket["group_id"]),
        "id": str(ticket["id"]),
        "is_public": ticket["is_public"],
        "organization_id": _sid(ticket["organization_id"]),
        "priority": _upper(ticket["priority"]),
        "requester_id": str(ticket["requester_id"]),
        "status": _upper(ticket["status"]),
        "subject": ticket["subject"],
        "submitter_id": _sid(ticket["submitter_id"]),
        "tags": list(ticket["tags"]) or None,
        "type": _upper(ticket["type"]),
        "updated_at": ticket["updated_at"],
        "via": {"channel": _EVENT_CHANNELS.get(channel, channel)},
    }


def user_detail(user: Json) -> Json:
    """Event-subscription ``detail`` for a user (as in the recorded ``user.deleted``)."""
    return {
        "created_at": user["created_at"],
        "default_group_id": str(user["default_group_id"] or 0),
        "email": user["email"] or "",
        "external_id": user["external_id"] or "",
        "id": str(user["id"]),
        "organization_id": str(user["organization_id"] or 0),
        "role": user["role"],
        "updated_at": user["updated_at"],
    }

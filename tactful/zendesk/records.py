"""Zendesk API records → canonical events, one record at a time.

The converters (``ticket_version``, ``user_seen``, ``rating_given``, ``survey_rating``,
``status_change``) take
one API-shaped object and return its event, or raise ``BadRecord`` with the reason it was
skipped; the field helpers (``parse_time``, ``as_int``, ``as_text``, ``norm_status``, …) are
shared with ``tactful.zendesk.webhooks``. Documents are dispatched in
``tactful.zendesk.parse``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tactful.core.codec import check_range, format_time
from tactful.core.events import (
    KNOWN_STATUSES,
    PRIORITIES,
    Identifier,
    IdentifierKind,
    RatingGiven,
    TicketStatusChanged,
    TicketVersion,
    UserSeen,
)


class BadRecord(Exception):
    """Internal: one record cannot be translated; ``reason`` goes to ``Skipped``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Obj = dict[str, Any]
_STATUS_ALIASES = {
    "on-hold": "hold",
    "on hold": "hold",
    "archived": "closed",
    "scrubbed": "deleted",
}
_REQUESTER_KINDS: tuple[IdentifierKind, ...] = ("email", "phone", "external_id")


def parse_time(value: Any, what: str) -> datetime:
    """ISO 8601 with an offset → aware UTC; anything else raises ``BadRecord``."""
    if not isinstance(value, str):
        raise BadRecord(f"{what} missing" if value is None else f"{what} is not text: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"bad {what}: {value!r}") from None
    if parsed.tzinfo is None:
        raise BadRecord(f"{what} without a UTC offset: {value!r}")
    return in_range(parsed, what)


def in_range(value: datetime, what: str) -> datetime:
    """An aware time as UTC, within the range Tactful computes with (else ``BadRecord``)."""
    try:
        return check_range(value if value.tzinfo is UTC else value.astimezone(UTC))
    except (ValueError, OverflowError):
        raise BadRecord(f"{what} out of range: {value.isoformat()}") from None


def time_key(raw: Any, value: datetime) -> str:
    """The canonical ISO text of a time for keys (the raw text when already canonical)."""
    if isinstance(raw, str) and len(raw) == 20 and raw[19] == "Z" and raw[10] == "T":
        return raw
    return format_time(value)


MAX_ID = 2**63 - 1  # Zendesk ids are 64-bit; the stores keep them as signed 64-bit integers


def as_int(value: Any) -> int | None:
    """A non-negative integer that fits the stores (an id, a count, epoch seconds), else None:
    ``42``, ``"42"`` and ``42.0``, but not ``2**64``, ``9e25`` or ``-1``."""
    if type(value) is int:
        number = value
    elif (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19) or (
        isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_ID
    ):
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_ID else None


def as_text(value: Any) -> str | None:
    """A field value as text (booleans ``true``/``false``); None for null and objects."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def add_pairs(key: str, value: Any, out: list[tuple[str, str]]) -> None:
    """Append ``(key, text)`` for a value; lists give one pair per element."""
    for item in value if isinstance(value, list) else (value,):
        text = as_text(item)
        if text is not None:
            out.append((key, text))


def norm_status(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRecord("ticket without status")
    status = value.strip().lower()
    if status in KNOWN_STATUSES:
        return status
    alias = _STATUS_ALIASES.get(status)
    if alias is None:
        raise BadRecord(f"unknown ticket status {value!r}")
    return alias


def requester_identifiers(requester: Obj) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for kind in _REQUESTER_KINDS:
        value = requester.get(kind)
        if isinstance(value, str) and value.strip():
            found.append(Identifier(kind, value.strip()))
    return tuple(found)


def ticket_version(t: Obj) -> TicketVersion:
    """One API-shaped ticket object → ``TicketVersion`` (raises ``BadRecord``)."""
    ticket_id = as_int(t.get("id"))
    if ticket_id is None:
        raise BadRecord("ticket without id")
    status = norm_status(t.get("status"))
    updated_raw = t.get("updated_at")
    updated = parse_time(updated_raw, "updated_at")
    created = parse_time(t.get("created_at"), "created_at")
    requester_id = as_int(t.get("requester_id"))
    requester: tuple[Identifier, ...] = ()
    inline = t.get("requester")
    if isinstance(inline, dict):
        requester = requester_identifiers(inline)
        if requester_id is None:
            requester_id = as_int(inline.get("id"))
    if requester_id is None and not requester:
        raise BadRecord("ticket without requester")
    priority = t.get("priority")
    if priority is not None:
        priority = priority.lower() if isinstance(priority, str) else None
        if priority not in PRIORITIES:
            priority = None
    tags = t.get("tags")
    if tags is not None and not isinstance(tags, list):
        raise BadRecord(f"tags is not a list: {type(tags).__name__}")
    subject = t.get("subject") or t.get("raw_subject") or ""
    via = t.get("via")
    channel = via.get("channel") if isinstance(via, dict) else via
    custom: list[tuple[str, str]] = []
    custom_fields = t.get("custom_fields") or ()
    if not isinstance(custom_fields, list | tuple):
        raise BadRecord(f"custom_fields is not a list: {type(custom_fields).__name__}")
    for field in custom_fields:
        if isinstance(field, dict) and field.get("id") is not None:
            add_pairs(str(field["id"]), field.get("value"), custom)
    return TicketVersion(
        key=f"zendesk:ticket:{ticket_id}:{time_key(updated_raw, updated)}",
        at=updated,
        ticket_id=ticket_id,
        created_at=created,
        updated_at=updated,
        status=status,
        priority=priority,
        tags=tuple(x.lower() for x in tags if isinstance(x, str)) if tags else (),
        subject=subject if isinstance(subject, str) else str(subject),
        channel=channel if isinstance(channel, str) else "",
        requester_id=requester_id,
        requester=requester,
        custom_fields=tuple(custom),
        brand_id=as_int(t.get("brand_id")),
    )


def _texts(*values: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def user_seen(u: Obj, emails: tuple[str, ...] = (), phones: tuple[str, ...] = ()) -> UserSeen:
    user_id = as_int(u.get("id"))
    if user_id is None:
        raise BadRecord("user without id")
    raw = u.get("updated_at") or u.get("created_at")
    at = parse_time(raw, "updated_at")
    fields: list[tuple[str, str]] = []
    user_fields = u.get("user_fields")
    if isinstance(user_fields, dict):
        for name, value in user_fields.items():
            if value is None:  # Zendesk lists every user field; unset is null: known, empty
                fields.append((name, ""))
            add_pairs(name, value, fields)
    tags = u.get("tags")
    return UserSeen(
        key=f"zendesk:user:{user_id}:{time_key(raw, at)}",
        at=at,
        zendesk_user_id=user_id,
        emails=tuple(dict.fromkeys(_texts(u.get("email")) + emails)),
        phones=tuple(dict.fromkeys(_texts(u.get("phone")) + phones)),
        external_ids=_texts(as_text(u.get("external_id"))),
        active=u.get("active") is not False,
        tags=tuple(x.lower() for x in tags if isinstance(x, str)) if tags else (),
        fields=tuple(fields),
    )


def rating_given(r: Obj) -> RatingGiven:
    rating_id = as_int(r.get("id"))
    if rating_id is None:
        raise BadRecord("rating without id")
    score: Any = r.get("score")
    if isinstance(score, str):
        score = score.strip().lower().removesuffix("_with_comment")
        if score in ("offered", "unoffered"):
            raise BadRecord(f"rating {score}, not given")
        if score not in ("good", "bad"):
            score = as_int(score) if score.isdigit() else score
    elif as_int(score) is not None:
        score = as_int(score)
    if not (score in ("good", "bad") or (type(score) is int and 1 <= score <= 5)):
        raise BadRecord(f"unknown rating score {r.get('score')!r}")
    raw = r.get("updated_at") or r.get("created_at")
    at = parse_time(raw, "updated_at")
    return RatingGiven(
        key=f"zendesk:rating:{rating_id}:{time_key(raw, at)}",
        at=at,
        rating_id=rating_id,
        ticket_id=as_int(r.get("ticket_id")),
        requester_id=as_int(r.get("requester_id")),
        score=score,
    )


_SCALES = (2, 3, 5)  # the rating scales a Zendesk CSAT survey offers


def _ticket_of(response: Obj) -> int | None:
    """The ticket a survey response is about: ``zen:ticket:99`` in ``subject_zrns``."""
    zrns = response.get("subject_zrns")
    for zrn in zrns if isinstance(zrns, list) else ():
        if isinstance(zrn, str) and zrn.startswith("zen:ticket:"):
            return as_int(zrn.removeprefix("zen:ticket:"))
    return None


def survey_rating(response: Obj) -> RatingGiven:
    """A CSAT survey response (Zendesk's current CSAT, ``/api/v2/guide/survey_responses``)
    → ``RatingGiven`` from its ``rating_scale`` answer; the scale is the number of options of
    the answered question (5 when it lists none). Raises ``BadRecord``."""
    response_id = response.get("id")
    if not isinstance(response_id, str) or not response_id.strip():
        raise BadRecord("survey response without id")
    answers = response.get("answers")
    answer = next(
        (
            a
            for a in (answers if isinstance(answers, list) else ())
            if isinstance(a, dict) and a.get("type") == "rating_scale"
        ),
        None,
    )
    if answer is None:
        raise BadRecord("survey response without a rating")
    question = answer.get("question")
    options = question.get("options") if isinstance(question, dict) else None
    scale = len(options) if isinstance(options, list) and options else 5
    if scale not in _SCALES:
        raise BadRecord(f"survey rating scale of {scale} points")
    rating = as_int(answer.get("rating"))
    if rating is None or not 1 <= rating <= scale:
        raise BadRecord(f"survey rating {answer.get('rating')!r} outside its {scale}-point scale")
    raw = answer.get("updated_at") or answer.get("created_at")
    at = parse_time(raw, "updated_at")
    return RatingGiven(
        key=f"zendesk:survey_response:{response_id}:{time_key(raw, at)}",
        at=at,
        rating_id=response_id,
        ticket_id=_ticket_of(response),
        requester_id=as_int(response.get("responder_id")),
        score=rating,
        scale=scale,
    )


def status_change(ticket_id: int, child: Obj, at: datetime) -> TicketStatusChanged | None:
    """A ticket event child / audit event → status change, None when it is about another field."""
    if "status" in child and child.get("field_name") is None:
        value = child["status"]  # incremental ticket events: {"status": "solved", ...}
    elif child.get("field_name") == "status":
        value = child.get("value")  # audits: {"field_name": "status", "value": "solved"}
    else:
        return None
    child_id = as_int(child.get("id"))
    if child_id is None:
        raise BadRecord("status change without id")
    previous = child.get("previous_value")
    return TicketStatusChanged(
        key=f"zendesk:ticket_event:{child_id}",
        at=at,
        ticket_id=ticket_id,
        status=norm_status(value),
        previous_status=norm_status(previous) if isinstance(previous, str) and previous else None,
    )

"""``/api/*``: people, segments, members, and events from other systems."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tactful.core import codec
from tactful.core.events import (
    ConsentSet,
    Event,
    HealthSet,
    Identifier,
    IdentifierKind,
    OutcomeRecorded,
    OverrideSet,
    PersonErased,
)
from tactful.engine.engine import Incoming
from tactful.readmodels.views import clock_of, fmt, person_json, resolve_key
from tactful.store.base import REPLAY_KEY
from tactful.web.context import WebContext
from tactful.web.receiver import BodyTooLarge, read_limited

MAX_EVENTS = 1000


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    def identifier(self) -> Identifier:
        ((kind, value),) = self.model_dump().items()
        return Identifier(cast(IdentifierKind, kind), str(value))


class EmailRef(_Ref):
    email: Annotated[
        str, Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    ]


class PhoneRef(_Ref):
    phone: Annotated[str, Field(min_length=4, max_length=40, pattern=r"^\+?[0-9][0-9 ().-]{3,}$")]


class ExternalIdRef(_Ref):
    external_id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"\S")]


class ZendeskUserRef(_Ref):
    zendesk_user_id: Annotated[int, Field(ge=1, le=2**63 - 1)]


class PersonIdRef(_Ref):
    person_id: Annotated[str, Field(pattern=r"^p_[0-9a-f]{1,64}$")]


# Who the event is about: exactly one identifier.
PersonRef = EmailRef | PhoneRef | ExternalIdRef | ZendeskUserRef | PersonIdRef


def _bounded_time(value: datetime) -> datetime:
    """An aware time within the range Tactful computes with (1970 to 2199)."""
    if value.tzinfo is None:
        raise ValueError("time must carry a UTC offset (e.g. 2026-11-22T10:00:00Z)")
    try:
        codec.check_range(value.astimezone(UTC))
    except OverflowError:
        raise ValueError("time out of range") from None
    return value


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str | None = Field(None, max_length=200, description="idempotency key")
    person: PersonRef
    at: datetime

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _bounded_time(value)


class HealthIn(_Base):
    type: Literal["health"]
    health: Literal["satisfied", "neutral", "unsatisfied"]
    actor: str = ""


class ConsentIn(_Base):
    type: Literal["consent"]
    purpose: Literal["ads", "email", "analytics"]
    granted: bool
    source: str = ""


class OutcomeIn(_Base):
    type: Literal["outcome"]
    outcome: str = Field(
        min_length=1, max_length=64, description="order | unsubscribe | complaint | recontact | …"
    )
    amount: float | None = Field(None, allow_inf_nan=False, description="a finite number")
    currency: str | None = Field(None, max_length=8)
    properties: dict[str, str] = {}


class EraseIn(_Base):
    type: Literal["erase"]
    requested_by: str = Field("", max_length=200)


class OverrideIn(_Base):
    type: Literal["override"]
    until: datetime | None = Field(None, description="suppress promos until; null lifts it")
    actor: str = Field("", max_length=200)

    @field_validator("until")
    @classmethod
    def _aware_until(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _bounded_time(value)


EventIn = Annotated[
    HealthIn | ConsentIn | OutcomeIn | EraseIn | OverrideIn, Field(discriminator="type")
]


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


def to_event(item: HealthIn | ConsentIn | OutcomeIn | EraseIn | OverrideIn) -> Event:
    at = codec.parse_time(item.at.isoformat())
    digest = hashlib.sha256(item.model_dump_json().encode()).hexdigest()[:24]
    key = f"api:{item.type}:{item.id}" if item.id else f"api:{item.type}:{digest}"
    person = item.person.identifier()
    if isinstance(item, HealthIn):
        return HealthSet(key, at, person, item.health, item.actor)
    if isinstance(item, ConsentIn):
        return ConsentSet(key, at, person, item.purpose, item.granted, item.source)
    if isinstance(item, EraseIn):
        return PersonErased(key, at, person, item.requested_by)
    if isinstance(item, OverrideIn):
        until = None if item.until is None else codec.parse_time(item.until.isoformat())
        return OverrideSet(key, at, person, until, item.actor)
    return OutcomeRecorded(
        key,
        at,
        person,
        item.outcome,
        item.amount,
        item.currency,
        tuple(sorted(item.properties.items())),
    )


def _ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def _error(status: int, error: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


REBUILDING = "a replay is rebuilding the store; the state is back when it ends"


def _rebuilding() -> JSONResponse:
    """Persons and segments are half built while a replay runs: said, not shown."""
    answer = _error(503, "replay_in_progress", REBUILDING)
    answer.headers["Retry-After"] = "10"
    return answer


async def post_events(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        body = await read_limited(request)
        data = EventsIn.model_validate_json(body)
    except BodyTooLarge:
        return _error(413, "body_too_large", "at most 1 MiB")
    except ValidationError as exc:
        ctx.metrics.reject("invalid_api_event")
        problems = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        return _error(422, "invalid_events", problems)
    events = [to_event(item) for item in data.events]
    future = ctx.engine.future_events(events)
    if future:  # the time guard: one event from the future would move the clock for good
        ctx.metrics.reject("event_in_future", len(future))
        return _error(422, "event_in_future", future)
    unusable = _unusable_identifiers(ctx, events)
    if unusable:
        ctx.metrics.reject("invalid_api_event")
        return _error(422, "invalid_events", unusable)
    ctx.metrics.received.labels("api").inc(len(events))
    stats = await ctx.commit([Incoming(events, body, "api:events")])
    rejected = [
        {"id": key, "reason": reason}
        for key, reason in stats.rejected
        if key in {e.key for e in events}
    ]
    return JSONResponse(
        {"accepted": len(events), "keys": [e.key for e in events], "rejected": rejected}
    )


def _unusable_identifiers(ctx: WebContext, events: list[Event]) -> list[dict[str, str]]:
    """Identifiers that do not normalize (an email without a domain, a phone that is not a
    number in [identity] default_region) or person ids that do not exist: 422, not applied."""
    problems: list[dict[str, str]] = []
    person_ids: list[tuple[int, str]] = []
    for index, event in enumerate(events):
        try:
            plan = ctx.engine.plan.identifiers(event)
        except ValueError as exc:
            problems.append({"loc": f"events.{index}.person", "msg": str(exc)})
            continue
        if plan and plan[0] and plan[0][0][0] == "person_id":
            person_ids.append((index, plan[0][0][1]))
    if person_ids:
        with ctx.engine.store.reader() as reader:
            for index, pid in person_ids:
                if reader.resolve_person_id(pid) is None:
                    problems.append(
                        {"loc": f"events.{index}.person.person_id", "msg": "no such person"}
                    )
    return problems


async def get_person(request: Request) -> Response:
    ctx = _ctx(request)
    key = request.path_params["key"]
    now = request.query_params.get("now")
    at = None
    if now is not None:
        try:
            at = codec.parse_time(now)
        except ValueError:
            return _error(400, "bad_now", "now must be ISO 8601 with a UTC offset")
    with ctx.engine.store.reader() as reader:
        if reader.get_meta(REPLAY_KEY) is not None:
            return _rebuilding()
        matches = resolve_key(reader, key, ctx.settings.identity.default_region)
        people = [
            person_json(reader, ctx.engine.rules, ctx.consent_defaults, pid, now=at)
            for pid in matches
        ]
    found = [p for p in people if p is not None]
    if not found:
        return _error(404, "not_found", "no person matches this key")
    if len(found) > 1:
        return _error(409, "ambiguous", {"person_ids": [p["person_id"] for p in found]})
    return Response(orjson.dumps(found[0]), media_type="application/json")


async def get_segments(request: Request) -> Response:
    ctx = _ctx(request)
    if ctx.rebuilding():
        return _rebuilding()
    figures = ctx.store_figures()
    counts, states, clock = figures
    segments = []
    for seg in ctx.settings.segments:
        members, holdout = counts.get(seg.name, (0, 0))
        segments.append(
            {
                "name": seg.name,
                "description": seg.description,
                "when": seg.when,
                "cooldown_seconds": None if seg.cooldown is None else seg.cooldown.total_seconds(),
                "holdout": seg.holdout,
                "members": members,
                "holdout_members": holdout,
            }
        )
    return JSONResponse({"as_of": fmt(clock), "segments": segments, "support_states": states})


async def get_members(request: Request) -> Response:
    ctx = _ctx(request)
    name = request.path_params["name"]
    if ctx.settings.segment(name) is None:
        return _error(404, "not_found", f"no segment named {name!r}")
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        return _error(400, "bad_limit", "limit must be an integer")
    if not 1 <= limit <= 1000:
        return _error(400, "bad_limit", "limit must be between 1 and 1000")
    after = request.query_params.get("after")
    with ctx.engine.store.reader() as reader:
        if reader.get_meta(REPLAY_KEY) is not None:
            return _rebuilding()
        page = reader.segment_members(name, after, limit + 1)
        clock = clock_of(reader)
    more = len(page) > limit
    page = page[:limit]
    return JSONResponse(
        {
            "segment": name,
            "as_of": fmt(clock),
            "members": [
                {"person_id": pid, "since": fmt(m.since), "holdout": m.holdout} for pid, m in page
            ],
            "next": page[-1][0] if more and page else None,
        }
    )

"""Persistence forms of the core's values (JSON via orjson), shared by every store adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from tactful.core import codec
from tactful.core.events import Identifier, TicketVersion
from tactful.core.segments import Membership
from tactful.core.state import Latest, PersonFacts, TicketRecord

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (exact; used for ordering columns)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    from datetime import timedelta

    return EPOCH + timedelta(microseconds=value)


def _t(value: datetime | None) -> str | None:
    return None if value is None else codec.format_time(value)


def _pt(value: str | None) -> datetime | None:
    return None if value is None else codec.parse_time(value)


def dump_ticket(record: TicketRecord) -> bytes:
    """Compact positional form: [version, reason, risk, last_risk_at, observations]."""
    v = record.version
    version = None
    if v is not None:
        version = [
            v.key,
            v.ticket_id,
            v.created_at,
            v.updated_at,
            v.status,
            v.priority,
            v.tags,
            v.subject,
            v.channel,
            v.requester_id,
            [[i.kind, i.value] for i in v.requester],
            v.custom_fields,
        ]
    return orjson.dumps(
        [version, record.reason, record.risk, record.last_risk_at, sorted(record.observations)],
        option=orjson.OPT_UTC_Z,
    )


def load_ticket(ticket_id: int, blob: bytes) -> TicketRecord:
    raw, reason, risk, last_risk_at, observations = orjson.loads(blob)
    parse = codec.parse_time
    version = None
    if raw is not None:
        key, tid, created, updated, status, priority, tags, subject, channel, req, who, cf = raw
        updated_at = parse(updated)
        version = TicketVersion(
            key,
            updated_at,
            tid,
            parse(created),
            updated_at,
            status,
            priority,
            tuple(tags),
            subject,
            channel,
            req,
            tuple(Identifier(k, val) for k, val in who),
            tuple((f, val) for f, val in cf),
        )
    return TicketRecord(
        ticket_id,
        version,
        reason,
        risk,
        None if last_risk_at is None else parse(last_risk_at),
        frozenset((parse(at), status) for at, status in observations),
    )


def _dump_latest(latest: Latest | None) -> list[Any] | None:
    if latest is None:
        return None
    return [codec.format_time(latest.at), latest.key, latest.value]


def _load_latest(data: list[Any] | None) -> Latest | None:
    if data is None:
        return None
    return Latest(codec.parse_time(data[0]), data[1], data[2])


def dump_facts(facts: PersonFacts) -> bytes:
    return orjson.dumps(
        {
            "rating": _dump_latest(facts.rating),
            "health": _dump_latest(facts.health),
            "consent": {purpose: _dump_latest(latest) for purpose, latest in facts.consent},
            "override": _dump_latest(facts.override),
        }
    )


def load_facts(blob: bytes | None) -> PersonFacts:
    if not blob:
        return PersonFacts()
    data = orjson.loads(blob)
    consent = tuple(
        sorted(
            (purpose, latest)
            for purpose, raw in data["consent"].items()
            if (latest := _load_latest(raw)) is not None
        )
    )
    return PersonFacts(
        _load_latest(data["rating"]),
        _load_latest(data["health"]),
        consent,
        _load_latest(data.get("override")),
    )


TIME_FIELDS = frozenset(
    {
        "last_ticket_at",
        "last_activity_at",
        "last_resolved_at",
        "last_refund_at",
        "csat_at",
        "health_at",
        "promo_override_until",
    }
)


def dump_state(values: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {k: (codec.format_time(v) if isinstance(v, datetime) else v) for k, v in values.items()}
    )


def load_state(blob: bytes | None) -> dict[str, Any]:
    if not blob:
        return {}
    data: dict[str, Any] = orjson.loads(blob)
    for name in TIME_FIELDS:
        value = data.get(name)
        if value is not None:
            data[name] = codec.parse_time(value)
    return data


def membership_row(segment: str, person_id: str, m: Membership) -> tuple[Any, ...]:
    assert m.since is not None
    return (
        segment,
        person_id,
        to_us(m.since),
        None if m.false_since is None else to_us(m.false_since),
        int(m.holdout),
    )


def membership_from_row(since: int, false_since: int | None, holdout: int) -> Membership:
    return Membership(
        True, from_us(since), None if false_since is None else from_us(false_since), bool(holdout)
    )

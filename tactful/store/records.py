"""Persistence forms of the core's values (JSON via orjson), shared by every store adapter.

Decoding is the costly half of a bulk import: the same ticket and facts blobs are read again
and again as persons come back batch after batch. Their decoded values are immutable, so a
bounded memo (``_Memo``) hands out the value already decoded — or just encoded: a value that
survives the JSON round trip exactly is remembered when it is dumped. Encoded blobs are copied
to their exact size (``codec.exact``): orjson returns 4 KiB buffers, which thousands of pending
rows turn into hundreds of MB.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

import orjson

from tactful.core import codec
from tactful.core.events import Identifier, TicketVersion
from tactful.core.segments import Membership
from tactful.core.state import FIELD_TYPES, BrandSeen, Latest, PersonFacts, TicketRecord

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (exact; used for ordering columns)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


K = TypeVar("K")
V = TypeVar("V")


class _Memo(Generic[K, V]):
    """Blob → decoded immutable value, bounded: two generations of at most ``size`` entries;
    a full young generation becomes the old one and the old one is dropped. Memory stays flat
    however many persons the store holds; recently used entries survive."""

    __slots__ = ("old", "size", "young")

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[K, V] = {}
        self.old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self.young.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        young = self.young
        young[key] = value
        if len(young) >= self.size:
            self.old, self.young = young, {}

    def clear(self) -> None:
        self.young, self.old = {}, {}


_tickets: _Memo[tuple[int, bytes], TicketRecord] = _Memo(8192)
_facts: _Memo[bytes, PersonFacts] = _Memo(8192)


def forget_decoded() -> None:
    """Drop every memoized value (after an erasure: nothing of an erased person lingers)."""
    _tickets.clear()
    _facts.clear()


def _t(value: datetime | None) -> str | None:
    return None if value is None else codec.format_time(value)


def _pt(value: str | None) -> datetime | None:
    return None if value is None else codec.parse_time(value)


def dump_ticket(record: TicketRecord) -> bytes:
    """Compact positional form: [version, reason, risk, last_risk_at, observations, brand,
    words]; the version's last element, ``brand_id``, and the record's ``brand`` (the latest
    version that named one: [updated_at, key, brand_id], or null) are absent from records
    written before them; ``words`` ([source, confidence, texts]: how the reason was found and
    the ticket's texts, docs/reasons.md) is there only when a rule or the model found the
    reason or the ticket has texts."""
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
            v.brand_id,
        ]
    fields: list[Any] = [
        version,
        record.reason,
        record.risk,
        record.last_risk_at,
        sorted(record.observations),
    ]
    words = [record.source, record.confidence, sorted(record.texts)]
    if record.brand is not None or words[0] or words[2]:
        fields.append(None if record.brand is None else list(record.brand))
    if words[0] or words[2]:
        fields.append(words)
    blob = codec.exact(orjson.dumps(fields, option=orjson.OPT_UTC_Z))
    if _ticket_round_trips(record):
        _tickets.put((record.ticket_id, blob), record)
    return blob


def _ticket_round_trips(record: TicketRecord) -> bool:
    """Whether ``load_ticket`` of the record's blob gives back an equal record, down to the
    types and time zones the engine can observe (so the record itself may stand for it)."""
    v = record.version
    if v is not None:
        if v.at != v.updated_at or not (
            v.at.tzinfo is UTC and v.updated_at.tzinfo is UTC and v.created_at.tzinfo is UTC
        ):
            return False
        if type(v.tags) is not tuple or type(v.requester) is not tuple:
            return False
        if type(v.custom_fields) is not tuple or not all(
            type(pair) is tuple and len(pair) == 2 and type(pair[1]) is str
            for pair in v.custom_fields
        ):
            return False
    if record.last_risk_at is not None and record.last_risk_at.tzinfo is not UTC:
        return False
    if record.brand is not None and record.brand[0].tzinfo is not UTC:
        return False
    if not all(p[0].tzinfo is UTC and type(p[3]) is tuple for p in record.texts):
        return False
    return all(at.tzinfo is UTC for at, _ in record.observations)


def load_ticket(ticket_id: int, blob: bytes) -> TicketRecord:
    if type(blob) is not bytes:
        blob = bytes(blob)
    key = (ticket_id, blob)
    record = _tickets.get(key)
    if record is None:
        record = _decode_ticket(ticket_id, blob)
        _tickets.put(key, record)
    return record


def _decode_ticket(ticket_id: int, blob: bytes) -> TicketRecord:
    raw, reason, risk, last_risk_at, observations, *rest = orjson.loads(blob)
    parse = codec.parse_time
    version = None
    if raw is not None:
        key, tid, created, updated, status, priority, tags, subject, channel, req, who, cf = raw[
            :12
        ]
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
            raw[12] if len(raw) > 12 else None,  # brand_id: absent from records before it
        )
    brand: BrandSeen | None = None
    if rest and rest[0] is not None:
        at, key, brand_id = rest[0]
        brand = (parse(at), key, brand_id)
    elif not rest and version is not None and version.brand_id is not None:
        brand = (version.updated_at, version.key, version.brand_id)  # written before ``brand``
    source, confidence, texts = rest[1] if len(rest) > 1 else ("", None, ())
    return TicketRecord(
        ticket_id,
        version,
        reason,
        risk,
        None if last_risk_at is None else parse(last_risk_at),
        frozenset((parse(at), status) for at, status in observations),
        brand,
        source=source,
        confidence=confidence,
        texts=frozenset(
            (parse(at), key, author, tuple(terms), sentiment, language)
            for at, key, author, terms, sentiment, language in texts
        ),
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
    blob = codec.exact(
        orjson.dumps(
            {
                "rating": _dump_latest(facts.rating),
                "health": _dump_latest(facts.health),
                "consent": {purpose: _dump_latest(latest) for purpose, latest in facts.consent},
                "override": _dump_latest(facts.override),
                # only when present: facts stored before deletions existed keep their bytes
                **(
                    {
                        "deleted_users": {u: _dump_latest(x) for u, x in facts.deleted_users},
                        "deleted": _dump_latest(facts.deleted),
                    }
                    if facts.deleted_users
                    else {}
                ),
            }
        )
    )
    if _facts_round_trip(facts):
        _facts.put(blob, facts)
    return blob


_SCALARS = (str, int, bool, type(None))


def _facts_round_trip(facts: PersonFacts) -> bool:
    """Whether ``load_facts`` of the facts' blob gives back equal facts (see tickets)."""
    consent = facts.consent
    if consent != tuple(sorted(consent, key=lambda item: item[0])):
        return False
    if facts.deleted_users != tuple(sorted(facts.deleted_users, key=lambda item: item[0])):
        return False
    for latest in (
        facts.rating,
        facts.health,
        facts.override,
        facts.deleted,
        *(c[1] for c in consent),
        *(d[1] for d in facts.deleted_users),
    ):
        if latest is not None and (
            latest.at.tzinfo is not UTC
            or type(latest.key) is not str
            or type(latest.value) not in _SCALARS
        ):
            return False
    return True


def load_facts(blob: bytes | None) -> PersonFacts:
    if not blob:
        return PersonFacts()
    if type(blob) is not bytes:
        blob = bytes(blob)
    facts = _facts.get(blob)
    if facts is None:
        facts = _decode_facts(blob)
        _facts.put(blob, facts)
    return facts


def _decode_facts(blob: bytes) -> PersonFacts:
    data = orjson.loads(blob)
    consent = tuple(
        sorted(
            (purpose, latest)
            for purpose, raw in data["consent"].items()
            if (latest := _load_latest(raw)) is not None
        )
    )
    deleted_users = tuple(
        sorted(
            (user_id, latest)
            for user_id, raw in (data.get("deleted_users") or {}).items()
            if (latest := _load_latest(raw)) is not None
        )
    )
    return PersonFacts(
        _load_latest(data["rating"]),
        _load_latest(data["health"]),
        consent,
        _load_latest(data.get("override")),
        deleted_users,
        _load_latest(data.get("deleted")),
    )


TIME_FIELDS = frozenset(name for name, kind in FIELD_TYPES.items() if kind == "time")


def _state_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return codec.format_time(value)
    if isinstance(value, date):
        return value.isoformat()  # as orjson writes a date
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dump_state(values: dict[str, Any]) -> bytes:
    """Times as ``codec.format_time`` writes them (orjson walks the dict, calling back for
    times only)."""
    return codec.exact(
        orjson.dumps(values, default=_state_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
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

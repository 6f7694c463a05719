"""Lossless JSON form of canonical events, for the event log and replays.

``encode(event)`` gives a plain dict (``{"kind": ..., ...}``) that ``decode`` turns back into
an equal event. Times travel as ISO 8601 strings with microseconds and ``Z``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from tactful.core.events import EVENT_KIND, EVENT_TYPES, Event, Identifier


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` (microseconds only when present)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"


# Times Tactful accepts from outside: rules add and subtract windows of up to years, so a
# time near year 1 or 9999 would overflow later (a 500 instead of a refusal).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_range(value: datetime) -> datetime:
    """``value`` (aware) when it lies in [EARLIEST, LATEST); ValueError otherwise."""
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"time out of range ({EARLIEST.year}-{LATEST.year - 1}): {value}")
    return value


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a missing offset or a time out of range is an error."""
    value = datetime.fromisoformat(text)
    tz = value.tzinfo
    if tz is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    try:
        return check_range(value if tz is UTC else value.astimezone(UTC))
    except OverflowError:  # 9999-12-31T23:59-05:00 does not fit in UTC
        raise ValueError(f"time out of range: {text!r}") from None


def dumps(event: Event) -> bytes:
    """The canonical JSON of an event (its kind is stored beside it)."""
    return exact(orjson.dumps(event, option=orjson.OPT_UTC_Z))


def exact(blob: bytes) -> bytes:
    """A copy of ``blob`` that occupies only its length: orjson's results hold a 4 KiB
    buffer each, so a batch's thousands of pending rows would otherwise take hundreds of MB."""
    return bytes(memoryview(blob))


def loads(kind: str, blob: bytes) -> Event:
    data = orjson.loads(blob)
    data["kind"] = kind
    return decode(data)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Identifier):
        return [value.kind, value.value]
    if isinstance(value, tuple):
        return [_encode_value(v) for v in value]
    return value


def encode(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": EVENT_KIND[type(event)]}
    for f in dataclasses.fields(event):
        out[f.name] = _encode_value(getattr(event, f.name))
    return out


def _identifier(value: Any) -> Identifier:
    if isinstance(value, dict):
        return Identifier(value["kind"], value["value"])
    return Identifier(value[0], value[1])


def _time(value: Any) -> datetime | None:
    return None if value is None else parse_time(value)


def _identifiers(value: Any) -> tuple[Identifier, ...]:
    return tuple(_identifier(v) for v in value)


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value)


# How a field's JSON value is read back, by field name (any other list becomes a tuple).
_READ: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(("at", "created_at", "updated_at", "until"), _time),
    "person": _identifier,
    "requester": _identifiers,
    **dict.fromkeys(("custom_fields", "fields", "properties"), _pairs),
}


@cache
def _reader(kind: str) -> tuple[type[Event], tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    """The event class of ``kind`` and each of its fields with how it is read (looked up
    once per kind, not once per event: ``loads`` runs for every event a replay or a fold by
    person reads back)."""
    cls = EVENT_TYPES[kind]
    return cls, tuple((f.name, _READ.get(f.name)) for f in dataclasses.fields(cls))


def decode(data: dict[str, Any]) -> Event:
    cls, fields = _reader(data["kind"])
    kwargs: dict[str, Any] = {}
    for name, read in fields:
        if name not in data:
            continue  # the field's default
        value = data[name]
        if read is not None:
            value = read(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)

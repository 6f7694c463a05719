"""Lossless JSON form of canonical events, for the event log and replays.

``encode(event)`` gives a plain dict (``{"kind": ..., ...}``) that ``decode`` turns back into
an equal event. Times travel as ISO 8601 strings with microseconds and ``Z``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from tactful.core.events import EVENT_KIND, EVENT_TYPES, Event, Identifier


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` (microseconds only when present)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time; a missing offset is an error (naive times are rejected)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return value.astimezone(UTC)


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


_TIME_FIELDS = {"at", "created_at", "updated_at"}
_IDENTIFIER_FIELDS = {"person"}
_IDENTIFIER_TUPLE_FIELDS = {"requester"}
_PAIR_FIELDS = {"custom_fields", "fields", "properties"}


def decode(data: dict[str, Any]) -> Event:
    cls = EVENT_TYPES[data["kind"]]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _TIME_FIELDS:
            value = parse_time(value)
        elif f.name in _IDENTIFIER_FIELDS:
            value = Identifier(value[0], value[1])
        elif f.name in _IDENTIFIER_TUPLE_FIELDS:
            value = tuple(Identifier(k, v) for k, v in value)
        elif f.name in _PAIR_FIELDS:
            value = tuple((str(k), str(v)) for k, v in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)

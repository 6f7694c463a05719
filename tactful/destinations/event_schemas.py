"""JSON Schemas (draft 2020-12) of the events Tactful sends out, one per event type.

They describe the webhook body (the Standard Webhooks envelope ``{"type", "timestamp",
"data"}``, ``tactful.destinations.webhook.payload``); the warehouse ``events`` table and the
analytics tools receive the same ``data`` fields. Identifiers use the HTTP API's names
(``email``, ``phone``, ``external_id``, ``zendesk_user_id``). The same schemas are in
``docs/schemas/<type>.json`` (a test keeps them equal) and every payload the destinations
emit in the tests is validated against them. Fields may be added in later versions
(``additionalProperties`` stays open), never renamed or removed without a new type.
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any

from tactful.core.messages import MembershipChanged, PersonErased, StateChanged
from tactful.core.state import FIELD_TYPES, STATE_FIELDS

TIME = {"type": "string", "format": "date-time"}
IDENTIFIERS: dict[str, Any] = {
    "type": "object",
    "description": "The identifiers the person consented to share, by kind (only kinds known).",
    "properties": {
        kind: {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
        for kind in ("email", "phone", "external_id", "zendesk_user_id")
    },
    "additionalProperties": False,
}


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "time": {"type": "string", "format": "date-time"},
    "list": {"type": "array", "items": {"type": "string"}},
}


def _state_value(f: Field[Any]) -> dict[str, Any]:
    """One support-state field as it travels (``SupportState``: type, and null when blank)."""
    schema = dict(_JSON_TYPES[FIELD_TYPES[f.name]])
    if f.default is None:
        schema["type"] = [schema["type"], "null"]
    return schema


# The support-state fields (``tactful.core.state.SupportState``, their one definition).
STATE_VALUES = {f.name: _state_value(f) for f in STATE_FIELDS}


def _envelope(event_type: str, description: str, data: dict[str, Any]) -> dict[str, Any]:
    required = ["person_id", "identifiers", "occurred_at", *data.pop("required", [])]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tactful.dev/schemas/{event_type}.json",
        "title": event_type,
        "description": description,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": event_type},
            "timestamp": TIME,
            "data": {
                "type": "object",
                "required": required,
                "properties": {
                    "person_id": {"type": "string", "pattern": "^p_"},
                    "identifiers": IDENTIFIERS,
                    "occurred_at": TIME,
                    **data,
                },
            },
        },
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    StateChanged.TOPIC: _envelope(
        StateChanged.TOPIC,
        "A person's support state (product.md section 3 fields) changed.",
        {
            "required": ["old_state", "new_state", "changed", "values"],
            "old_state": {"type": ["string", "null"]},
            "new_state": {"type": ["string", "null"]},
            "changed": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "values": {
                "type": "object",
                "description": "The new value of each changed field.",
                "properties": STATE_VALUES,
            },
        },
    ),
    MembershipChanged.TOPIC: _envelope(
        MembershipChanged.TOPIC,
        "A person entered or left a segment (holdout members' changes are never sent).",
        {
            "required": ["segment", "change", "rule"],
            "segment": {"type": "string", "minLength": 1},
            "change": {"enum": ["entered", "exited"]},
            "holdout": {"type": "boolean"},
            "rule": {"type": "string"},
            "detail": {"type": "string"},
        },
    ),
    PersonErased.TOPIC: _envelope(
        PersonErased.TOPIC,
        "Tactful erased a person: forget them. Carries no identifiers.",
        {"identifiers": {"type": "object", "maxProperties": 0}},
    ),
}

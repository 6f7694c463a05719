"""The published OpenAPI 3.1 document (``GET /openapi.json``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from tactful import __version__
from tactful.web.api import EventsIn


def _json(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"application/json": {"schema": schema or {"type": "object"}}}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": _json(schema)}


ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "required": ["error"],
}
AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


@cache
def openapi_document() -> dict[str, Any]:
    events_schema = EventsIn.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = events_schema.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tactful",
            "version": __version__,
            "description": "Support-aware marketing: Zendesk support state and segments.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"EventsIn": events_schema, "Error": ERROR, **defs},
        },
        "paths": {
            "/webhooks/zendesk": {
                "post": {
                    "summary": "Receive a signed Zendesk webhook (event subscription or trigger)",
                    "parameters": [
                        {"name": h, "in": "header", "required": r, "schema": {"type": "string"}}
                        for h, r in (
                            ("X-Zendesk-Webhook-Signature", True),
                            ("X-Zendesk-Webhook-Signature-Timestamp", True),
                            ("X-Zendesk-Webhook-Invocation-Id", False),
                        )
                    ],
                    "requestBody": {"required": True, "content": _json()},
                    "responses": {
                        "200": _resp("stored and applied (or a harmless duplicate)"),
                        "202": _resp("not JSON: kept; the ticket will be fetched"),
                        "400": _resp("malformed body", ERROR),
                        "401": _resp("missing, wrong or stale signature", ERROR),
                        "413": _resp("body over 1 MiB", ERROR),
                    },
                }
            },
            "/api/people/{key}": {
                "get": {
                    "summary": "One person: identifiers, state, segments, history, consent",
                    "security": AUTH,
                    "parameters": [
                        {
                            "name": "key",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "email, phone, external id, Zendesk user id or "
                            "person id",
                        },
                        {
                            "name": "now",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date-time"},
                            "description": "preview as of this time; changes nothing",
                        },
                    ],
                    "responses": {
                        "200": _resp("the person"),
                        "400": _resp("bad now", ERROR),
                        "401": _resp("missing or wrong bearer token", ERROR),
                        "404": _resp("no such person", ERROR),
                        "409": _resp("the key matches several persons", ERROR),
                    },
                }
            },
            "/api/segments": {
                "get": {
                    "summary": "Segments with their sizes, and support-state counts",
                    "security": AUTH,
                    "responses": {"200": _resp("segments"), "401": _resp("unauthorized", ERROR)},
                }
            },
            "/api/segments/{name}/members": {
                "get": {
                    "summary": "Members of a segment, paged by person id",
                    "security": AUTH,
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _resp("a page of members; `next` is the cursor for the next"),
                        "400": _resp("bad limit", ERROR),
                        "401": _resp("unauthorized", ERROR),
                        "404": _resp("no such segment", ERROR),
                    },
                }
            },
            "/api/events": {
                "post": {
                    "summary": "Health, consent and outcome events from other systems",
                    "security": AUTH,
                    "requestBody": {
                        "required": True,
                        "content": _json({"$ref": "#/components/schemas/EventsIn"}),
                    },
                    "responses": {
                        "200": _resp("committed"),
                        "401": _resp("unauthorized", ERROR),
                        "413": _resp("body over 1 MiB", ERROR),
                        "422": _resp("invalid events; nothing was applied", ERROR),
                    },
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _resp("ok")}}},
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (tactful_*)",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
    }

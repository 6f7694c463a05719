"""Fake Segment, Amplitude and Mixpanel ingestion APIs (Starlette), for tests and demos.

Each checks what its vendor documents and stores accepted events by the vendor's dedupe key
(``snapshot()``): a resend leaves the store as it was.

- ``FakeSegment``: ``POST /v1/batch``, HTTP Basic ``write_key:``; 400 when the request is
  over 500 KB, a message over 32 KB or more than 2,500 messages (Segment itself answers 200
  and drops the messages over the count); invalid messages (no ``userId``/``anonymousId``,
  track without ``event``, ``messageId`` missing or ≥ 100 characters) are answered 200 and
  dropped, as Segment does. Stored by ``messageId``.
- ``FakeAmplitude``: ``POST /2/httpapi`` with ``api_key`` in the body; 413 over 2,000 events
  or 1 MB; a 400 naming, per field, the index of the *first* bad event
  (``events_with_missing_fields``/``events_with_invalid_fields``) ingests nothing. Checks
  ``event_type``, ``user_id`` (or ``device_id``) of at least ``options.min_id_length`` (5)
  characters, integer ``time``. Stored by ``insert_id``.
- ``FakeMixpanel``: ``POST /import?strict=1&project_id=…``, HTTP Basic service account; 413
  over 2 MB, 400 over 2,000 events; with ``strict=1`` invalid events are listed in
  ``failed_records`` (``index``, ``insert_id``, ``field``, ``message``) and the valid ones
  are ingested (a partial success). Stored by (event, distinct_id, time, ``$insert_id``).

Every fake records requests, answers ``fail_next(n, status, retry_after)`` after checking
authentication, and fails events whose dedupe id was ``poison()``-ed (per-item errors).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.http.auth import basic_auth_header
from tactful.testing.fakes.base import FakeBase


class FakeVendor(FakeBase):
    """Shared plumbing: one POST route, a lock, the request log and injected faults."""

    path = "/"
    max_events = 1

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[Any, dict[str, Any]] = {}
        self.poisoned: set[str] = set()
        self.app = Starlette(routes=[Route(self.path, self._endpoint, methods=["POST"])])

    def poison(self, *dedupe_ids: str) -> None:
        with self.lock:
            self.poisoned.update(dedupe_ids)

    def snapshot(self) -> dict[Any, dict[str, Any]]:
        with self.lock:
            return dict(self.events)

    def max_items_per_request(self) -> int:
        return self.max_events

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            if not self.authorized(request, body):
                response: Response = self.unauthorized()
            else:
                response = self._injected(_fault) or self.handle(request, body)
            self._record(request, body, response.status_code)
        return response

    def authorized(self, request: Request, body: bytes) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Response:
        return JSONResponse({"code": 401, "error": "Invalid credentials"}, 401)

    def handle(self, request: Request, body: bytes) -> Response:
        raise NotImplementedError


def _fault(status: int) -> JSONResponse:
    return JSONResponse({"code": status, "error": "injected fault"}, status)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class FakeSegment(FakeVendor):
    path = "/v1/batch"
    max_events = 2500
    max_request_bytes = 500_000
    max_message_bytes = 32 * 1024

    def __init__(self, write_key: str = "segment-write-key") -> None:
        super().__init__()
        self.write_key = write_key
        self.dropped: list[dict[str, Any]] = []

    def authorized(self, request: Request, body: bytes) -> bool:
        return request.headers.get("authorization") == basic_auth_header(self.write_key, "")

    def handle(self, request: Request, body: bytes) -> Response:
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("batch"), list):
            return JSONResponse({"error": "Invalid JSON"}, 400)
        batch: list[Any] = data["batch"]
        too_big = any(len(orjson.dumps(m)) > self.max_message_bytes for m in batch)
        if len(body) > self.max_request_bytes or too_big or len(batch) > self.max_events:
            return JSONResponse({"error": "payload is too large"}, 400)
        for message in batch:
            if self._valid(message):
                self.events.setdefault(message["messageId"], message)
            else:
                self.dropped.append(message)
        return JSONResponse({"success": True})

    def _valid(self, m: Any) -> bool:
        return (
            isinstance(m, dict)
            and m.get("type") in ("track", "identify", "page", "screen", "group", "alias")
            and bool(m.get("userId") or m.get("anonymousId"))
            and (m["type"] != "track" or bool(m.get("event")))
            and isinstance(m.get("messageId"), str)
            and 0 < len(m["messageId"]) < 100
            and m["messageId"] not in self.poisoned
        )


class FakeAmplitude(FakeVendor):
    path = "/2/httpapi"
    max_events = 2000
    max_request_bytes = 1_000_000

    def __init__(self, api_key: str = "amplitude-api-key") -> None:
        super().__init__()
        self.api_key = api_key

    def authorized(self, request: Request, body: bytes) -> bool:
        data = _json(body)
        return not isinstance(data, dict) or data.get("api_key") in (None, self.api_key)

    def unauthorized(self) -> Response:
        return _amp(400, "Invalid API key")

    def handle(self, request: Request, body: bytes) -> Response:
        data = _json(body)
        if not isinstance(data, dict):
            return _amp(400, "Invalid JSON request body")
        for field in ("api_key", "events"):
            if field not in data:
                return _amp(400, "Request missing required field", missing_field=field)
        events = data["events"]
        if len(body) > self.max_request_bytes or len(events) > self.max_events:
            return _amp(413, "Payload too large")
        min_len = int((data.get("options") or {}).get("min_id_length", 5))
        missing: dict[str, list[int]] = {}
        invalid: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            for field, problem in self._problems(event, min_len):
                target = missing if problem == "missing" else invalid
                target.setdefault(field, [i])  # Amplitude names the first bad event per field
        if missing or invalid:
            extra: dict[str, Any] = {}
            if missing:
                extra["events_with_missing_fields"] = missing
            if invalid:
                extra["events_with_invalid_fields"] = invalid
            return _amp(400, "Invalid field values on some events", **extra)
        for event in events:
            self.events.setdefault(event.get("insert_id") or f"#{len(self.events)}", event)
        return JSONResponse(
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(body),
                "server_upload_time": 0,
            }
        )

    def _problems(self, event: Any, min_len: int) -> list[tuple[str, str]]:
        if not isinstance(event, dict):
            return [("event", "invalid")]
        out: list[tuple[str, str]] = []
        if not event.get("event_type"):
            out.append(("event_type", "missing"))
        ids = [event.get(k) for k in ("user_id", "device_id") if event.get(k) is not None]
        if not ids:
            out.append(("user_id", "missing"))
        elif any(not isinstance(v, str) or len(v) < min_len for v in ids):
            out.append(("user_id", "invalid"))
        if "time" in event and not isinstance(event["time"], int):
            out.append(("time", "invalid"))
        if event.get("insert_id") in self.poisoned:
            out.append(("event_properties", "invalid"))
        return out


def _amp(code: int, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code, "error": error, **extra}, code)


_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")


class FakeMixpanel(FakeVendor):
    path = "/import"
    max_events = 2000
    max_request_bytes = 2 * 1024 * 1024

    def __init__(
        self, project_id: str = "12345", user: str = "sa.user", secret: str = "sa-secret"
    ) -> None:
        super().__init__()
        self.project_id, self.user, self.secret = project_id, user, secret

    def authorized(self, request: Request, body: bytes) -> bool:
        return request.headers.get("authorization") == basic_auth_header(
            self.user, self.secret
        ) and request.query_params.get("project_id") == str(self.project_id)

    def handle(self, request: Request, body: bytes) -> Response:
        if len(body) > self.max_request_bytes:
            return _mp(413, "request body too large")
        events = _json(body)
        if not isinstance(events, list):
            return _mp(400, "invalid JSON: expected an array of events")
        if len(events) > self.max_events:
            return _mp(400, f"too many events: at most {self.max_events} a request")
        failed: list[dict[str, Any]] = []
        for i, event in enumerate(events):
            problem = self._problem(event)
            if problem is None:
                p = event["properties"]
                key = (event["event"], p["distinct_id"], p["time"], p["$insert_id"])
                self.events.setdefault(key, event)
            else:
                insert_id = (event.get("properties") or {}).get("$insert_id", "")
                failed.append(
                    {"index": i, "insert_id": insert_id, "field": problem[0], "message": problem[1]}
                )
        imported = len(events) - len(failed)
        if failed and request.query_params.get("strict") == "1":
            return _mp(
                400,
                "some data points in the request failed validation",
                num_records_imported=imported,
                failed_records=failed,
            )
        return JSONResponse({"code": 200, "num_records_imported": imported, "status": "OK"})

    def _problem(self, event: Any) -> tuple[str, str] | None:
        if not isinstance(event, dict) or not isinstance(event.get("properties"), dict):
            return ("properties", "'properties' is required")
        p = event["properties"]
        if not event.get("event"):
            return ("event", "'event' must be a non-empty string")
        if not isinstance(p.get("time"), int):
            return ("properties.time", "'properties.time' must be seconds or ms since epoch")
        if not isinstance(p.get("distinct_id"), str):
            return ("properties.distinct_id", "'properties.distinct_id' must be a string")
        insert_id = p.get("$insert_id")
        if not isinstance(insert_id, str) or not _INSERT_ID.fullmatch(insert_id):
            return ("properties.$insert_id", "'$insert_id' must be 1-36 alphanumerics or '-'")
        if insert_id in self.poisoned:
            return ("properties", "rejected by the test (poisoned)")
        return None


def _mp(code: int, error: str, **extra: Any) -> JSONResponse:
    status = "Bad Request" if code == 400 else "Error"
    return JSONResponse({"code": code, "error": error, "status": status, **extra}, code)

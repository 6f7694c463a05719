"""A fake Klaviyo JSON:API: profile import, events, deletion jobs, subscriptions, lists.

Validates ``Authorization: Klaviyo-API-Key <key>``, a ``revision`` header
(``YYYY-MM-DD[.suffix]``), a JSON:API content type and document shape (``data.type``,
``data.attributes``), the 100 kB profile payload limit, one identifier on deletion jobs and
the metric name length. Profiles are upserted by email (case-insensitive) or external id;
events are recorded once per (profile, metric, ``unique_id``). Errors use Klaviyo's
``{"errors": [{"id", "status", "code", "title", "detail", "source"}]}``; ``fail_next`` and
an optional burst limit answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.base import FakeBase

PROFILE_BYTES, EVENT_BYTES = 100_000, 5_000_000
REVISION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?")
FILTER = re.compile(r'equals\((email|phone_number|external_id|id),"((?:[^"\\]|\\.)*)"\)')
IDENTIFIERS = ("email", "phone_number", "external_id")
DUPLICATE = "A profile already exists with one of these identifiers."


class KlaviyoError(Exception):
    def __init__(self, status: int, code: str, detail: str, pointer: str = "/data/") -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.pointer = status, code, detail, pointer


class FakeKlaviyo(FakeBase):
    def __init__(self, api_key: str = "pk_test", burst_per_second: int | None = None) -> None:
        super().__init__()
        self.api_key, self.burst = api_key, burst_per_second
        self.profiles: dict[str, dict[str, Any]] = {}  # profile id -> {"attributes", "consent"}
        self.events: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}  # list id -> {"name", "members": set}
        self.deletion_jobs: list[dict[str, Any]] = []
        self._window: list[float] = []
        methods = ["GET", "POST", "PATCH", "DELETE"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    # -- test controls -----------------------------------------------------------------------

    def max_items_per_request(self) -> int:
        return 1  # profile import and create event take one resource each

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            profiles = {self._key(p): json.loads(json.dumps(p)) for p in self.profiles.values()}
            return {"profiles": profiles, "events": json.loads(json.dumps(self.events))}

    def profile(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._find("email", email)
            return None if found is None else json.loads(json.dumps(self.profiles[found]))

    def add_to_list(self, email: str, list_id: str, name: str) -> None:
        with self.lock:
            pid = self._find("email", email)
            assert pid is not None, "unknown profile"
            self.lists.setdefault(list_id, {"name": name, "members": set()})["members"].add(pid)

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            try:
                response = self._answer(request, body)
            except KlaviyoError as e:
                response = _errors(e.status, e.code, e.detail, e.pointer)
            self._record(request, body, response.status_code)
        return response

    def _answer(self, request: Request, raw: bytes) -> Response:
        if self._faults:
            status, retry_after = self._faults.popleft()
            return _errors(status, "injected", f"injected {status}", retry_after=retry_after)
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 1.0]
        if self.burst is not None and len(self._window) >= self.burst:
            detail = "Request was throttled. Expected available in 1 second."
            return _errors(429, "throttled", detail, retry_after=1)
        self._window.append(now)
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            raise KlaviyoError(401, "not_authenticated", "Missing or invalid private key.")
        if not REVISION.fullmatch(request.headers.get("revision", "")):
            raise _invalid("Missing or invalid revision header.", "")
        method, path = request.method, request.url.path.rstrip("/")
        body: Any = None
        if method in ("POST", "PATCH") or raw:
            media = request.headers.get("content-type", "").split(";")[0].strip()
            if media not in ("application/vnd.api+json", "application/json"):
                raise KlaviyoError(415, "unsupported_media_type", f"Unsupported {media!r}.")
            limit = EVENT_BYTES if path == "/api/events" else PROFILE_BYTES
            if len(raw) > limit:
                raise KlaviyoError(413, "payload_too_large", f"Payload over {limit} bytes.")
            try:
                body = json.loads(raw)
            except ValueError:
                raise _invalid("Request body is not valid JSON.", "") from None
        return self._route(method, path, body, dict(request.query_params))

    def _route(self, method: str, path: str, body: Any, query: dict[str, str]) -> Response:
        if (method, path) == ("POST", "/api/profile-import"):
            pid, created = self._upsert(_resource(body, "profile"))
            return JSONResponse({"data": self._resource(pid)}, 201 if created else 200)
        if (method, path) == ("POST", "/api/events"):
            return self._event(_resource(body, "event"))
        if (method, path) == ("POST", "/api/data-privacy-deletion-jobs"):
            return self._delete(
                _dig(_resource(body, "data-privacy-deletion-job"), "profile", "data")
            )
        if (method, path) == ("GET", "/api/profiles"):
            match = FILTER.fullmatch(query.get("filter", ""))
            if not match:
                raise _invalid("Unsupported filter.", "")
            hit = self._find(match.group(1), match.group(2).replace('\\"', '"'))
            subs = "subscriptions" in query.get("additional-fields[profile]", "")
            return JSONResponse({"data": [self._resource(hit, subs)] if hit else [], "links": {}})
        if method == "POST" and path.startswith("/api/profile-subscription-bulk-"):
            return self._subscriptions(path, body)
        if match := re.fullmatch(r"/api/profiles/([^/]+)(/lists)?", path):
            return self._profile_item(method, match.group(1), bool(match.group(2)), body)
        match = re.fullmatch(r"/api/lists/([^/]+)/relationships/profiles", path)
        if match and method == "DELETE":
            members = self.lists.get(match.group(1), {}).get("members", set())
            for ref in _dig(body, "data") or []:
                members.discard(_dig(ref, "id"))
            return Response(status_code=204)
        raise KlaviyoError(404, "not_found", f"No route {method} {path}.", "")

    def _event(self, attrs: dict[str, Any]) -> Response:
        name = _dig(attrs, "metric", "data", "attributes", "name")
        if not isinstance(name, str) or not name or len(name) >= 128:
            pointer = "/data/attributes/metric/data/attributes/name"
            raise _invalid("Metric name is required and must be under 128 characters.", pointer)
        if not isinstance(attrs.get("properties"), dict):
            raise _invalid("properties must be an object.", "/data/attributes/properties")
        moment = attrs.get("time") or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        try:
            parsed = time.strptime(moment.replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise _invalid("time must be an ISO 8601 datetime.", "/data/attributes/time") from None
        profile = _dig(attrs, "profile", "data", "attributes") or {}
        pid, _ = self._upsert({k: v for k, v in profile.items() if k in IDENTIFIERS})
        unique = attrs.get("unique_id") or time.strftime("%Y%m%d%H%M%S", parsed)
        key = f"{pid}|{name}|{unique}"
        if key not in self.events:  # "only the first processed event will be recorded"
            who = self._key(self.profiles[pid])
            record = {"profile": who, "metric": name, "time": moment}
            self.events[key] = {**record, "properties": attrs["properties"]}
        return Response(status_code=202)

    def _delete(self, profile: Any) -> Response:
        given = {k: v for k, v in (_dig(profile, "attributes") or {}).items() if v}
        if _dig(profile, "id"):
            given["id"] = profile["id"]
        if len(given) != 1:
            raise _invalid("Provide exactly one of email, phone_number or id.")
        field, value = next(iter(given.items()))
        self.deletion_jobs.append(given)
        self.profiles.pop(str(value if field == "id" else self._find(field, value)), None)
        return Response(status_code=202)

    def _subscriptions(self, path: str, body: Any) -> Response:
        unsubscribe = path.endswith("bulk-delete-jobs")
        job = f"profile-subscription-bulk-{'delete' if unsubscribe else 'create'}-job"
        people = _dig(_resource(body, job), "profiles", "data") or []
        if not people or len(people) > (100 if unsubscribe else 1000):
            raise _invalid("Too few or too many profiles in one call.", "/data/attributes/profiles")
        for person in people:
            attrs = _dig(person, "attributes") or {}
            consent = _dig(attrs, "subscriptions", "email", "marketing", "consent")
            if consent != ("UNSUBSCRIBED" if unsubscribe else "SUBSCRIBED") or not attrs.get(
                "email"
            ):
                raise _invalid("Invalid email marketing consent.", "/data/attributes/profiles")
            pid, _ = self._upsert({"email": attrs["email"]})
            self.profiles[pid]["consent"] = consent
        return Response(status_code=202)

    def _profile_item(self, method: str, pid: str, lists: bool, body: Any) -> Response:
        if pid not in self.profiles:
            raise KlaviyoError(404, "not_found", f"A profile with id {pid} does not exist.", "")
        if lists and method == "GET":
            data = [
                {"type": "list", "id": lid, "attributes": {"name": v["name"]}}
                for lid, v in sorted(self.lists.items())
                if pid in v["members"]
            ]
            return JSONResponse({"data": data, "links": {}})
        if method == "PATCH" and not lists:
            if _dig(body, "data", "id") != pid:
                raise KlaviyoError(
                    409, "conflict", "The body id does not match the URL.", "/data/id"
                )
            attrs = _resource(body, "profile")
            if attrs.get("email") and self._find("email", attrs["email"]) not in (None, pid):
                raise KlaviyoError(409, "duplicate_profile", DUPLICATE)
            self._apply(pid, attrs)
            return JSONResponse({"data": self._resource(pid)})
        if method == "GET" and not lists:
            return JSONResponse({"data": self._resource(pid)})
        raise KlaviyoError(405, "method_not_allowed", f"Method {method} not allowed.", "")

    # -- profiles ------------------------------------------------------------------------------

    def _find(self, field: str, value: str) -> str | None:
        if field == "id":
            return value if value in self.profiles else None
        for pid, profile in self.profiles.items():
            stored = profile["attributes"].get(field)
            if stored is not None and (
                stored.lower() == value.lower() if field == "email" else stored == value
            ):
                return pid
        return None

    def _upsert(self, attrs: dict[str, Any]) -> tuple[str, bool]:
        given = {k: attrs[k] for k in IDENTIFIERS if attrs.get(k)}
        if not given:
            raise _invalid("An email, phone_number or external_id is required.", "/data/attributes")
        if "email" in given and "@" not in str(given["email"]):
            raise _invalid("Invalid email address.", "/data/attributes/email")
        found = {hit for k, v in given.items() if (hit := self._find(k, str(v))) is not None}
        if len(found) > 1:
            raise KlaviyoError(409, "duplicate_profile", DUPLICATE)
        pid = found.pop() if found else f"01K{uuid.uuid4().hex[:23].upper()}"
        created = pid not in self.profiles
        if created:
            self.profiles[pid] = {"attributes": {"properties": {}}, "consent": "NEVER_SUBSCRIBED"}
        self._apply(pid, attrs)
        return pid, created

    def _apply(self, pid: str, attrs: dict[str, Any]) -> None:
        stored = self.profiles[pid]["attributes"]
        for name, value in attrs.items():
            if name == "properties" and isinstance(value, dict):
                for key, prop in value.items():
                    if prop is None:
                        stored["properties"].pop(key, None)  # null clears the field
                    else:
                        stored["properties"][key] = prop
            elif value is None:
                stored.pop(name, None)
            else:
                stored[name] = value

    def _resource(self, pid: str, subscriptions: bool = False) -> dict[str, Any]:
        profile = self.profiles[pid]
        attrs = {**profile["attributes"], "created": "2024-01-01T00:00:00+00:00"}
        if subscriptions:
            consent = profile["consent"]
            marketing = {"can_receive_email_marketing": consent == "SUBSCRIBED", "consent": consent}
            attrs["subscriptions"] = {"email": {"marketing": marketing}}
        return {"type": "profile", "id": pid, "attributes": attrs}

    def _key(self, profile: dict[str, Any]) -> str:
        attrs = profile["attributes"]
        return str(
            attrs.get("email") or attrs.get("external_id") or attrs.get("phone_number")
        ).lower()


def _resource(body: Any, kind: str) -> dict[str, Any]:
    """``data.attributes`` of a JSON:API document whose ``data.type`` is ``kind``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("type") != kind:
        raise _invalid(f"data.type must be {kind!r}.", "/data/type")
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        raise _invalid("data.attributes must be an object.", "/data/attributes")
    return attrs


def _invalid(detail: str, pointer: str = "/data/") -> KlaviyoError:
    return KlaviyoError(400, "invalid", detail, pointer)


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]…``, None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _errors(
    status: int, code: str, detail: str, pointer: str = "/data/", retry_after: int | None = None
) -> JSONResponse:
    error = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": detail}
    error["detail"] = detail
    if pointer:
        error["source"] = {"pointer": pointer}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return JSONResponse(
        {"errors": [error]}, status, headers=headers, media_type="application/vnd.api+json"
    )

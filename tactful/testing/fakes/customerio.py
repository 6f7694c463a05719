"""A fake Customer.io: Track API v2 batch and v1 identify, App API attribute/segment reads.

Validates what Customer.io documents: basic auth ``site_id:api_key`` (Track) and a bearer
App API key (App), 500 kB a batch request, 32 kB an entry, one identifier an entry, 300
attributes of at most 1000 bytes, event names of at most 100 bytes, event ``id`` a ULID.
Refused entries come back in a ``207`` with their ``batch_index``. People are upserted
(emails case-insensitive, newer ``timestamp`` wins per attribute), events are deduplicated
by ``id``, deletes remove the person and suppression also ignores the identifier from then
on. ``fail_next`` and an optional rate limit answer with ``Retry-After``.

Subscription topics (https://docs.customer.io/integrations/api/app/tag/subscription-center/
getTopics/): ``GET /v1/subscription_topics`` lists ``{"id", "identifier": "topic_<id>",
"name", "description", "subscribed_by_default"}``; a person's choices live in the
``cio_subscription_preferences`` attribute (``{"topics": {"topic_4": false}}``), updated
partially with JSON dot notation (``"cio_subscription_preferences.topics.topic_4": false``).
``GET /v1/customers/{id}/messages`` lists the deliveries sent to a person with their
``metrics`` (unix times of ``sent``, ``delivered``, ``opened``, ``clicked``).
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.clock import epoch_seconds
from tactful.testing.fakes.base import FakeBase

BATCH_BYTES, ENTRY_BYTES, VALUE_BYTES, MAX_ATTRIBUTES = 500_000, 32_000, 1000, 300
ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
ACTIONS = {"identify", "event", "delete", "suppress", "unsuppress"}


class FakeCustomerIO(FakeBase):
    def __init__(
        self,
        site_id: str = "site-1",
        api_key: str = "track-key",
        app_api_key: str = "app-key",
        rate_limit_per_second: int | None = None,
    ) -> None:
        super().__init__()
        self.site_id, self.api_key, self.app_api_key = site_id, api_key, app_api_key
        self.rate_limit = rate_limit_per_second
        self.people: dict[str, dict[str, Any]] = {}  # cio_id -> person
        self.events: dict[str, dict[str, Any]] = {}  # event id -> event
        self.suppressed: set[str] = set()
        self.segments: dict[str, list[dict[str, Any]]] = {}  # cio_id -> segments
        self.topics: dict[int, dict[str, Any]] = {}  # topic id -> topic
        self.deliveries: dict[str, list[dict[str, Any]]] = {}  # cio_id -> messages
        self._window: list[float] = []
        self._next_id = 0
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "PUT", "POST", "DELETE"])]
        )

    # -- test controls -----------------------------------------------------------------------

    def max_items_per_request(self) -> int:
        return 500  # Customer.io caps bytes (500 kB), not entries; this is the fake's test size

    def snapshot(self) -> dict[str, Any]:
        """What the callers sent: without the ``created_at`` this fake stamps a new person
        with from its own clock (two fakes fed alike a second apart hold the same)."""
        with self.lock:
            people = {
                self._key(p): {k: v for k, v in p["attributes"].items() if k != "created_at"}
                for p in self.people.values()
            }
            return {
                "people": people,
                "events": dict(self.events),
                "suppressed": sorted(self.suppressed),
            }

    def person(self, identifier: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._find(identifier)
            return None if found is None else dict(found["attributes"])

    def add_to_segment(self, email: str, segment_id: int, name: str) -> None:
        with self.lock:
            person = self._find(email)
            assert person is not None, "unknown person"
            self.segments.setdefault(person["identifiers"]["cio_id"], []).append(
                {"id": segment_id, "name": name, "type": "manual"}
            )

    def add_topic(self, topic_id: int, name: str, *, subscribed_by_default: bool = True) -> None:
        with self.lock:
            self.topics[topic_id] = {
                "id": topic_id,
                "identifier": f"topic_{topic_id}",
                "name": name,
                "description": "",
                "subscribed_by_default": subscribed_by_default,
            }

    def record_delivery(
        self, email: str, *, sent: int, opened: int | None = None, clicked: int | None = None
    ) -> None:
        """A message Customer.io sent the person, with the engagement it saw."""
        with self.lock:
            person = self._find(email)
            assert person is not None, "unknown person"
            metrics = {"sent": sent, "delivered": sent}
            metrics |= {k: v for k, v in (("opened", opened), ("clicked", clicked)) if v}
            cio_id = person["identifiers"]["cio_id"]
            self.deliveries.setdefault(cio_id, []).append(
                {
                    "id": f"msg-{len(self.deliveries)}",
                    "type": "email",
                    "created": sent,
                    "recipient": email,
                    "metrics": metrics,
                }
            )

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        return await self._serve(request, self._answer)

    def _answer(self, request: Request, body: bytes) -> Response:
        if self._faults:
            status, retry_after = self._faults.popleft()
            return _error(status, f"injected {status}", retry_after)
        now = time.monotonic()
        self._window = [t for t in self._window if now - t < 1.0]
        if self.rate_limit is not None and len(self._window) >= self.rate_limit:
            return _error(429, "rate limit exceeded", 1)
        self._window.append(now)
        path, method = request.url.path, request.method
        if path.startswith("/v1/"):
            if request.headers.get("authorization") != f"Bearer {self.app_api_key}":
                return _error(401, "Unauthorized request")
            return self._app_api(path, method, request.query_params.get("id_type", "id"))
        expected = base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _error(
                401, "Unauthorized request. Make sure that you provided the right credentials."
            )
        if len(body) > BATCH_BYTES and path == "/api/v2/batch":
            return _error(413, "batch requests must be 500kb or smaller")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "body is not valid JSON")
        if path == "/api/v2/batch" and method == "POST":
            return self._batch(data)
        match = re.fullmatch(r"/api/v1/customers/([^/]+)", path)
        if match and method == "PUT" and isinstance(data, dict):
            return self._identify_v1(request.path_params["path"].split("/")[-1], data)
        return _error(404, f"no route {method} {path}")

    def _batch(self, data: Any) -> Response:
        batch = data.get("batch") if isinstance(data, dict) else None
        if not isinstance(batch, list):
            refusal = {"reason": "invalid", "field": "batch", "message": "batch must be an array"}
            return JSONResponse({"errors": [refusal]}, 400)
        errors = []
        for index, entry in enumerate(batch):
            problem = _validate(entry)
            if problem is None:
                self._apply(entry)
            else:
                field, message = problem
                refusal = {"reason": "invalid", "field": field, "message": message}
                errors.append({"batch_index": index, **refusal})
        return JSONResponse({"errors": errors}, 207) if errors else JSONResponse({})

    def _apply(self, entry: dict[str, Any]) -> None:
        (kind, value), action = next(iter(entry["identifiers"].items())), entry["action"]
        if action == "unsuppress":
            self.suppressed.discard(str(value).lower())
            return
        if str(value).lower() in self.suppressed:
            return  # "Any future API calls or operations referencing the specified ID are ignored"
        person = self._find(str(value))
        if action in ("delete", "suppress"):
            if person is not None:
                del self.people[person["identifiers"]["cio_id"]]
            if action == "suppress":
                ids = person["identifiers"] if person else {kind: value}
                self.suppressed.update(str(v).lower() for k, v in ids.items() if k != "cio_id")
            return
        if person is None:
            self._create({kind: value}, {})
            person = self._find(str(value))
        assert person is not None
        if action == "identify":
            self._merge(person, entry.get("attributes") or {}, entry.get("timestamp"))
        else:
            event_id = entry.get("id") or f"noid-{len(self.events)}"
            if event_id not in self.events:
                self.events[event_id] = {
                    "person": self._key(person),
                    "name": entry["name"],
                    "timestamp": entry.get("timestamp"),
                    "attributes": entry.get("attributes") or {},
                }

    def _identify_v1(self, identifier: str, attrs: dict[str, Any]) -> Response:
        person = self._find(identifier)
        if person is None:
            if attrs.get("_update") or identifier.startswith("cio_"):
                return JSONResponse({})  # Customer.io drops it (an "Attribute Update Failure")
            kind = "email" if "@" in identifier else "id"
            self._create({kind: identifier}, {})
            person = self._find(identifier)
            assert person is not None
        new_email = attrs.get("email")
        if identifier.startswith("cio_") and new_email:
            other = self._find(str(new_email))
            if other is not None and other is not person:
                return JSONResponse({})  # identifier conflict: dropped, as Customer.io does
            person["identifiers"]["email"] = new_email
        self._merge(person, {k: v for k, v in attrs.items() if k != "_update"}, None)
        return JSONResponse({})

    def _app_api(self, path: str, method: str, id_type: str) -> Response:
        if path == "/v1/subscription_topics" and method == "GET":
            return JSONResponse({"topics": [dict(t) for _, t in sorted(self.topics.items())]})
        match = re.fullmatch(r"/v1/customers/([^/]+)/(attributes|segments|messages)", path)
        if not match or method != "GET":
            return _error(404, f"no route {method} {path}")
        identifier = match.group(1)
        if id_type == "email" and "@" not in identifier:
            return _error(400, "id_type email needs an email address")
        person = self._find(f"cio_{identifier}" if id_type == "cio_id" else identifier)
        if person is None:
            return _error(404, "The customer_id does not exist")
        cio_id = person["identifiers"]["cio_id"]
        if match.group(2) == "segments":
            return JSONResponse({"segments": self.segments.get(cio_id, [])})
        if match.group(2) == "messages":
            return JSONResponse({"messages": self.deliveries.get(cio_id, []), "next": ""})
        ids = person["identifiers"]
        attrs = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in person["attributes"].items()
        }
        unsubscribed = str(person["attributes"].get("unsubscribed", "")).lower() in ("true", "1")
        customer = {"id": ids.get("id"), "identifiers": dict(ids), "devices": []}
        customer["attributes"] = {**attrs, **{k: str(v) for k, v in ids.items()}}
        customer["timestamps"] = dict(person["stamps"])
        customer["unsubscribed"] = unsubscribed
        return JSONResponse({"customer": customer})

    # -- people ------------------------------------------------------------------------------

    def _find(self, identifier: str) -> dict[str, Any] | None:
        if identifier.startswith("cio_"):
            return self.people.get(identifier[4:])
        wanted = identifier.lower()
        for person in self.people.values():
            ids = person["identifiers"]
            if str(ids.get("email", "")).lower() == wanted or ids.get("id") == identifier:
                return person
        return None

    def _create(self, identifiers: dict[str, Any], attrs: dict[str, Any]) -> str:
        self._next_id += 1
        cio_id = f"{0x03000000 + self._next_id:08x}"
        now = int(epoch_seconds())
        self.people[cio_id] = {
            "identifiers": {**identifiers, "cio_id": cio_id},
            "attributes": {},
            "stamps": {},
        }
        self._merge(self.people[cio_id], {"created_at": now, **attrs}, None)
        return cio_id

    def _merge(self, person: dict[str, Any], attrs: dict[str, Any], timestamp: Any) -> None:
        stamp = timestamp if isinstance(timestamp, int) else int(epoch_seconds())
        for name, value in attrs.items():
            prefix = "cio_subscription_preferences."
            if name.startswith(prefix) and not (value is None or value == ""):
                # JSON dot notation: a partial update of the nested preferences
                node = person["attributes"].setdefault("cio_subscription_preferences", {})
                *parents, leaf = name[len(prefix) :].split(".")
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = value
                person["stamps"][name] = stamp
                continue
            if timestamp is not None and person["stamps"].get(name, 0) > stamp:
                continue  # an older update arriving late does not overwrite a newer one
            if value is None or value == "":
                person["attributes"].pop(name, None)
            else:
                person["attributes"][name] = value
            person["stamps"][name] = stamp

    def _key(self, person: dict[str, Any]) -> str:
        ids = person["identifiers"]
        return str(ids.get("email") or ids.get("id") or ids["cio_id"]).lower()


def _validate(entry: Any) -> tuple[str, str] | None:
    """(field, message) for an entry Customer.io would refuse."""
    if not isinstance(entry, dict) or entry.get("type") != "person":
        return "type", "only person entries are supported by this fake"
    if len(json.dumps(entry, separators=(",", ":")).encode()) > ENTRY_BYTES:
        return "entry", "each request in a batch must be 32kb or smaller"
    ids = entry.get("identifiers")
    if (
        not isinstance(ids, dict)
        or len(ids) != 1
        or next(iter(ids)) not in ("id", "email", "cio_id", "phone")
    ):
        return "identifiers", "give exactly one of id, email, cio_id or phone"
    if not isinstance(next(iter(ids.values())), str) or not next(iter(ids.values())).strip():
        return "identifiers", "identifier must be a non-empty string"
    action = entry.get("action")
    if action not in ACTIONS:
        return "action", f"unsupported action {action!r}"
    if "timestamp" in entry and not isinstance(entry["timestamp"], int):
        return "timestamp", "must be a unix timestamp (integer)"
    attrs = entry.get("attributes", {})
    if not isinstance(attrs, dict):
        return "attributes", "must be an object"
    if action == "event":
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.encode()) > 100:
            return "name", "event name must be 1-100 bytes"
        if "id" in entry and not (isinstance(entry["id"], str) and ULID.fullmatch(entry["id"])):
            return "id", "id must be a valid ULID"
    if action == "identify":
        if len(attrs) > MAX_ATTRIBUTES:
            return "attributes", "cannot identify more than 300 attributes in one request"
        for name, value in attrs.items():
            if len(name.encode()) > 150:
                return "attributes", "attribute name cannot be longer than 150 bytes"
            # Non-string values count as the compact JSON they arrive as (json.dumps's default
            # ", "/": " separators and \u escapes would overcount them).
            size = len(
                value.encode()
                if isinstance(value, str)
                else json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
            )
            if size > VALUE_BYTES:
                return (
                    "attributes",
                    f"value for attribute '{name}' cannot be longer than 1000 bytes",
                )
    return None


def _error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return JSONResponse({"meta": {"error": message}}, status, headers=headers)

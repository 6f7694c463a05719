"""Fake Meta Marketing API: the Custom Audience Users edge (Starlette), for tests and demos.

``POST`` and ``DELETE /{version}/{audience_id}/users`` with the fields ``access_token``
(form field, query parameter or ``Authorization: Bearer``), ``payload`` (JSON ``schema``:
one of the single keys or a list of multi-key keys; ``data``: rows of that many values) and
an optional ``session`` (JSON ``session_id``, ``batch_seq``, ``last_batch_flag``,
``estimated_num_total``). Checks, in Meta's terms (Graph error bodies, HTTP 400):

- token: code 190 (``OAuthException``); unknown audience: code 100 subcode 33;
- a missing or malformed ``payload``/``session``, rows not matching the schema, more than
  ``max_rows`` (10,000) rows: code 100;
- values: EMAIL/PHONE must be blank or SHA-256 hex, a row needs one non-blank key; bad rows
  are not stored and are counted in ``num_invalid_entries``/``invalid_entry_samples``
  (keyed by the offending value: how Meta keys its samples is not documented);
- ``throttle_next``: code 17 subcode 2446079 with ``X-Business-Use-Case-Usage``;
- ``refuse_removals_below``: a DELETE that would leave fewer members is refused with code
  200 subcode 1870047 ("Audience Size too Low").

Members are stored per audience as the set of their non-blank ``(key, value)`` pairs; a
removal drops every member sharing a pair with a removed row. ``snapshot()`` returns them.

``GET /{version}/{audience_id}?fields=…`` reads the Custom Audience
(https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/custom-audience):
``id``, ``name``, and ``approximate_count_lower_bound`` / ``approximate_count_upper_bound``
(Meta gives the size as a range; the fake's range is the member count rounded down and up to
two significant digits, or ``matched`` members when a test sets it); same token and unknown-
audience errors.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.base import FakeBase, RecordedRequest

VERSION = "v27.0"
MULTI_KEYS = frozenset(
    {"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST"}
    | {"ZIP", "MADID", "COUNTRY"}
)
SINGLE_KEYS = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID"})
UNHASHED = frozenset({"EXTERN_ID", "MADID", "MOBILE_ADVERTISER_ID"})
_HEX64 = re.compile(r"[0-9a-f]{64}")

Member = frozenset[tuple[str, str]]


class GraphError(Exception):
    def __init__(self, code: int, message: str, subcode: int | None = None, **extra: Any):
        super().__init__(message)
        self.body: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if subcode is not None:
            self.body["error_subcode"] = subcode
        self.body.update(extra, fbtrace_id="AFakeTraceId")


class FakeMeta(FakeBase):
    """In-memory Custom Audiences. ``base_url(root)`` is what the destination talks to."""

    def __init__(
        self,
        *,
        audience_ids: tuple[str, ...] = ("23850000000000000",),
        access_token: str = "meta-test-token",
        max_rows: int = 10_000,
        refuse_removals_below: int | None = None,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.max_rows = max_rows
        self.refuse_removals_below = refuse_removals_below
        self.audiences: dict[str, set[Member]] = {a: set() for a in audience_ids}
        self.sessions: list[dict[str, Any]] = []
        self._throttles: deque[int] = deque()
        self.matched: int | None = None  # the size Meta reports (default: the members)
        self.app = Starlette(
            routes=[
                Route("/{version}/{audience_id}/users", self._users, methods=["POST", "DELETE"]),
                Route("/{version}/{audience_id}", self._audience, methods=["GET"]),
            ]
        )

    @staticmethod
    def base_url(root: str) -> str:
        return f"{root.rstrip('/')}/{VERSION}"

    # -- FakeVendor

    def throttle_next(self, n: int, minutes: int = 1) -> None:
        """The next ``n`` requests hit the ad-account limit (code 17, HTTP 400)."""
        with self.lock:
            self._throttles.extend([minutes] * n)

    def snapshot(self) -> dict[str, frozenset[Member]]:
        with self.lock:
            return {audience: frozenset(members) for audience, members in self.audiences.items()}

    def max_items_per_request(self) -> int:
        return self.max_rows

    # -- the edge

    async def _users(self, request: Request) -> Response:
        body = await request.body()
        params = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        with self.lock:
            try:
                response = self._handle(request, params)
            except GraphError as exc:
                response = JSONResponse({"error": exc.body}, status_code=400)
            self._record(request, body, response.status_code)
        return response

    async def _audience(self, request: Request) -> Response:
        params = dict(request.query_params)
        with self.lock:
            response: Response
            try:
                if self._faults:  # injected faults hit the next request, whichever it is
                    raise _Injected(_fault(*self._faults.popleft()))
                if self._throttles:
                    self._throttles.popleft()
                    raise GraphError(17, "User request limit reached", 2446079, is_transient=True)
                members = self._members(request, params, "get")
                size = len(members) if self.matched is None else self.matched
                lower, upper = _bounds(size)
                known = {
                    "id": request.path_params["audience_id"],
                    "name": "Tactful audience",
                    "approximate_count_lower_bound": lower,
                    "approximate_count_upper_bound": upper,
                }
                fields = (params.get("fields") or "id").split(",")
                response = JSONResponse({f: known[f] for f in fields if f in known})
            except GraphError as exc:
                response = JSONResponse({"error": exc.body}, status_code=400)
            except _Injected as injected:
                response = injected.response
            self.requests.append(
                RecordedRequest(
                    "GET", request.url.path, dict(request.headers), b"", response.status_code
                )
            )
        return response

    def _members(self, request: Request, params: dict[str, str], verb: str) -> set[Member]:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        token = params.get("access_token") or (bearer if scheme.lower() == "bearer" else "")
        if token != self.access_token:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        audience_id = request.path_params["audience_id"]
        members = self.audiences.get(audience_id)
        if members is None:
            raise GraphError(
                100,
                f"Unsupported {verb} request. Object with ID '{audience_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation",
                33,
            )
        return members

    def _handle(self, request: Request, params: dict[str, str]) -> Response:
        if self._faults:
            return _fault(*self._faults.popleft())
        self._members(request, params, "post")  # token first, as Meta checks it
        if self._throttles:
            minutes = self._throttles.popleft()
            usage = [{"type": "custom_audience", "estimated_time_to_regain_access": minutes}]
            headers = {"X-Business-Use-Case-Usage": json.dumps({"1234": usage})}
            error = GraphError(17, "User request limit reached", 2446079, is_transient=True)
            return JSONResponse({"error": error.body}, status_code=400, headers=headers)
        audience_id = request.path_params["audience_id"]
        members = self._members(request, params, "post")
        schema, data = _payload(params.get("payload"), self.max_rows)
        session = _session(params.get("session"))
        rows, samples = _rows(schema, data)
        if request.method == "POST":
            members.update(rows)
        else:
            self._remove(members, rows)
        if session:
            self.sessions.append(session)
        return JSONResponse(
            {
                "audience_id": audience_id,
                "session_id": str(session.get("session_id", "")),
                "num_received": len(data),
                "num_invalid_entries": len(data) - len(rows),
                "invalid_entry_samples": samples,
            }
        )

    def _remove(self, members: set[Member], rows: list[Member]) -> None:
        pairs = {pair for row in rows for pair in row}
        gone = {member for member in members if member & pairs}
        floor = self.refuse_removals_below
        if gone and floor is not None and len(members) - len(gone) < floor:
            raise GraphError(
                200,
                "Permissions error",
                1870047,
                is_transient=False,
                error_user_title="Audience Size too Low",
                error_user_msg="You cannot remove users from this audience because it will "
                "result in a low audience size.",
            )
        members.difference_update(gone)


class _Injected(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("injected fault")
        self.response = response


def _bounds(size: int) -> tuple[int, int]:
    """``size`` rounded down and up to two significant digits (Meta reports a range)."""
    if size < 100:
        return size, size
    step = 10 ** (len(str(size)) - 2)
    lower = size // step * step
    return lower, lower if lower == size else lower + step


def _fault(status: int, retry_after: int | None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 429:
        error = GraphError(17, "User request limit reached", 2446079).body
    elif status >= 500:
        error = GraphError(
            2,
            "An unexpected error has occurred. Please retry your request later.",
            is_transient=True,
        ).body
    else:
        error = GraphError(100, "Invalid parameter").body
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _json_param(name: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise GraphError(100, f"(#100) param {name} must be JSON") from None


def _payload(text: str | None, max_rows: int) -> tuple[list[str], list[list[Any]]]:
    payload = _json_param("payload", text)
    if not isinstance(payload, dict):
        raise GraphError(100, "(#100) The parameter payload is required")
    schema, data = payload.get("schema"), payload.get("data")
    if isinstance(schema, str) and schema in SINGLE_KEYS and isinstance(data, list):
        schema, data = [schema], [[value] for value in data]
    if (
        not isinstance(schema, list)
        or not schema
        or any(key not in MULTI_KEYS for key in schema)
        or not isinstance(data, list)
        or any(not isinstance(row, list) or len(row) != len(schema) for row in data)
    ):
        raise GraphError(100, "(#100) Data is missing or does not match schema")
    if len(data) > max_rows:
        raise GraphError(100, f"(#100) payload.data: at most {max_rows} rows a request")
    return schema, data


def _session(text: str | None) -> dict[str, Any]:
    session = _json_param("session", text)
    if session is None:
        return {}
    ok = (
        isinstance(session, dict)
        and isinstance(session.get("session_id"), int)
        and isinstance(session.get("batch_seq"), int)
        and session["batch_seq"] >= 1
        and isinstance(session.get("last_batch_flag"), bool)
    )
    if not ok:
        raise GraphError(100, "(#100) session needs session_id, batch_seq, last_batch_flag")
    return dict(session)


def _rows(schema: list[str], data: list[list[Any]]) -> tuple[list[Member], dict[str, str]]:
    rows: list[Member] = []
    samples: dict[str, str] = {}
    for row in data:
        pairs = {(key, str(value)) for key, value in zip(schema, row, strict=True) if value}
        bad = next(
            (value for key, value in pairs if key not in UNHASHED and not _HEX64.fullmatch(value)),
            None,
        )
        if bad is not None:
            samples[bad] = "not a SHA-256 hash"
        elif not pairs:
            samples[json.dumps(row)] = "no key has a value"
        else:
            rows.append(frozenset(pairs))
    return rows, samples

"""Fake TikTok API for Business: the streaming audience API (Starlette), for tests and demos.

``POST /open_api/v1.3/segment/mapping/`` with the ``Access-Token`` header and a JSON body
``{"advertiser_ids", "action": "add" | "delete", "id_schema", "batch_data"}``. Like TikTok,
it answers HTTP 200 with ``{"code", "message", "request_id", "data"}`` and a non-zero code on
errors, checked in this order:

- 40105: the ``Access-Token`` header is missing or not the configured token;
- ``rate_limit_next``: 40100 ("Too many requests");
- 40002: a body that is not JSON, an ``action`` other than add/delete, an unknown
  ``id_schema`` entry, ``batch_data`` over ``max_rows`` rows (1,000 here: TikTok's own limit is
  not in what we could read), a row whose length is not ``len(id_schema)``, an entry that is
  neither ``{}`` nor ``{"id": <SHA-256 hex>, "audience_ids": [...]}``, an unknown audience;
- 40001: ``advertiser_ids`` without the configured advertiser.

``GET /open_api/v1.3/dmp/custom_audience/get/?advertiser_id=…&custom_audience_ids=["…"]``
("Obtain the details of specified audiences",
https://business-api.tiktok.com/portal/docs?id=1739940507792385; the field names as in
TikTok's own SDK listing of the endpoint) answers ``{"data": {"list": [{"audience_details":
{"audience_id", "name", "audience_type", "cover_num", "is_valid", "is_creator", "shared",
…}, "audience_history": []}]}}``: ``cover_num`` is the audience's users matched on TikTok
(here its stored identifiers, or ``matched`` when set). Same token and advertiser checks;
an unknown audience id is 40002.

A request is all or nothing. Members are stored per audience as ``(id type, hash)`` pairs;
``snapshot()`` returns them. ``fail_next`` answers an HTTP status instead (with
``Retry-After``) for the suite's transport-level checks.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.base import FakeBase

PATH = "/open_api/v1.3/segment/mapping/"
GET_PATH = "/open_api/v1.3/dmp/custom_audience/get/"
ID_TYPES = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256", "AAID_SHA256"})
_HEX64 = re.compile(r"[0-9a-f]{64}")

Pair = tuple[str, str]


class TikTokError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class FakeTikTok(FakeBase):
    """In-memory partner audiences of one advertiser."""

    def __init__(
        self,
        *,
        advertiser_id: str = "7000000000000000000",
        audience_ids: tuple[str, ...] = ("123456789",),
        access_token: str = "tiktok-test-token",
        max_rows: int = 1_000,
    ) -> None:
        super().__init__()
        self.advertiser_id = advertiser_id
        self.access_token = access_token
        self.max_rows = max_rows
        self.audiences: dict[str, set[Pair]] = {a: set() for a in audience_ids}
        self._rate_limited = 0
        self.matched: int | None = None  # cover_num to report instead of the stored count
        self.app = Starlette(
            routes=[
                Route(PATH, self._mapping, methods=["POST"]),
                Route(GET_PATH, self._details, methods=["GET"]),
            ]
        )

    @staticmethod
    def base_url(root: str) -> str:
        return f"{root.rstrip('/')}/open_api/v1.3"

    # -- FakeVendor

    def rate_limit_next(self, n: int) -> None:
        """The next ``n`` requests get code 40100 (HTTP 200), as TikTok throttles."""
        with self.lock:
            self._rate_limited += n

    def snapshot(self) -> dict[str, frozenset[Pair]]:
        with self.lock:
            return {audience: frozenset(pairs) for audience, pairs in self.audiences.items()}

    def max_items_per_request(self) -> int:
        return self.max_rows

    # -- the endpoint

    async def _mapping(self, request: Request) -> Response:
        return await self._serve(request, self._answer)

    async def _details(self, request: Request) -> Response:
        return await self._serve(request, lambda r, _: self._detail_answer(r))

    def _detail_answer(self, request: Request) -> Response:
        if fault := self._injected(_detail_fault):
            return fault
        if request.headers.get("access-token") != self.access_token:
            return _reply(40105, "Access token is incorrect or has been revoked.")
        if request.query_params.get("advertiser_id") != self.advertiser_id:
            return _reply(40001, "No permission to operate this advertiser.")
        try:
            wanted = json.loads(request.query_params.get("custom_audience_ids", ""))
        except ValueError:
            wanted = None
        if not isinstance(wanted, list) or not wanted:
            return _reply(40002, "custom_audience_ids: a JSON list of ids is required.")
        unknown = [a for a in wanted if a not in self.audiences]
        if unknown:
            return _reply(40002, f"custom_audience_ids: {unknown} not found.")
        found = [
            {
                "audience_details": {
                    "audience_id": a,
                    "name": f"Tactful {a}",
                    "audience_type": "Partner",
                    "cover_num": len(self.audiences[a]) if self.matched is None else self.matched,
                    "is_valid": True,
                    "is_expiring": False,
                    "is_creator": True,
                    "shared": False,
                },
                "audience_history": [],
            }
            for a in wanted
        ]
        return _reply(0, "OK", data={"list": found})

    def _answer(self, request: Request, body: bytes) -> Response:
        if fault := self._injected(_fault):
            return fault
        try:
            if request.headers.get("access-token") != self.access_token:
                raise TikTokError(40105, "Access token is incorrect or has been revoked.")
            if self._rate_limited:
                self._rate_limited -= 1
                raise TikTokError(40100, "Too many requests. Please retry in some time.")
            action, changes = self._parse(body)
        except TikTokError as exc:
            return _reply(exc.code, str(exc))
        for audience_id, pair in changes:
            if action == "add":
                self.audiences[audience_id].add(pair)
            else:
                self.audiences[audience_id].discard(pair)
        return _reply(0, "OK")

    def _parse(self, body: bytes) -> tuple[str, list[tuple[str, Pair]]]:
        try:
            data: Any = json.loads(body)
        except ValueError:
            raise TikTokError(40002, "Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise TikTokError(40002, "Request body must be a JSON object.")
        advertisers = data.get("advertiser_ids")
        if not isinstance(advertisers, list) or self.advertiser_id not in advertisers:
            raise TikTokError(40001, "No permission to operate this advertiser.")
        action, schema, rows = data.get("action"), data.get("id_schema"), data.get("batch_data")
        if action not in ("add", "delete"):
            raise TikTokError(40002, "action: must be one of add, delete.")
        if not isinstance(schema, list) or not schema or not set(schema) <= ID_TYPES:
            raise TikTokError(40002, f"id_schema: must be a list of {sorted(ID_TYPES)}.")
        if not isinstance(rows, list) or not rows:
            raise TikTokError(40002, "batch_data: a non-empty list is required.")
        if len(rows) > self.max_rows:
            raise TikTokError(40002, f"batch_data: at most {self.max_rows} rows a request.")
        changes: list[tuple[str, Pair]] = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(schema):
                raise TikTokError(40002, "batch_data: each row must match id_schema.")
            for id_type, entry in zip(schema, row, strict=True):
                changes.extend(
                    (audience, (id_type, value)) for audience, value in self._entry(entry)
                )
        return str(action), changes

    def _entry(self, entry: Any) -> list[tuple[str, str]]:
        if entry == {}:
            return []
        if not isinstance(entry, dict) or set(entry) != {"id", "audience_ids"}:
            raise TikTokError(40002, "batch_data: an entry is {} or {id, audience_ids}.")
        value, audiences = entry["id"], entry["audience_ids"]
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise TikTokError(40002, "batch_data: id must be a SHA-256 hash.")
        if not isinstance(audiences, list) or not audiences:
            raise TikTokError(40002, "batch_data: audience_ids must be a non-empty list.")
        unknown = [a for a in audiences if a not in self.audiences]
        if unknown:
            raise TikTokError(40002, f"audience_ids: {unknown} not found for this advertiser.")
        return [(audience, value) for audience in audiences]


def _fault(status: int) -> Response:
    code = 40100 if status == 429 else 50000 if status >= 500 else 40002
    return _reply(code, f"HTTP {status}", status)


def _detail_fault(status: int) -> Response:
    """The details endpoint's answer to an injected fault (no rate-limit code there)."""
    return _reply(50000 if status >= 500 else 40002, f"HTTP {status}", status)


def _reply(
    code: int, message: str, status: int = 200, data: dict[str, Any] | None = None
) -> Response:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data or {}}
    return JSONResponse(body, status_code=status)

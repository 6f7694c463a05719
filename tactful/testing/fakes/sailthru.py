"""A fake Sailthru API: ``/user`` (GET, POST, DELETE) and ``/event`` (POST).

Checks every call the way Sailthru does: ``api_key`` (error 2 when missing, 3 when wrong),
``sig`` = MD5(secret + sorted values of the other parameters) (error 5), ``format=json`` and a
``json`` payload; POSTs must be form-encoded. Users are keyed by email (or ``extid``); POST
merges ``vars``, applies ``lists`` (1 add, 0 remove), ``optout_email`` and ``keys`` (email
change keeps the profile). Events are stored as they come (Sailthru has no event id).
Errors are ``{"error": code, "errormsg": …}``; the per-endpoint rate limit answers 429 with
error 43 and ``X-Rate-Limit-Limit/Remaining/Reset``; ``fail_next`` adds ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.clock import epoch_seconds, system_now
from tactful.testing.fakes.base import FakeBase

OPTOUT_VALUES = {"none", "all", "blast", "basic"}
RESERVED_EVENTS = {"send", "cancel", "open", "click", "purchase", "daily"}


class SailthruError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeSailthru(FakeBase):
    def __init__(
        self, api_key: str = "st-key", api_secret: str = "st-secret", per_second: int | None = None
    ) -> None:
        super().__init__()
        self.api_key, self.api_secret, self.per_second = api_key, api_secret, per_second
        self.users: dict[str, dict[str, Any]] = {}  # sid -> user
        self.events: list[dict[str, Any]] = []
        self.params: list[dict[str, str]] = []  # decoded parameters of each request
        self._windows: dict[str, list[float]] = {}
        routes = [Route("/{action}", self._handle, methods=["GET", "POST", "DELETE"])]
        self.app = Starlette(routes=routes)

    # -- test controls -----------------------------------------------------------------------

    def max_items_per_request(self) -> int:
        return 1  # /user takes one user a call

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            users = {
                self._key(u): {k: u[k] for k in ("vars", "lists", "optout_email")}
                for u in self.users.values()
            }
            state: dict[str, Any] = json.loads(json.dumps({"users": users, "events": self.events}))
            return state

    def user(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            sid = self._find("email", email)
            return None if sid is None else json.loads(json.dumps(self.users[sid]))

    def add_user(
        self, email: str, lists: dict[str, int] | None = None, **activity: datetime
    ) -> None:
        with self.lock:
            sid = self._create("email", email)
            self._post_user(sid, {"lists": lists or {}})
            self.users[sid]["activity"].update({k: format_datetime(v) for k, v in activity.items()})

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        with self.lock:
            try:
                response = self._answer(request, params)
            except SailthruError as e:
                response = JSONResponse({"error": e.code, "errormsg": e.message}, e.status)
            self._record(request, raw, response.status_code)
            self.params.append(params)
        return response

    def _answer(self, request: Request, params: dict[str, str]) -> Response:
        method, action = request.method, request.path_params["action"]
        if self._faults:
            status, retry_after = self._faults.popleft()
            headers = {}
            if retry_after is not None:
                reset = int(epoch_seconds()) + retry_after
                headers = {"Retry-After": str(retry_after), **_limit_headers(0, reset)}
            code = 43 if status == 429 else 9 if status >= 500 else 99
            return JSONResponse(
                {"error": code, "errormsg": f"injected {status}"}, status, headers=headers
            )
        window = self._windows.setdefault(f"{method} /{action}", [])
        now = epoch_seconds()
        window[:] = [t for t in window if now - t < 1.0]
        if self.per_second is not None and len(window) >= self.per_second:
            reset = math.ceil(window[0] + 1.0)
            body = {
                "error": 43,
                "errormsg": f"Too many {method} requests this minute to /{action} API",
            }
            return JSONResponse(body, 429, headers=_limit_headers(0, reset, self.per_second))
        window.append(now)
        if method == "POST" and not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise SailthruError(400, 2, "POST parameters must be application/x-www-form-urlencoded")
        if "api_key" not in params:
            raise SailthruError(400, 2, "Missing required parameter: api_key")
        if params["api_key"] != self.api_key:
            raise SailthruError(401, 3, "Invalid API key")
        values = sorted(v for k, v in params.items() if k != "sig")
        if (
            params.get("sig")
            != hashlib.md5((self.api_secret + "".join(values)).encode()).hexdigest()
        ):
            raise SailthruError(401, 5, "Authentication failed")
        if params.get("format", "json") != "json":
            raise SailthruError(400, 99, "This fake only speaks format=json")
        try:
            payload = json.loads(params.get("json", ""))
        except ValueError:
            raise SailthruError(400, 99, "json is not valid JSON") from None
        if not isinstance(payload, dict) or not payload.get("id"):
            raise SailthruError(400, 2, "Missing required parameter: id")
        key, ident = payload.get("key", "email"), str(payload["id"])
        if key not in ("email", "extid", "sid"):
            raise SailthruError(400, 99, f"Unsupported key {key!r}")
        if key == "email" and ("@" not in ident or " " in ident):
            raise SailthruError(400, 11, f"Invalid email: {ident}")
        limit = self.per_second or 300
        headers = _limit_headers(limit - len(window), math.ceil(now + 1.0), limit)
        sid = self._find(key, ident)
        if action == "event" and method == "POST":
            name = payload.get("event")
            if not isinstance(name, str) or not name or name in RESERVED_EVENTS:
                raise SailthruError(400, 99, f"Invalid event name {name!r}")
            if sid is None:
                sid = self._create(key, ident)
            self.events.append(
                {
                    "user": self._key(self.users[sid]),
                    "event": name,
                    "vars": payload.get("vars") or {},
                }
            )
            return JSONResponse({"ok": True}, headers=headers)
        if action != "user":
            raise SailthruError(404, 99, f"Unknown action /{action}")
        if method != "POST" and sid is None:
            raise SailthruError(404, 99, f"User not found with {key}: {ident}")
        if method == "GET":
            fields = payload.get("fields") or {
                "keys": 1,
                "vars": 1,
                "lists": 1,
                "engagement": 1,
                "optout_email": 1,
            }
            user = self.users[str(sid)]
            return JSONResponse({f: user[f] for f in fields if f in user}, headers=headers)
        if method == "DELETE":
            del self.users[str(sid)]
            return JSONResponse({"ok": True}, headers=headers)
        sid = sid or self._create(key, ident)
        self._post_user(sid, payload)
        return JSONResponse({"ok": True, "keys": self.users[sid]["keys"]}, headers=headers)

    # -- users -----------------------------------------------------------------------------

    def _post_user(self, sid: str, payload: dict[str, Any]) -> None:
        user = self.users[sid]
        optout = payload.get("optout_email")
        if optout is not None and optout not in OPTOUT_VALUES:
            raise SailthruError(400, 99, f"Invalid optout_email {optout!r}")
        new_email = (payload.get("keys") or {}).get("email")
        if new_email:
            other = self._find("email", str(new_email))
            if other not in (None, sid) and payload.get("keysconflict", "error") == "error":
                raise SailthruError(
                    400, 99, f"Key conflict: email {new_email} belongs to another user"
                )
            user["keys"]["email"] = new_email
        user["vars"].update(payload.get("vars") or {})
        stamp = format_datetime(system_now())
        for name, flag in (payload.get("lists") or {}).items():
            if int(flag):
                user["lists"].setdefault(name, stamp)
                user["activity"].setdefault("signup_time", stamp)
            else:
                user["lists"].pop(name, None)
        if optout is not None:
            user["optout_email"] = optout

    def _find(self, key: str, ident: str) -> str | None:
        if key == "sid":
            return ident if ident in self.users else None
        for sid, user in self.users.items():
            value = user["keys"].get(key)
            if value is not None and (
                value.lower() == ident.lower() if key == "email" else value == ident
            ):
                return sid
        return None

    def _create(self, key: str, ident: str) -> str:
        sid = hashlib.md5(
            f"{key}:{ident}:{len(self.users)}:{epoch_seconds()}".encode()
        ).hexdigest()[:24]
        created = format_datetime(system_now())
        self.users[sid] = {
            "keys": {"sid": sid, key: ident},
            "vars": {},
            "lists": {},
            "optout_email": "none",
            "engagement": "new",
            "activity": {"create_time": created},
        }
        return sid

    def _key(self, user: dict[str, Any]) -> str:
        keys = user["keys"]
        return str(keys.get("email") or keys.get("extid") or keys["sid"]).lower()


def _limit_headers(remaining: int, reset: int, limit: int = 300) -> dict[str, str]:
    """Sailthru's rate-limit headers; ``reset`` is epoch seconds."""
    return {
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(max(0, remaining)),
        "X-Rate-Limit-Reset": str(reset),
    }

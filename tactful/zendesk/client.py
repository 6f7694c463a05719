"""A small Zendesk Support API client: exports for ``backfill``, webhooks and triggers for
``zendesk install``, and user write-back (tags, user fields).

- Basic auth ``{email}/token:{api_token}``, timeouts, ``User-Agent: tactful/<version>``.
- Retries: ``429`` waits ``Retry-After`` (seconds or an HTTP date); ``5xx``, timeouts and
  connection errors back off exponentially with jitter (``retry_decision``, the policy of
  ``tactful.http.retry``); ``401``/``403``/
  ``404`` fail at once with a message that says what to check. Error messages name the
  endpoint (as a template such as ``GET /api/v2/users/{id}.json``) and the status, never ids,
  tokens or response bodies.
- Incremental export endpoints allow 10 requests a minute: a sliding-window limiter sleeps
  only when ten requests were already made in the last 60 seconds.

``sleep`` and ``clock`` are injected so that tests never wait.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import orjson

from tactful import __version__
from tactful.clock import now_or
from tactful.config.models import ZendeskSettings
from tactful.exceptions import ServiceError
from tactful.http.auth import basic_auth_header
from tactful.http.retry import Backoff, parse_retry_after

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Params = Mapping[str, str | int]

INCREMENTAL_PREFIX = "/api/v2/incremental/"
DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE = 1.0  # seconds before the first retry of a 5xx / network error
BACKOFF_CAP = 60.0
RETRY_AFTER_CAP = 3600.0  # a Retry-After beyond an hour is treated as an outage
LIST_PAGE_SIZE = 100  # cursor-paginated lists (satisfaction ratings, webhooks, triggers)


# --------------------------------------------------------------------------- errors


class ZendeskError(ServiceError):
    """A Zendesk API call failed; the message says which endpoint, why, and what to do."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class ZendeskConfigError(ZendeskError):
    """``[zendesk]`` lacks what the client needs (subdomain/base_url, email, api_token)."""


class ZendeskAuthError(ZendeskError):
    """401/403: the credentials are wrong or lack permission."""


class ZendeskNotFound(ZendeskError):
    """404: the resource does not exist (or the subdomain/base_url is wrong)."""


# --------------------------------------------------------------------------- retry policy


ZENDESK_BACKOFF = Backoff(base=BACKOFF_BASE, cap=BACKOFF_CAP, retry_after_cap=RETRY_AFTER_CAP)


def retry_decision(
    status: int | None,
    attempt: int,
    retry_after: float | None,
    *,
    jitter: float = 1.0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> float | None:
    """Seconds to wait before retrying, or None to give up: ``tactful.http.retry``'s one
    policy with Zendesk's numbers (``jitter`` in [0, 1]).

    ``status`` is the HTTP status of failed attempt number ``attempt`` (1-based), None for a
    timeout or connection error. A ``Retry-After`` (Zendesk sends one with every 429) is
    waited; without one, 429, 409, 5xx and network errors back off exponentially
    (``base * 2**(attempt-1)``, at most ``cap``, equal jitter). A ``Retry-After`` beyond an
    hour is an outage: no retry. Other statuses are not retried.
    """
    return ZENDESK_BACKOFF.next_wait(
        status, attempt, retry_after, jitter=jitter, max_attempts=max_attempts
    )


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions per ``window`` seconds; sleeps only when exhausted."""

    def __init__(
        self, limit: int, window: float = 60.0, *, clock: Clock = time.monotonic, sleep: Sleep
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self._stamps: deque[float] = deque()

    def acquire(self) -> float:
        """Take one slot; returns the seconds slept waiting for it (0.0 when free)."""
        now = self.clock()
        self._expire(now)
        waited = 0.0
        if len(self._stamps) >= self.limit:
            free_at = self._stamps[0] + self.window
            waited = max(0.0, free_at - now)
            if waited > 0:
                self.sleep(waited)
            now = max(self.clock(), free_at)
            self._expire(now)
        self._stamps.append(now)
        return waited

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()


# --------------------------------------------------------------------------- export streams


@dataclass(frozen=True)
class Checkpoint:
    """Where a stream continues: an opaque ``cursor`` or a ``start_time`` (Unix seconds)."""

    cursor: str | None = None
    start_time: int | None = None

    def to_text(self) -> str:
        if self.cursor is not None:
            return orjson.dumps({"cursor": self.cursor}).decode()
        return orjson.dumps({"start_time": self.start_time or 0}).decode()

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ValueError(f"not a backfill checkpoint: {text[:40]!r}") from None
        if isinstance(data, dict) and isinstance(data.get("cursor"), str):
            return cls(cursor=data["cursor"])
        if isinstance(data, dict) and type(data.get("start_time")) is int:
            return cls(start_time=data["start_time"])
        raise ValueError(f"not a backfill checkpoint: {text[:40]!r}")

    @classmethod
    def beginning(cls) -> Checkpoint:
        return cls(start_time=0)

    def describe(self) -> str:
        if self.cursor is not None:
            return "cursor"
        if not self.start_time:
            return "the beginning"
        return datetime.fromtimestamp(self.start_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Pagination = Literal["cursor", "time", "list"]


@dataclass(frozen=True)
class StreamSpec:
    name: str
    path: str
    key: str  # the array of records in a page
    pagination: Pagination
    include: str | None = None  # side-loads asked for (``include=``)


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec("users", "/api/v2/incremental/users/cursor.json", "users", "cursor"),
        StreamSpec("tickets", "/api/v2/incremental/tickets/cursor.json", "tickets", "cursor"),
        StreamSpec(
            "ticket_events",
            "/api/v2/incremental/ticket_events.json",
            "ticket_events",
            "time",
            # the comments' text (docs/reasons.md): read into words and a sentiment, not kept
            include="comment_events",
        ),
        StreamSpec(
            "satisfaction_ratings", "/api/v2/satisfaction_ratings", "satisfaction_ratings", "list"
        ),
    )
}
STREAM_NAMES: tuple[str, ...] = tuple(STREAMS)


@dataclass(frozen=True)
class Page:
    """One export page: its decoded JSON, raw bytes, where to continue, and whether done."""

    data: dict[str, Any]
    raw: bytes
    checkpoint: Checkpoint
    end_of_stream: bool

    @property
    def records(self) -> int:
        return sum(len(v) for v in self.data.values() if isinstance(v, list))


@dataclass
class ClientStats:
    requests: int = 0  # HTTP attempts, retries included
    retries: int = 0
    throttled: int = 0  # 429 responses
    waited: float = 0.0  # seconds slept: Retry-After, backoff and the rate limiter


@dataclass
class _Response:
    status: int
    content: bytes
    data: Any


# --------------------------------------------------------------------------- the client


def api_token_auth(email: str, api_token: str) -> str:
    """The ``Authorization`` value Zendesk expects for API tokens: ``{email}/token`` and
    the token, as Basic authentication."""
    return basic_auth_header(f"{email}/token", api_token)


class ZendeskClient:
    """Zendesk Support API over ``httpx`` (``transport`` for tests; close it when done).

    ``per_page`` sets ``per_page`` of the cursor exports (at most 1000) and ``page[size]`` of
    the satisfaction ratings (at most 100); ``stats`` counts requests, retries, 429s and the
    seconds slept.
    """

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        incremental_per_minute: int = 10,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = 30.0,
        per_page: int | None = None,
        rand: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.per_page = per_page
        self.rand = rand
        self.wall_clock = now_or(wall_clock)
        self.limiter = SlidingWindowLimiter(
            incremental_per_minute, 60.0, clock=clock, sleep=self._sleep
        )
        self.stats = ClientStats()
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={
                "Authorization": api_token_auth(email, api_token),
                "User-Agent": f"tactful/{__version__}",
                "Accept": "application/json",
            },
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, zendesk: ZendeskSettings, **kwargs: Any) -> ZendeskClient:
        """Build from ``settings.zendesk``; says which of the needed keys are missing."""
        url, email, token = zendesk.api_url, zendesk.email, zendesk.api_token
        if not (url and email and token):
            missing = [
                name
                for name, value in (
                    ("subdomain (or base_url)", url),
                    ("email", email),
                    ("api_token", token),
                )
                if not value
            ]
            raise ZendeskConfigError(
                f"[zendesk] is missing {', '.join(missing)}: the Zendesk API needs the "
                "subdomain (or base_url), the email of an agent and an API token "
                '(api_token = "env:ZENDESK_API_TOKEN")'
            )
        return cls(url, email, token, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ZendeskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        self.stats.waited += seconds
        self.sleep(seconds)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        endpoint: str | None = None,
        attempts: int | None = None,
    ) -> _Response:
        """One API call with retries (``attempts``, when given, instead of the client's
        ``max_attempts``). ``endpoint`` is the id-free name used in messages."""
        label = f"{method} {endpoint or path}"
        content = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            attempt += 1
            if path.startswith(INCREMENTAL_PREFIX):
                self.limiter.acquire()
            self.stats.requests += 1
            status: int | None
            retry_after: float | None = None
            try:
                response = self._http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TimeoutException:
                status, problem = None, "timed out"
            except httpx.TransportError as exc:
                status, problem = None, f"could not connect ({type(exc).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    body = response.content
                    try:
                        data = orjson.loads(body) if body.strip() else None
                    except orjson.JSONDecodeError:
                        status, problem = 502, "returned a body that is not JSON"
                    else:
                        return _Response(status, body, data)
                else:
                    problem = f"returned HTTP {status}"
                    if status == 429:
                        self.stats.throttled += 1
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), self.wall_clock()
                    )
                    self._fail_fast(status, label, response)
            delay = retry_decision(
                status,
                attempt,
                retry_after,
                jitter=self.rand(),
                max_attempts=self.max_attempts if attempts is None else attempts,
            )
            if delay is None:
                raise ZendeskError(
                    f"Zendesk API {label} {problem}"
                    + (f" after {attempt} attempts" if attempt > 1 else "")
                    + _advice(status),
                    status=status,
                    endpoint=label,
                )
            self.stats.retries += 1
            self._sleep(delay)

    def _fail_fast(self, status: int, label: str, response: httpx.Response) -> None:
        if status == 401:
            raise ZendeskAuthError(
                f"Zendesk API {label} returned HTTP 401 (not authenticated): check [zendesk] "
                "email and api_token (an API token of that agent, with token access enabled)",
                status=status,
                endpoint=label,
            )
        if status == 403:
            raise ZendeskAuthError(
                f"Zendesk API {label} returned HTTP 403 (forbidden): the agent in [zendesk] "
                "email lacks permission for this (exports, webhooks and triggers need an admin)",
                status=status,
                endpoint=label,
            )
        if status == 404:
            raise ZendeskNotFound(
                f"Zendesk API {label} returned HTTP 404 (not found): check [zendesk] subdomain "
                "or base_url, and that the record exists",
                status=status,
                endpoint=label,
            )
        if 400 <= status < 500 and status != 429:
            raise ZendeskError(
                f"Zendesk API {label} returned HTTP {status}{_error_code(response)}",
                status=status,
                endpoint=label,
            )

    def get_json(
        self, path: str, params: Params | None = None, *, endpoint: str | None = None
    ) -> dict[str, Any]:
        response = self.request("GET", path, params=params, endpoint=endpoint)
        return _object(response, f"GET {endpoint or path}")

    # -- exports ----------------------------------------------------------------------------
    def iter_pages(self, stream: str, start: Checkpoint) -> Iterator[Page]:
        """The pages of one export stream from ``start`` until ``end_of_stream``."""
        spec = STREAMS[stream]
        checkpoint = start
        while True:
            params = self._page_params(spec, checkpoint)
            response = self.request("GET", spec.path, params=params)
            data = _object(response, f"GET {spec.path}")
            if not isinstance(data.get(spec.key), list):
                raise ZendeskError(
                    f"Zendesk API GET {spec.path} returned a page without {spec.key!r}",
                    endpoint=spec.path,
                )
            following, end = self._next(spec, checkpoint, data)
            yield Page(data, response.content, following, end)
            if end:
                return
            checkpoint = following

    def _page_params(self, spec: StreamSpec, at: Checkpoint) -> dict[str, str | int]:
        params: dict[str, str | int] = {}
        if spec.include:
            params["include"] = spec.include
        if spec.pagination == "list":
            params["page[size]"] = min(self.per_page or LIST_PAGE_SIZE, LIST_PAGE_SIZE)
            if at.cursor is not None:
                params["page[after]"] = at.cursor
            elif at.start_time:
                params["start_time"] = at.start_time
            return params
        if at.cursor is not None:
            params["cursor"] = at.cursor
        else:
            params["start_time"] = at.start_time or 0
        if self.per_page is not None and spec.pagination == "cursor":
            params["per_page"] = self.per_page
        return params

    @staticmethod
    def _next(spec: StreamSpec, at: Checkpoint, data: dict[str, Any]) -> tuple[Checkpoint, bool]:
        if spec.pagination == "cursor":
            end = data.get("end_of_stream") is True
            after = data.get("after_cursor")
            if isinstance(after, str) and after:
                return Checkpoint(cursor=after), end
            if end:
                return at, True
            raise ZendeskError(
                f"Zendesk API GET {spec.path} returned a page without after_cursor",
                endpoint=spec.path,
            )
        if spec.pagination == "time":
            end = data.get("end_of_stream") is True
            end_time = data.get("end_time")
            if type(end_time) is int and end_time > (at.start_time or 0):
                return Checkpoint(start_time=end_time), end
            if end:
                return at, True
            raise ZendeskError(
                f"Zendesk API GET {spec.path} returned a page whose end_time does not advance",
                endpoint=spec.path,
            )
        meta = _meta(data)
        end = meta.get("has_more") is not True
        after = meta.get("after_cursor")
        if isinstance(after, str) and after:
            return Checkpoint(cursor=after), end
        if end:
            return at, True
        raise ZendeskError(
            f"Zendesk API GET {spec.path} said has_more without an after_cursor",
            endpoint=spec.path,
        )

    # -- users ------------------------------------------------------------------------------
    def get_user(self, user_id: int) -> dict[str, Any] | None:
        """``GET /api/v2/users/{id}.json``: the user object, None when it does not exist."""
        try:
            data = self.get_json(f"/api/v2/users/{int(user_id)}.json", endpoint=_USER_JSON)
        except ZendeskNotFound:
            return None
        user = data.get("user")
        return user if isinstance(user, dict) else None

    def add_user_tags(self, user_id: int, tags: Sequence[str]) -> list[str]:
        """``PUT /api/v2/users/{id}/tags``: adds tags, keeps the others; returns all tags."""
        response = self.request(
            "PUT", f"/api/v2/users/{int(user_id)}/tags", json={"tags": list(tags)}, endpoint=_TAGS
        )
        return _tags(response)

    def remove_user_tags(self, user_id: int, tags: Sequence[str]) -> list[str]:
        """``DELETE /api/v2/users/{id}/tags``: removes the tags; returns the remaining ones."""
        response = self.request(
            "DELETE",
            f"/api/v2/users/{int(user_id)}/tags",
            json={"tags": list(tags)},
            endpoint=_TAGS,
        )
        return _tags(response)

    def update_user_fields(self, user_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/v2/users/{id}`` with ``user_fields`` (only the keys given change)."""
        response = self.request(
            "PUT",
            f"/api/v2/users/{int(user_id)}",
            json={"user": {"user_fields": dict(fields)}},
            endpoint="/api/v2/users/{id}",
        )
        data = _object(response, "PUT /api/v2/users/{id}")
        user = data.get("user")
        return user if isinstance(user, dict) else {}

    def change_email(self, user_id: int, old: str, new: str) -> dict[str, Any]:
        """Change a user's email address in place (primary stays primary): find the email
        identity holding ``old`` and update its value (Zendesk's Update Identity)."""
        listing = self.get_json(
            f"/api/v2/users/{int(user_id)}/identities",
            {"type[]": "email"},
            endpoint="/api/v2/users/{id}/identities",
        )
        identities = listing.get("identities") or []
        match = [
            i
            for i in identities
            if isinstance(i, dict)
            and i.get("type") == "email"
            and str(i.get("value", "")).strip().lower() == old.strip().lower()
        ]
        if not match:
            raise ZendeskNotFound(
                "the Zendesk user has no email identity with the old address",
                status=404,
                endpoint="/api/v2/users/{id}/identities",
            )
        response = self.request(
            "PUT",
            f"/api/v2/users/{int(user_id)}/identities/{int(match[0]['id'])}",
            json={"identity": {"value": new}},
            endpoint="/api/v2/users/{id}/identities/{id}",
        )
        data = _object(response, "PUT /api/v2/users/{id}/identities/{id}")
        identity = data.get("identity")
        return identity if isinstance(identity, dict) else {}

    # -- tickets ------------------------------------------------------------------------------
    def add_private_note(self, ticket_id: int, body: str) -> int | None:
        """Add an internal note (``public: false``) to a ticket: Zendesk creates comments
        through the Tickets API, ``PUT /api/v2/tickets/{id}`` with a ``comment`` object
        (https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/ and
        .../tickets/tickets/#update-ticket). The update is not idempotent, so it is sent once:
        no retry after a timeout or a 5xx, which may have added the note. Returns the audit
        id Zendesk answers with (None when it gives none)."""
        response = self.request(
            "PUT",
            f"/api/v2/tickets/{int(ticket_id)}",
            json={"ticket": {"comment": {"body": body, "public": False}}},
            endpoint="/api/v2/tickets/{id}",
            attempts=1,
        )
        audit = _object(response, "PUT /api/v2/tickets/{id}").get("audit")
        audit_id = audit.get("id") if isinstance(audit, dict) else None
        return audit_id if isinstance(audit_id, int) else None

    # -- webhooks and triggers ----------------------------------------------------------------
    def _list(self, path: str, key: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Every item of a list: cursor pagination (``page[size]``/``page[after]``), or the
        ``next_page`` links of offset pagination (followed on our base URL)."""
        out: list[dict[str, Any]] = []
        query: dict[str, str | int] = dict(params or {})
        query["page[size]"] = LIST_PAGE_SIZE
        for _ in range(1000):
            data = self.get_json(path, query)
            items = data.get(key)
            if isinstance(items, list):
                out.extend(i for i in items if isinstance(i, dict))
            meta = _meta(data)
            after = meta.get("after_cursor")
            next_page = data.get("next_page")
            if meta.get("has_more") is True and isinstance(after, str) and after:
                query["page[after]"] = after
            elif isinstance(next_page, str) and next_page:
                url = httpx.URL(next_page)
                if url.path != path:
                    return out
                query = dict(url.params)
            else:
                return out
        return out

    def list_webhooks(self, name_contains: str | None = None) -> list[dict[str, Any]]:
        params = {"filter[name_contains]": name_contains} if name_contains else None
        return self._list("/api/v2/webhooks", "webhooks", params)

    def create_webhook(self, webhook: Mapping[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/api/v2/webhooks", json={"webhook": dict(webhook)})
        return _item(response, "webhook", "POST /api/v2/webhooks")

    def update_webhook(self, webhook_id: str, webhook: Mapping[str, Any]) -> None:
        self.request(
            "PUT", f"/api/v2/webhooks/{webhook_id}", json={"webhook": dict(webhook)}, endpoint=_WH
        )

    def webhook_signing_secret(self, webhook_id: str) -> str:
        """``GET /api/v2/webhooks/{id}/signing_secret`` → the secret text."""
        label = _WH + "/signing_secret"
        data = self.get_json(f"/api/v2/webhooks/{webhook_id}/signing_secret", endpoint=label)
        block = data.get("signing_secret")
        secret = block.get("secret") if isinstance(block, dict) else None
        if not isinstance(secret, str) or not secret:
            raise ZendeskError(f"Zendesk API GET {label} returned no secret", endpoint=label)
        return secret

    def list_triggers(self) -> list[dict[str, Any]]:
        return self._list("/api/v2/triggers", "triggers")

    def create_trigger(self, trigger: Mapping[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/api/v2/triggers", json={"trigger": dict(trigger)})
        return _item(response, "trigger", "POST /api/v2/triggers")

    def update_trigger(self, trigger_id: int | str, trigger: Mapping[str, Any]) -> dict[str, Any]:
        response = self.request(
            "PUT",
            f"/api/v2/triggers/{trigger_id}",
            json={"trigger": dict(trigger)},
            endpoint="/api/v2/triggers/{id}",
        )
        if response.data is None:
            return dict(trigger)
        return _item(response, "trigger", "PUT /api/v2/triggers/{id}")


_USER_JSON = "/api/v2/users/{id}.json"
_TAGS = "/api/v2/users/{id}/tags"
_WH = "/api/v2/webhooks/{id}"


def _advice(status: int | None) -> str:
    if status is None:
        return ": check the network and [zendesk] subdomain or base_url"
    if status == 429:
        return ": Zendesk kept rate limiting; try again later"
    if status >= 500:
        return ": Zendesk is failing or unavailable; try again later"
    return ""


def _error_code(response: httpx.Response) -> str:
    """`` (RecordInvalid: …)`` from a Zendesk error body, shortened; nothing else of it."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    code = data.get("error")
    if isinstance(code, dict):
        code = code.get("title") or code.get("message")
    description = data.get("description")
    errors = data.get("errors")
    if code is None and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, description = errors[0].get("code"), errors[0].get("detail")
    parts = [p for p in (code, description) if isinstance(p, str) and p]
    text = ": ".join(parts)[:200]
    return f" ({text})" if text else ""


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("meta")
    return meta if isinstance(meta, dict) else {}


def _object(response: _Response, label: str) -> dict[str, Any]:
    if not isinstance(response.data, dict):
        raise ZendeskError(f"Zendesk API {label} returned no JSON object", endpoint=label)
    return response.data


def _item(response: _Response, key: str, label: str) -> dict[str, Any]:
    item = _object(response, label).get(key)
    if not isinstance(item, dict):
        raise ZendeskError(f"Zendesk API {label} returned no {key!r}", endpoint=label)
    return item


def _tags(response: _Response) -> list[str]:
    data = response.data if isinstance(response.data, dict) else {}
    tags = data.get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


__all__ = [
    "STREAMS",
    "STREAM_NAMES",
    "Checkpoint",
    "ClientStats",
    "Page",
    "SlidingWindowLimiter",
    "StreamSpec",
    "ZendeskAuthError",
    "ZendeskClient",
    "ZendeskConfigError",
    "ZendeskError",
    "ZendeskNotFound",
    "api_token_auth",
    "parse_retry_after",
    "retry_decision",
]

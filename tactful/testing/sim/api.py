"""The simulator's HTTP API (Starlette): Zendesk's paths, auth, rate limits, faults.

Every request is checked in Zendesk's order: authentication (HTTP Basic
``{email}/token:{api_token}``, else 401 ``{"error": "Couldn't authenticate you"}``), then the
rate limit (incremental exports: ``rate_limit_per_minute``, 10 by default as documented;
everything else ``general_rate_limit_per_minute``; over it: 429 with ``Retry-After`` seconds
and ``{"error": "APIRateLimitExceeded", "description": …}``), then injected faults
(``fail_next``, ``slow_next``, ``rate_limit_next``). Every answer is logged in
``sim.requests``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tactful.testing.sim.admin import ROUTES as ADMIN_ROUTES
from tactful.testing.sim.controls import (
    GENERAL_LIMIT_TEXT,
    INCREMENTAL_LIMIT_TEXT,
    INCREMENTAL_PREFIX,
    RequestRecord,
)
from tactful.testing.sim.exports import (
    BadRequest,
    cursor_page,
    ratings_page,
    survey_responses_page,
    ticket_events_page,
)
from tactful.testing.sim.model import Json, SimUser
from tactful.testing.sim.objects import iso
from tactful.testing.sim.web import Handler, base_of, body_of, error, json_response, not_found

if TYPE_CHECKING:
    from tactful.testing.sim.state import ZendeskSimulator

_FAULT_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _authenticated(sim: ZendeskSimulator, request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        text = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return text == f"{sim.email}/token:{sim.api_token}"


def _gate(sim: ZendeskSimulator, request: Request) -> tuple[Response | None, float]:
    """The early answer (401, 429, injected fault) if any, and an injected delay."""
    path = request.url.path
    with sim.lock:
        if not _authenticated(sim, request):
            return error(401, "Couldn't authenticate you"), 0.0
        incremental = path.startswith(INCREMENTAL_PREFIX)
        limiter = sim.incremental_limit if incremental else sim.general_limit
        wait = limiter.check()
        if wait is not None:
            text = INCREMENTAL_LIMIT_TEXT if incremental else GENERAL_LIMIT_TEXT
            response = error(429, "APIRateLimitExceeded", text)
            response.headers["Retry-After"] = str(wait)
            return response, 0.0
        fault = sim.faults.take(path)
    if fault is None or fault.status is None:
        return None, fault.seconds if fault else 0.0
    if fault.status == 429:
        text = INCREMENTAL_LIMIT_TEXT if incremental else GENERAL_LIMIT_TEXT
        response = error(429, "APIRateLimitExceeded", text)
        response.headers["Retry-After"] = str(fault.retry_after or 60)
    else:
        response = error(fault.status, _FAULT_TEXT.get(fault.status, "Error"))
    return response, fault.seconds


def endpoint(sim: ZendeskSimulator, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        early, delay = _gate(sim, request)
        if delay:
            await asyncio.sleep(delay)
        if early is not None:
            response = early
        else:
            try:
                response = await handler(sim, request, dict(request.path_params))
            except BadRequest as e:
                response = error(400, e.title, e.description)
            except LookupError:
                response = not_found()
            except ValueError as e:
                response = error(422, "RecordInvalid", str(e))
            limiter = sim.incremental_limit
            if not request.url.path.startswith(INCREMENTAL_PREFIX):
                limiter = sim.general_limit
            response.headers["X-Rate-Limit"] = str(limiter.per_minute)
            response.headers["X-Rate-Limit-Remaining"] = str(limiter.remaining())
        with sim.lock:
            query = dict(request.query_params)
            record = RequestRecord(
                request.method, request.url.path, query, response.status_code, sim.now()
            )
            sim.requests.append(record)
        return response

    return run


# -- exports


async def tickets_export(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    with sim.lock:
        return json_response(
            cursor_page(sim, "tickets", dict(request.query_params), base_of(request))
        )


async def users_export(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    with sim.lock:
        return json_response(
            cursor_page(sim, "users", dict(request.query_params), base_of(request))
        )


async def events_export(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    with sim.lock:
        page = ticket_events_page(sim, dict(request.query_params), base_of(request))
        return json_response(page)


async def ratings(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    with sim.lock:
        return json_response(ratings_page(sim, dict(request.query_params), base_of(request)))


async def survey_responses(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    with sim.lock:
        return json_response(survey_responses_page(sim, dict(request.query_params)))


# -- users and tickets


async def show_user(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    with sim.lock:
        return json_response({"user": sim.user_api(int(p["user_id"]))})


_USER_FIELDS = ("name", "email", "phone", "external_id", "tags")


async def update_user(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    data = (await body_of(request)).get("user")
    if not isinstance(data, dict):
        raise BadRequest("InvalidValue", 'expected {"user": {...}}')
    changes = {k: data[k] for k in _USER_FIELDS if k in data}
    fields = data.get("user_fields")
    if fields is not None and not isinstance(fields, dict):
        raise BadRequest("InvalidValue", "user_fields must be an object")
    if "tags" in changes and not isinstance(changes["tags"], list):
        raise BadRequest("InvalidValue", "tags must be a list")
    with sim.lock:
        user = sim.update_user(int(p["user_id"]), user_fields=fields, **changes)
    return json_response({"user": user})


async def user_tags(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    """GET lists, PUT adds, POST sets, DELETE removes (body or ``?tags=a,b``)."""
    user_id = int(p["user_id"])
    tags: list[str] = []
    if request.method != "GET":
        given = (await body_of(request)).get("tags")
        if given is None and request.query_params.get("tags"):
            given = request.query_params["tags"].split(",")
        if not isinstance(given, list) or not all(isinstance(t, str) for t in given):
            raise BadRequest("InvalidValue", 'expected {"tags": ["…"]}')
        tags = [t.strip() for t in given if t.strip()]
    with sim.lock:
        current = sim.users[user_id].tags
        if request.method == "PUT":
            current = sim.add_user_tags(user_id, tags)
        elif request.method == "POST":
            sim.update_user(user_id, tags=tags)
            current = sim.users[user_id].tags
        elif request.method == "DELETE":
            current = sim.remove_user_tags(user_id, tags)
        status = 201 if request.method == "POST" else 200
        return json_response({"tags": list(current)}, status)


def _identities(sim: ZendeskSimulator, user_id: int) -> list[dict[str, Any]]:
    """A user's identities as Zendesk lists them: email (id = user*10+1), phone (…+2)."""
    user = sim.users[user_id]
    out = []
    if user.email:
        out.append(
            {
                "id": user_id * 10 + 1,
                "user_id": user_id,
                "type": "email",
                "value": user.email,
                "primary": True,
                "verified": True,
            }
        )
    if user.phone:
        out.append(
            {
                "id": user_id * 10 + 2,
                "user_id": user_id,
                "type": "phone_number",
                "value": user.phone,
                "primary": not user.email,
                "verified": True,
            }
        )
    return out


async def user_identities(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    """GET lists a user's identities; PUT …/identities/{id} updates an identity's value
    (Zendesk's way to change an address, primary included)."""
    user_id = int(p["user_id"])
    with sim.lock:
        if user_id not in sim.users:
            return not_found()
        if request.method == "GET":
            return json_response(
                {
                    "identities": _identities(sim, user_id),
                    "next_page": None,
                    "previous_page": None,
                    "count": len(_identities(sim, user_id)),
                }
            )
    data = (await body_of(request)).get("identity")
    if not isinstance(data, dict) or not isinstance(data.get("value"), str):
        raise BadRequest("InvalidValue", 'expected {"identity": {"value": "…"}}')
    identity_id = int(p["identity_id"])
    with sim.lock:
        found = [i for i in _identities(sim, user_id) if i["id"] == identity_id]
        if not found:
            return not_found()
        field = "email" if found[0]["type"] == "email" else "phone"
        sim.update_user(user_id, **{field: data["value"]})
        updated = [i for i in _identities(sim, user_id) if i["id"] == identity_id]
    return json_response({"identity": updated[0]})


async def show_me(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    """``GET /api/v2/users/me``: the authenticated agent (the simulator's admin)."""
    return json_response(
        {
            "user": {
                "id": 1,
                "name": "Simulator Admin",
                "email": sim.email,
                "role": "admin",
                "active": True,
            }
        }
    )


MAX_DELETED_USERS_PAGE = 100


def deleted_user_json(user: SimUser, base: str) -> Json:
    """A deleted user as ``/api/v2/deleted_users`` lists it: personal data null once the
    user is permanently deleted (https://developer.zendesk.com/api-reference/ticketing/
    users/users/#list-deleted-users)."""
    return {
        "id": user.id,
        "url": f"{base}/api/v2/deleted_users/{user.id}.json",
        "name": user.name,
        "email": None if user.permanently_deleted else user.email,
        "phone": None if user.permanently_deleted else user.phone,
        "shared_phone_number": None,
        "active": False,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "time_zone": "Eastern Time (US & Canada)",
        "locale": "en-US",
        "locale_id": 1,
        "organization_id": None,
        "photo": None,
    }


async def deleted_users(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    """``GET /api/v2/deleted_users``: soft and permanently deleted users, by id, with cursor
    pagination (``page[size]`` ≤ 100, ``page[after]``, ``meta.has_more``, ``links.next``)."""
    params = dict(request.query_params)
    try:
        size = min(int(params.get("page[size]") or MAX_DELETED_USERS_PAGE), MAX_DELETED_USERS_PAGE)
        after = int(base64.urlsafe_b64decode(params["page[after]"]).decode())
    except KeyError:
        after = 0
    except (ValueError, binascii.Error):
        return error(400, "InvalidPaginationParameter", "invalid cursor")
    base = base_of(request)
    with sim.lock:
        gone = sorted((u for u in sim.users.values() if u.deleted), key=lambda u: u.id)
        ready = [u for u in gone if u.id > after]
        page = ready[:size]
        listed = [deleted_user_json(u, base) for u in page]
    has_more = len(ready) > size
    cursor = base64.urlsafe_b64encode(str(page[-1].id).encode()).decode() if page else None
    following = f"{base}/api/v2/deleted_users?page%5Bafter%5D={cursor}&page%5Bsize%5D={size}"
    return json_response(
        {
            "deleted_users": listed,
            "meta": {"has_more": has_more, "after_cursor": cursor, "before_cursor": None},
            "links": {"prev": None, "next": following if has_more else None},
        }
    )


async def show_ticket(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    with sim.lock:
        ticket = sim.ticket_api(int(p["ticket_id"]))
    if ticket["status"] == "deleted":
        return not_found()
    return json_response({"ticket": ticket})


async def update_ticket(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    """Update Ticket, the comment part (``PUT /api/v2/tickets/{id}`` with ``{"ticket":
    {"comment": {"body", "public"}}}``, which is how Zendesk adds comments:
    https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/). A
    comment is public unless ``public`` is false; closed tickets refuse updates (422).
    Answers ``{"ticket", "audit"}`` like Zendesk."""
    data = (await body_of(request)).get("ticket")
    comment = data.get("comment") if isinstance(data, dict) else None
    if not isinstance(comment, dict):
        raise BadRequest("InvalidValue", 'this simulator updates comments only: {"ticket": '
                         '{"comment": {...}}}')  # fmt: skip
    body = comment.get("body") or comment.get("html_body")
    if not isinstance(body, str) or not body.strip():
        raise ValueError("Comment: body cannot be blank")
    public = comment.get("public", True) is not False
    ticket_id = int(p["ticket_id"])
    with sim.lock:
        if ticket_id not in sim.tickets or sim.tickets[ticket_id].status == "deleted":
            raise LookupError(ticket_id)
        ticket = sim.update_ticket(ticket_id, comment=body, public=public, via="Web service")
        audit = sim.audits[-1]
        shown = {"id": audit.id, "ticket_id": ticket_id, "author_id": audit.updater_id}
    return json_response({"ticket": ticket, "audit": {**shown, "events": audit.children}})


def _routes(sim: ZendeskSimulator) -> list[Route]:
    table: list[tuple[str, Handler, list[str]]] = [
        ("/api/v2/incremental/tickets/cursor.json", tickets_export, ["GET"]),
        ("/api/v2/incremental/users/cursor.json", users_export, ["GET"]),
        ("/api/v2/incremental/ticket_events.json", events_export, ["GET"]),
        ("/api/v2/satisfaction_ratings", ratings, ["GET"]),
        ("/api/v2/guide/survey_responses", survey_responses, ["GET"]),
        ("/api/v2/users/me", show_me, ["GET"]),
        ("/api/v2/users/{user_id:int}", show_user, ["GET"]),
        ("/api/v2/users/{user_id:int}", update_user, ["PUT"]),
        ("/api/v2/users/{user_id:int}/tags", user_tags, ["GET", "PUT", "POST", "DELETE"]),
        ("/api/v2/users/{user_id:int}/identities", user_identities, ["GET"]),
        ("/api/v2/users/{user_id:int}/identities/{identity_id:int}", user_identities, ["PUT"]),
        ("/api/v2/tickets/{ticket_id:int}", show_ticket, ["GET"]),
        ("/api/v2/tickets/{ticket_id:int}", update_ticket, ["PUT"]),
        ("/api/v2/deleted_users", deleted_users, ["GET"]),
        *ADMIN_ROUTES,
    ]
    routes: list[Route] = []
    for path, handler, methods in table:
        run = endpoint(sim, handler)
        routes.append(Route(path, run, methods=methods))
        if not path.endswith(".json"):
            routes.append(Route(path + ".json", run, methods=methods))
    return routes


def build_app(sim: ZendeskSimulator) -> Starlette:
    async def missing(request: Request, exc: Exception) -> Response:
        response = error(404, "InvalidEndpoint", "Not found")
        with sim.lock:
            query = dict(request.query_params)
            sim.requests.append(
                RequestRecord(request.method, request.url.path, query, 404, sim.now())
            )
        return response

    return Starlette(routes=_routes(sim), exception_handlers={404: missing, 405: missing})

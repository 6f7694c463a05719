"""Small HTTP helpers shared by the simulator's routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tactful.testing.sim.exports import BadRequest

if TYPE_CHECKING:
    from tactful.testing.sim.state import ZendeskSimulator

Handler = Callable[["ZendeskSimulator", Request, dict[str, str]], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error(status: int, name: str, description: str | None = None) -> Response:
    body: dict[str, Any] = {"error": name}
    if description is not None:
        body["description"] = description
    return json_response(body, status)


def not_found() -> Response:
    return error(404, "RecordNotFound", "Not found")


def base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("InvalidJSON", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("InvalidJSON", "the request body is not a JSON object")
    return data

"""``/app/sidebar`` routes.

- ``POST /app/sidebar``: Zendesk's signed-URL request (form field ``token``) → the page
  shell with a 15-minute session of its own; 401 and no data otherwise.
- ``GET /app/sidebar/panel?email=``: the panel fragment (session required).
- ``POST /app/sidebar/actions/{action}``: an agent action (session required); answers with
  the panel fragment and a message saying what was done.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tactful.web.receiver import BodyTooLarge, read_limited
from tactful.web.sidebar import actions, page, panel
from tactful.web.sidebar.auth import Agent, AuthError, NotConfigured
from tactful.web.sidebar.state import SidebarState

NO_STORE = {"Cache-Control": "no-store"}


def _state(request: Request) -> SidebarState:
    state: SidebarState = request.app.state.sidebar
    return state


def _denied(reason: str) -> Response:
    return PlainTextResponse(
        f"401 unauthorized: {reason}", 401, headers={"WWW-Authenticate": "Bearer", **NO_STORE}
    )


async def _form(request: Request) -> dict[str, str]:
    body = await read_limited(request)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def open_sidebar(request: Request) -> Response:
    state = _state(request)
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    try:
        agent = state.verifier().verify(form.get("token"))
    except NotConfigured as exc:
        return PlainTextResponse(f"503 sidebar not configured: {exc}", 503, headers=NO_STORE)
    except AuthError as exc:
        return _denied(str(exc))
    session = state.sessions.issue(agent)
    return HTMLResponse(page.shell(session, agent.sub), headers=NO_STORE)


def _agent(request: Request) -> Agent:
    state = _state(request)
    header = request.headers.get("authorization") or (
        "Bearer " + request.headers.get("x-tactful-session", "")
    )
    return state.sessions.from_header(header)


async def get_panel(request: Request) -> Response:
    state = _state(request)
    try:
        _agent(request)
    except AuthError as exc:
        return _denied(str(exc))
    email = request.query_params.get("email", "").strip()
    if not email:
        return PlainTextResponse("400 email is required", 400)
    data = await panel.gather(state, email)
    return HTMLResponse(panel.render(data), headers=NO_STORE)


async def post_action(request: Request) -> Response:
    state = _state(request)
    try:
        agent = _agent(request)
    except AuthError as exc:
        return _denied(str(exc))
    action = request.path_params["action"]
    if action not in actions.ACTIONS:
        return PlainTextResponse(f"404 no action {action!r}", 404)
    try:
        form = await _form(request)
        result = await actions.run(state, agent, action, form)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    except actions.BadInput as exc:
        data = await panel.gather(state, form.get("email", "").strip() or "?")
        return HTMLResponse(panel.render(data, ("error", str(exc))), 422, headers=NO_STORE)
    data = await panel.gather(state, result.email)
    flash = ("ok" if result.ok else "error", result.message)
    return HTMLResponse(panel.render(data, flash), 200 if result.ok else 502, headers=NO_STORE)


def routes() -> list[Route]:
    return [
        Route("/app/sidebar", open_sidebar, methods=["POST"]),
        Route("/app/sidebar/panel", get_panel, methods=["GET"]),
        Route("/app/sidebar/actions/{action}", post_action, methods=["POST"]),
    ]

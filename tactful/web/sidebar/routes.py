"""``/app/sidebar`` routes.

- ``POST /app/sidebar``: Zendesk's signed-URL request (form field ``token``, used once)
  → the page shell with a 15-minute session of its own; 401 and no data otherwise; 429
  after repeated failures.
- ``GET /app/sidebar/panel?ticket=&email=``: the panel fragment for the ticket's requester
  (session required; ``binding``: another ticket or person is a 403).
- ``POST /app/sidebar/actions/{action}?ticket=``: an agent action on that requester; answers
  with the panel fragment and a message saying what was done.

Every page gets a Content-Security-Policy that lets only Zendesk frame it.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tactful.web.receiver import BodyTooLarge, read_limited
from tactful.web.security import auth_failed, client_key, sidebar_csp, throttled
from tactful.web.sidebar import actions, page, panel
from tactful.web.sidebar.auth import Agent, AuthError, NotConfigured, remember_once
from tactful.web.sidebar.binding import SESSION_HEADER, Forbidden, allowed_email, bind
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


def _forbidden(reason: str) -> Response:
    return PlainTextResponse(f"403 forbidden: {reason}", 403, headers=NO_STORE)


async def open_sidebar(request: Request) -> Response:
    state = _state(request)
    ctx, client = state.ctx, client_key(request.scope)
    retry = throttled(ctx, "sidebar", client)
    if retry is not None:
        return PlainTextResponse(
            "429 too many failed attempts", 429, headers={"Retry-After": retry, **NO_STORE}
        )
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    try:
        grant = state.verifier().grant(form.get("token"))
        if not await asyncio.to_thread(remember_once, ctx.engine.store, grant):
            raise AuthError("token already used: reopen the sidebar")
    except NotConfigured as exc:
        return PlainTextResponse(f"503 sidebar not configured: {exc}", 503, headers=NO_STORE)
    except AuthError as exc:
        auth_failed(ctx, "sidebar", client)
        return _denied(str(exc))
    session = state.sessions.issue(grant.agent)
    headers = {**NO_STORE, "Content-Security-Policy": sidebar_csp(ctx.settings.zendesk)}
    return HTMLResponse(page.shell(session, grant.agent.sub), headers=headers)


def _session(request: Request) -> str:
    header = request.headers.get("authorization") or (
        "Bearer " + request.headers.get("x-tactful-session", "")
    )
    value = header.strip()
    return value[7:].strip() if value.lower().startswith("bearer ") else ""


def _bound(request: Request) -> tuple[Agent, dict[str, str]]:
    """The session's agent bound to the request's ticket, and the headers to answer with
    (the bound session, when the request bound it). AuthError: 401; Forbidden: 403."""
    state = _state(request)
    token = _session(request)
    agent = state.sessions.verify(token)
    bound = bind(agent, request.query_params.get("ticket"))
    headers = dict(NO_STORE)
    if agent.ticket is None:
        headers[SESSION_HEADER] = state.sessions.issue(bound, expires=state.sessions.expiry(token))
    return bound, headers


async def get_panel(request: Request) -> Response:
    state = _state(request)
    asked = request.query_params.get("email", "").strip()
    try:
        agent, headers = _bound(request)
    except AuthError as exc:
        return _denied(str(exc))
    except Forbidden as exc:
        return _forbidden(str(exc))
    try:
        email = await asyncio.to_thread(allowed_email, state, agent, asked)
    except AuthError as exc:
        return _denied(str(exc))
    except Forbidden as exc:
        if not await asyncio.to_thread(state.ctx.rebuilding):
            return _forbidden(str(exc))
        # a replay is rebuilding the tickets this checks against: say so, show nothing
        rebuilding = panel.PanelData(email=asked, now=state.clock(), problem=panel.REBUILDING)
        return HTMLResponse(panel.render(rebuilding), headers=headers)
    data = await panel.gather(state, email)
    return HTMLResponse(panel.render(data), headers=headers)


async def post_action(request: Request) -> Response:
    state = _state(request)
    try:
        agent, headers = _bound(request)
    except AuthError as exc:
        return _denied(str(exc))
    except Forbidden as exc:
        return _forbidden(str(exc))
    action = request.path_params["action"]
    if action not in actions.ACTIONS:
        return PlainTextResponse(f"404 no action {action!r}", 404)
    try:
        form = await _form(request)
        form["email"] = await asyncio.to_thread(
            allowed_email, state, agent, form.get("email", "").strip()
        )
        result = await actions.run(state, agent, action, form)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    except Forbidden as exc:
        return _forbidden(str(exc))
    except actions.BadInput as exc:
        data = await panel.gather(state, form["email"])
        return HTMLResponse(panel.render(data, ("error", str(exc))), 422, headers=headers)
    data = await panel.gather(state, result.email)
    flash = ("ok" if result.ok else "error", result.message)
    return HTMLResponse(panel.render(data, flash), 200 if result.ok else 502, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/app/sidebar", open_sidebar, methods=["POST"]),
        Route("/app/sidebar/panel", get_panel, methods=["GET"]),
        Route("/app/sidebar/actions/{action}", post_action, methods=["POST"]),
    ]

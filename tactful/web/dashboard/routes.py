"""Dashboard routes: ``/login``, ``/logout``, ``/`` (overview), ``/people`` (list, search,
filters), ``/people/{person_id}``, ``/segments``, ``/segments/{name}``,
``/destinations/{name}`` (its sync runs and row errors), ``/config``,
``POST /retry`` (dead letters back to pending), ``POST /replay/preview`` (``replay.py``),
``/report`` when ``tactful.report`` is installed, and ``/static/`` (the pages' CSS and
scripts)."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tactful.config import MASK
from tactful.core import codec
from tactful.engine.engine import Engine
from tactful.engine.replay import ReplayInProgress
from tactful.readmodels.views import clock_of, person_json
from tactful.store.records import from_us
from tactful.store.runs import RunStore
from tactful.web.context import WebContext
from tactful.web.dashboard import data, layout, masking, pages, replay
from tactful.web.dashboard import people as people_data
from tactful.web.dashboard import segments as segment_data
from tactful.web.dashboard.auth import (
    COOKIE,
    SECRET_META_KEY,
    DashboardAuth,
    Revocations,
    Session,
    safe_next,
)
from tactful.web.dashboard.destination import destination_page, dry_run
from tactful.web.receiver import BodyTooLarge, read_limited
from tactful.web.security import auth_failed, client_key, throttled

NO_STORE = {"Cache-Control": "no-store"}
_init_lock = threading.Lock()


@dataclass
class Gate:
    auth: DashboardAuth
    session: Session
    cookie: str | None  # a cookie to set (a new anonymous session when login is off)

    @property
    def csrf(self) -> str:
        return self.auth.csrf(self.session)


def _ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def _secret(engine: Engine) -> bytes:
    with engine.store.transaction() as tx:  # first process to start wins; others read it
        value = tx.get_meta(SECRET_META_KEY) or tx.setdefault_meta(
            SECRET_META_KEY, secrets.token_hex(32)
        )
    return bytes.fromhex(value)


async def _auth(request: Request) -> DashboardAuth:
    existing: DashboardAuth | None = getattr(request.app.state, "dashboard_auth", None)
    if existing is not None:
        return existing
    ctx = _ctx(request)
    secret = await asyncio.to_thread(_secret, ctx.engine)
    api = ctx.settings.api
    with _init_lock:
        existing = getattr(request.app.state, "dashboard_auth", None)
        if existing is None:
            existing = DashboardAuth(
                secret,
                {"token": api.token or "", "password": api.dashboard_password or ""},
                revocations=Revocations(ctx.engine.store),
            )
            request.app.state.dashboard_auth = existing
    return existing


def secure_cookie(request: Request) -> bool:
    """``[api] secure_cookies``; unset: Secure when the request came over https (directly or
    through a proxy that uvicorn trusts, ``tactful serve --forwarded-allow-ips``)."""
    configured = _ctx(request).settings.api.secure_cookies
    return request.url.scheme == "https" if configured is None else configured


def _set_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
    )


async def _form(request: Request) -> dict[str, str]:
    body = await read_limited(request, 64 * 1024)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


Handler = Callable[[Request, Gate], Awaitable[Response]]


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Logged-in sessions only (login page otherwise); POSTs need the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        auth = await _auth(request)
        session = await asyncio.to_thread(auth.verify, request.cookies.get(COOKIE))
        cookie = None
        if session is None:
            if auth.login_required or request.method != "GET":
                if request.method != "GET":
                    return PlainTextResponse("403 session expired: log in again", 403)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            session, cookie = auth.issue(logged_in=False)
        show = _ctx(request).settings.api.shows_identifiers(session.role)
        with masking.showing(show):
            response = await handler(request, Gate(auth, session, cookie))
        if cookie is not None:
            _set_cookie(request, response, cookie, int(auth.lifetime))
        response.headers.update(NO_STORE)
        return response

    return endpoint


def _page(request: Request, gate: Gate, title: str, body: str, status: int = 200) -> Response:
    html = layout.page(
        title,
        body,
        active=request.url.path,
        csrf=gate.csrf,
        logout=gate.auth.login_required,
        rebuilding=_ctx(request).rebuilding(),
    )
    return HTMLResponse(html, status)


async def login_form(request: Request) -> Response:
    auth = await _auth(request)
    target = safe_next(request.query_params.get("next"))
    if not auth.login_required or auth.verify(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(target, 303)
    return HTMLResponse(layout.login_page(target), headers=NO_STORE)


async def login(request: Request) -> Response:
    auth = await _auth(request)
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    target = safe_next(form.get("next"))
    if not auth.login_required:
        return RedirectResponse(target, 303)
    ctx, client = _ctx(request), client_key(request.scope)
    retry = throttled(ctx, "dashboard", client)
    if retry is not None:
        page = layout.login_page(target, f"Too many failed attempts: try again in {retry} s.")
        return HTMLResponse(page, 429, headers={"Retry-After": retry, **NO_STORE})
    role = auth.role_of(form.get("password", ""))
    if role is None:
        auth_failed(ctx, "dashboard", client)
        page = layout.login_page(target, "Wrong token or password.")
        return HTMLResponse(page, 401, headers=NO_STORE)
    ctx.throttle.succeeded(client)
    _, cookie = auth.issue(logged_in=True, role=role)
    response = RedirectResponse(target, 303, headers=NO_STORE)
    _set_cookie(request, response, cookie, int(auth.lifetime))
    return response


async def logout(request: Request, gate: Gate) -> Response:
    form = await _form(request)
    if not gate.auth.csrf_ok(gate.session, form.get("csrf", "")):
        return PlainTextResponse("403 bad CSRF token", 403)
    await asyncio.to_thread(gate.auth.revoke, gate.session)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def overview(request: Request, gate: Gate) -> Response:
    ctx = _ctx(request)
    ov = await asyncio.to_thread(data.overview, ctx)
    labels = await asyncio.to_thread(people_data.labels_for, ctx, [c[0] for c in ov.changes])
    flash = request.query_params.get("retried")
    message = f"{flash} dead letters back to pending." if flash and flash.isdigit() else None
    return _page(request, gate, "Overview", pages.overview(ov, gate.csrf, labels, message))


async def retry(request: Request, gate: Gate) -> Response:
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    if not gate.auth.csrf_ok(gate.session, form.get("csrf", "")):
        return PlainTextResponse("403 bad CSRF token: reload the page", 403)
    destination = form.get("destination") or None
    count = await asyncio.to_thread(data.retry_dead, _ctx(request), destination)
    return RedirectResponse(f"/?retried={count}#destinations", 303)


async def replay_preview(request: Request, gate: Gate) -> Response:
    """What ``tactful replay`` would change (a dry run: nothing changes)."""
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    if not gate.auth.csrf_ok(gate.session, form.get("csrf", "")):
        return PlainTextResponse("403 bad CSRF token: reload the page", 403)
    try:
        result = await asyncio.to_thread(replay.run, _ctx(request))
    except ReplayInProgress as exc:
        return _page(request, gate, "Replay preview", f'<p class="bad">{escape(str(exc))}</p>', 409)
    return _page(request, gate, "Replay preview", replay.show(result))


def _person(ctx: WebContext, person_id: str) -> str | None:
    """The person's detail section, or None when there is no such person."""
    with ctx.engine.store.reader() as reader:
        pid = reader.resolve_person_id(person_id)
        if pid is None:
            return None
        found = person_json(reader, ctx.engine.rules, ctx.consent_defaults, pid)
        label = people_data.named(reader, people_data.labels(reader, [pid]))[pid]
        now = from_us(data.now_us(clock_of(reader)))
    if found is None:
        return None
    rules = {s.name: s.when for s in ctx.settings.segments}
    names = [d.name for d in ctx.settings.destinations]
    deliveries = RunStore(ctx.engine.store).of_person(pid, names)
    return pages.person(found, label, rules, now, deliveries)


def _int(text: str | None, default: int = 1) -> int:
    return int(text) if text and text.isdigit() else default


async def people(request: Request, gate: Gate) -> Response:
    ctx = _ctx(request)
    params = request.query_params
    query = params.get("q", "").strip()
    segment, state = params.get("segment", ""), params.get("state", "")
    pl = await asyncio.to_thread(
        people_data.people, ctx, query, segment, state, _int(params.get("page"))
    )
    detail = ""
    if query and pl.total == 1:  # one match: show the person right away
        found = await asyncio.to_thread(_person, ctx, pl.rows[0].label.person_id)
        detail = found or ""

    def page_url(n: int) -> str:
        kept = {"q": query, "segment": segment, "state": state, "page": str(n)}
        return "/people?" + urlencode({k: v for k, v in kept.items() if v})

    body = pages.people(
        pl,
        [s.name for s in ctx.settings.segments],
        people_data.states(ctx),
        page_url,
        detail,
    )
    status = 404 if query and not pl.total else 200
    return _page(request, gate, "People", body, status)


async def person(request: Request, gate: Gate) -> Response:
    ctx = _ctx(request)
    body = await asyncio.to_thread(_person, ctx, request.path_params["person_id"])
    if body is None:
        return _page(request, gate, "Person", '<p class="bad">No such person.</p>', 404)
    return _page(request, gate, "Person", body)


async def segments(request: Request, gate: Gate) -> Response:
    rows = await asyncio.to_thread(segment_data.segment_list, _ctx(request))
    return _page(request, gate, "Segments", pages.segments(rows))


async def segment(request: Request, gate: Gate) -> Response:
    ctx = _ctx(request)
    name = request.path_params["name"]
    after = request.query_params.get("after") or None
    found = await asyncio.to_thread(segment_data.segment_page, ctx, name, after)
    if found is None:
        return _page(request, gate, "Segment", '<p class="bad">No such segment.</p>', 404)
    when = request.query_params.get("rule", "").strip()
    tried = await asyncio.to_thread(segment_data.segment_preview, ctx, name, when) if when else None
    body = pages.segment(found, after, from_us(found.now_us), tried)
    status = 400 if tried is not None and tried.error else 200
    return _page(request, gate, f"Segment {name}", body, status)


async def destination(request: Request, gate: Gate) -> Response:
    ctx = _ctx(request)
    name = request.path_params["name"]
    text = request.query_params.get("before", "")
    before = int(text) if text.isdigit() else None
    found = await asyncio.to_thread(destination_page, ctx, name, before)
    if found is None:
        return _page(request, gate, "Destination", '<p class="bad">No such destination.</p>', 404)
    now = from_us(data.now_us(None))
    body = pages.destination(found, before, now, gate.csrf)
    return _page(request, gate, f"Destination {name}", body)


async def destination_dry_run(request: Request, gate: Gate) -> Response:
    """The destination's page with what a sync would send to it now (sends nothing)."""
    try:
        form = await _form(request)
    except BodyTooLarge:
        return PlainTextResponse("413 body too large", 413)
    if not gate.auth.csrf_ok(gate.session, form.get("csrf", "")):
        return PlainTextResponse("403 bad CSRF token: reload the page", 403)
    ctx = _ctx(request)
    name = request.path_params["name"]
    found = await asyncio.to_thread(destination_page, ctx, name, None)
    if found is None:
        return _page(request, gate, "Destination", '<p class="bad">No such destination.</p>', 404)
    found.preview = await asyncio.to_thread(dry_run, ctx, name)
    body = pages.destination(found, None, from_us(data.now_us(None)), gate.csrf)
    return _page(request, gate, f"Destination {name}", body)


async def config(request: Request, gate: Gate) -> Response:
    settings = _ctx(request).settings
    masked = settings.masked()
    api = masked.get("api")
    if isinstance(api, dict) and api.get("dashboard_password"):
        api["dashboard_password"] = MASK
    body = pages.config(masked) + replay.form(gate.csrf)
    return _page(request, gate, "Configuration", body)


def _report_body(document: str) -> str:
    """The report's body without its own heading (the layout has one)."""
    found = re.search(r"<body[^>]*>(.*)</body>", document, re.S)
    body = found.group(1) if found else document
    return re.sub(r"^\s*<h1>.*?</h1>", "", body, count=1, flags=re.S)


async def report(request: Request, gate: Gate) -> Response:
    """The measurement report (``tactful.report``) inside the layout; ``?segment=&since=``."""
    from tactful.report import ReportError, build_report, render_html

    ctx = _ctx(request)
    segment = request.query_params.get("segment") or None
    since_text = request.query_params.get("since") or None
    title = "Measurement report"
    try:
        since = None if since_text is None else codec.parse_time(since_text)
    except ValueError:
        body = '<p class="flash error">since must be ISO 8601 with a UTC offset</p>'
        return _page(request, gate, title, body, 400)

    def build() -> tuple[str, str]:
        built = build_report(ctx.engine.store, ctx.settings, segment=segment, since=since)
        return pages.answers(built), render_html(built)

    try:
        lead, document = await asyncio.to_thread(build)
    except ReportError as exc:
        return _page(request, gate, title, f'<p class="flash error">{escape(str(exc))}</p>', 400)
    body = f'{lead}<section class="report">{_report_body(document)}</section>'
    return _page(request, gate, title, body)


def routes() -> list[BaseRoute]:
    return [
        # The built CSS (Zendesk Garden) and the pages' scripts, packaged with Tactful.
        Mount("/static", StaticFiles(packages=[("tactful.web", "static")]), name="static"),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guarded(logout), methods=["POST"]),
        Route("/", guarded(overview), methods=["GET"]),
        Route("/people", guarded(people), methods=["GET"]),
        Route("/people/{person_id}", guarded(person), methods=["GET"]),
        Route("/segments", guarded(segments), methods=["GET"]),
        Route("/segments/{name}", guarded(segment), methods=["GET"]),
        Route("/destinations/{name}", guarded(destination), methods=["GET"]),
        Route("/destinations/{name}/dry-run", guarded(destination_dry_run), methods=["POST"]),
        Route("/config", guarded(config), methods=["GET"]),
        Route("/retry", guarded(retry), methods=["POST"]),
        Route("/replay/preview", guarded(replay_preview), methods=["POST"]),
        Route("/report", guarded(report), methods=["GET"]),
    ]

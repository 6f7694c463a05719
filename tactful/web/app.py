"""The ASGI app (Starlette): webhooks, API, health, metrics, OpenAPI; and its background work.

``create_app(settings, engine)`` builds it. The background work (the writer, ticker,
Zendesk fetcher, value tagger, alerter and delivery loop) is ``tactful.runtime``'s
supervisor: the lifespan only asks it to start and to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

import httpx
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tactful import __version__
from tactful.alerts.metrics import AlertCollector, ZendeskCollector
from tactful.alerts.service import Alerter
from tactful.clock import now_or
from tactful.config import Settings
from tactful.delivery.metrics import DeliveryCollector
from tactful.delivery.worker import ROUND_WAIT
from tactful.destinations.event_schemas import SCHEMAS
from tactful.engine.engine import Engine
from tactful.engine.writer import Writer
from tactful.readmodels.views import clock_of, fmt
from tactful.runtime import SupervisorCollector, server_delivery_worker, server_supervisor
from tactful.store.base import StoreError
from tactful.store.records import to_us
from tactful.web import api, receiver
from tactful.web.context import WebContext
from tactful.web.dashboard.routes import routes as dashboard_routes
from tactful.web.metrics import Metrics
from tactful.web.openapi import openapi_document
from tactful.web.security import (
    auth_failed,
    client_key,
    default_headers,
    host_allowed,
    throttled,
)
from tactful.web.sidebar.routes import routes as sidebar_routes
from tactful.web.sidebar.session import Sessions
from tactful.web.sidebar.state import SidebarState
from tactful.zendesk.client import ZendeskClient

log = logging.getLogger("tactful.web")


# Paths that carry credentials of their own (a signature, a signed JWT, a session): the Host
# check (which stands in for a missing token) does not apply to them.
_OWN_AUTH = ("/webhooks/", "/app/sidebar")
BODY_SECONDS = 30.0  # a request body must arrive within this long (slow clients: 408)


class BodyTimeout(Exception):
    pass


class _Guard:
    """Host check (no token), bearer auth for ``/api/*`` (and ``/metrics`` with
    ``metrics_auth``) with brute-force throttling, security headers, a body deadline, and
    request latency metrics.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs every request an extra
    task and a streamed copy of the response (about a fifth of a webhook's CPU time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: WebContext = scope["app"].state.ctx
        started = time.perf_counter()
        sent: list[bool] = []

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.append(True)
                message = {**message, "headers": _with_defaults(message.get("headers", []))}
            await send(message)

        deadline = asyncio.get_running_loop().time() + BODY_SECONDS

        async def receive_timed() -> Message:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                return await asyncio.wait_for(receive(), max(remaining, 0.0))
            except TimeoutError:
                raise BodyTimeout from None

        refusal = self._refusal(ctx, scope)
        try:
            if refusal is not None:
                await refusal(scope, receive, send_secured)
            else:
                await self.app(scope, receive_timed, send_secured)
        except BodyTimeout:
            ctx.metrics.reject("slow_client")
            if not sent:
                slow = JSONResponse(
                    {
                        "error": "request_timeout",
                        "detail": f"body not received in {BODY_SECONDS:g} s",
                    },
                    status_code=408,
                    headers={"Connection": "close"},
                )
                await slow(scope, receive, send_secured)
        finally:
            label = getattr(scope.get("route"), "path", "other")
            ctx.metrics.latency.labels(label).observe(time.perf_counter() - started)

    def _refusal(self, ctx: WebContext, scope: Scope) -> Response | None:
        path: str = scope["path"]
        api = ctx.settings.api
        headers = Headers(scope=scope)
        if not api.token:
            if path.startswith(_OWN_AUTH):
                return None
            if not host_allowed(headers.get("host", ""), ctx.settings.zendesk.public_url):
                ctx.metrics.reject("bad_host")
                return JSONResponse(
                    {
                        "error": "host_not_allowed",
                        "detail": "without [api] token only localhost names are served "
                        "(or the host of [zendesk] public_url)",
                    },
                    status_code=400,
                )
            return None
        surface = "api" if path.startswith("/api/") else "metrics" if path == "/metrics" else None
        if surface is None or (surface == "metrics" and not api.metrics_auth):
            return None
        client = client_key(scope)
        retry = throttled(ctx, surface, client)
        if retry is not None:
            return JSONResponse(
                {
                    "error": "too_many_attempts",
                    "detail": f"too many failed attempts: retry in {retry} s",
                },
                status_code=429,
                headers={"Retry-After": retry},
            )
        given = headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {api.token}".encode()):
            ctx.throttle.succeeded(client)
            return None
        auth_failed(ctx, surface, client)
        return JSONResponse(
            {"error": "unauthorized", "detail": "Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def _with_defaults(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers = list(raw)
    present = {name.lower() for name, _ in headers}
    kind = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
    own_policy = b"content-security-policy" in present
    for name, value in default_headers(kind):
        if name in present or (own_policy and name == b"x-frame-options"):
            continue  # a page that sets its own frame-ancestors must not be denied by XFO
        headers.append((name, value))
    return headers


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The store refused the work (disk full, read-only, unreachable): nothing was written or
    acknowledged; 503 + Retry-After makes Zendesk (and API clients) send it again later."""
    log.error("store unavailable: %s", exc)
    request.app.state.ctx.metrics.store_writable.set(0)
    return JSONResponse(
        {"error": "store_unavailable", "detail": str(exc)},
        status_code=503,
        headers={"Retry-After": "30"},
    )


async def healthz(request: Request) -> Response:
    ctx: WebContext = request.app.state.ctx
    with ctx.engine.store.reader() as reader:  # cheap: one meta row, no counting
        clock = clock_of(reader)
    return JSONResponse({"status": "ok", "version": __version__, "engine_clock": fmt(clock)})


READY_SECONDS = 5.0


def _probe_write(engine: Engine) -> None:
    """A write to the store; while a replay holds it, webhooks are acknowledged from the
    store's inbox (``tactful.engine.writer``), so the inbox answering is enough."""
    with engine.store.unless_replaying() as free:
        inbox = None if free else engine.store.inbox()
        if inbox is not None:
            inbox.pending()
            return
        with engine.store.transaction() as tx:  # one meta row, overwritten each time
            tx.set_meta("readiness_probe", engine.wall_clock().isoformat())


async def readyz(request: Request) -> Response:
    """Ready when the store takes a write within ``READY_SECONDS`` (disk full, read-only or
    unreachable: 503); ``tactful_store_writable`` says the same."""
    ctx: WebContext = request.app.state.ctx
    try:
        await asyncio.wait_for(asyncio.to_thread(_probe_write, ctx.engine), READY_SECONDS)
    except Exception as exc:  # any failure to write means: do not send traffic here
        ctx.metrics.store_writable.set(0)
        detail = "store write timed out" if isinstance(exc, TimeoutError) else str(exc)
        log.error("not ready: %s", detail)
        return JSONResponse(
            {"status": "unavailable", "detail": detail},
            status_code=503,
            headers={"Retry-After": "30"},
        )
    ctx.metrics.store_writable.set(1)
    return JSONResponse({"status": "ready", "version": __version__})


async def metrics(request: Request) -> Response:
    ctx: WebContext = request.app.state.ctx
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def schemas(request: Request) -> Response:
    """``/schemas/``: the outgoing event types; ``/schemas/<type>.json``: its JSON Schema."""
    name = request.path_params.get("name")
    if name is None:
        return JSONResponse({"schemas": [f"/schemas/{t}.json" for t in sorted(SCHEMAS)]})
    schema = SCHEMAS.get(name.removesuffix(".json"))
    if schema is None or not name.endswith(".json"):
        return JSONResponse(
            {"error": "not_found", "detail": f"no schema {name!r}; see /schemas/"},
            status_code=404,
        )
    return JSONResponse(schema, media_type="application/schema+json")


def _session_secret(engine: Engine) -> bytes:
    """The sidebar's session key, kept in the store: sessions survive restarts and work
    across several server processes on one database. Read without writing once it exists
    (a server starting while a replay holds the store does not wait for it)."""
    known = engine.get_meta("sidebar_session_secret")
    if known is not None:
        return bytes.fromhex(known)
    with engine.store.transaction() as tx:  # first process to start wins; others read it
        value = tx.get_meta("sidebar_session_secret") or tx.setdefault_meta(
            "sidebar_session_secret", secrets.token_hex(32)
        )
    return bytes.fromhex(value)


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    tick_seconds: float = 1.0,
    clock: Callable[[], datetime] | None = None,
    zendesk: ZendeskClient | None = None,
    fetch_seconds: float = 2.0,
    deliver_seconds: float = 0.2,
    destination_transport: httpx.BaseTransport | None = None,
    freeze_gc: bool = False,
) -> Starlette:
    """``zendesk``: the API client used to fetch tickets of unparsable webhook bodies
    (default: built from ``[zendesk]`` when its API credentials are configured).

    ``freeze_gc`` (``tactful serve``): once started, everything built so far (settings, rules,
    caches, modules) lives as long as the process, so it is moved out of the garbage
    collector's sight (``gc.freeze``): its passes stay short and stop adding tens of
    milliseconds to a few requests (webhook p99 37–70 ms → 27–32 ms in A/B runs)."""
    wall = now_or(clock)
    metric_set = Metrics(wall)
    writer = Writer(engine, on_applied=metric_set.record)
    ctx = WebContext(settings, engine, writer, metric_set)
    ctx.delivery_worker = server_delivery_worker(
        settings, engine.store, destination_transport, clock
    )
    metric_set.watch_store(ctx.store_figures)
    if settings.destinations:
        names = [d.name for d in settings.destinations]
        metric_set.registry.register(DeliveryCollector(engine.store, names))
    metric_set.registry.register(ZendeskCollector(engine.store))
    alerter = None
    if settings.alerts:
        alerter = Alerter(
            settings,
            engine.store,
            clock_us=lambda: to_us(wall()),
            bad_signatures=lambda: metric_set.bad_signatures,
        )
        metric_set.registry.register(AlertCollector(alerter))
    sidebar = SidebarState(
        ctx, wall, sessions=Sessions(_session_secret(engine)), transport=destination_transport
    )
    background = server_supervisor(
        ctx,
        clock=wall,
        tick_seconds=tick_seconds,
        zendesk=zendesk,
        fetch_seconds=fetch_seconds,
        deliver_seconds=deliver_seconds,
        worker=server_delivery_worker(
            settings, engine.store, destination_transport, clock, round_wait=ROUND_WAIT
        ),
        alerter=alerter,
    )
    background.service("sidebar", stop=sidebar.close)
    metric_set.registry.register(SupervisorCollector(background))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await background.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await background.stop()

    routes = [
        Route("/webhooks/zendesk", receiver.zendesk_webhook, methods=["POST"]),
        Route("/api/people/{key}", api.get_person, methods=["GET"]),
        Route("/api/segments", api.get_segments, methods=["GET"]),
        Route("/api/segments/{name}/members", api.get_members, methods=["GET"]),
        Route("/api/events", api.post_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/schemas/", schemas, methods=["GET"]),
        Route("/schemas/{name}", schemas, methods=["GET"]),
        *sidebar_routes(),
        *dashboard_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Guard)],
        lifespan=lifespan,
        exception_handlers={StoreError: _store_unavailable},
    )
    app.state.ctx = ctx
    app.state.sidebar = sidebar
    app.state.background = background
    return app


Handler = Callable[[Request], Awaitable[Response]]

"""``tactful serve``: the HTTP API, webhook receiver and background work in one process."""

from __future__ import annotations

import ipaddress
import signal
from typing import TYPE_CHECKING, Any

from tactful.cli.base import App, CommandError

if TYPE_CHECKING:  # loaded only by the commands that serve
    import uvicorn
    from starlette.applications import Starlette


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the webhook receiver, API and background workers")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--tick-seconds",
        type=float,
        default=1.0,
        help="how often the engine clock follows the wall clock (default 1s)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies trusted for X-Forwarded-For/-Proto (client address, https); comma "
        "separated, default 127.0.0.1 (a reverse proxy on this machine)",
    )
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser(
        "worker",
        help="background work only (clock, deliveries), no HTTP: for extra processes",
    )
    p.add_argument(
        "--tick-seconds", type=float, default=1.0, help="clock follows the wall clock (1s)"
    )
    p.add_argument(
        "--deliver-seconds", type=float, default=0.2, help="idle pause between delivery rounds"
    )
    p.set_defaults(handler=cmd_worker)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(app: App) -> int:
    import uvicorn

    settings = app.settings
    host = app.args.host
    if not settings.api.token and not is_loopback(host):
        raise CommandError(
            f"refusing to serve the API on {host} without [api] token: set it (e.g. "
            'token = "env:TACTFUL_API_TOKEN") or bind to 127.0.0.1'
        )
    if not settings.zendesk.webhook_secret:
        app.console.print(
            "[yellow]warning:[/yellow] [zendesk] webhook_secret is not set: "
            "webhooks will be refused (401)"
        )
    web = app.runtime.web_app(tick_seconds=app.args.tick_seconds, freeze_gc=True)
    config = server_config(
        web, host, app.args.port, app.args.log_level, app.args.forwarded_allow_ips
    )
    # uvicorn captures SIGTERM/SIGINT, shuts down gracefully (stops accepting, lets requests
    # finish, runs the lifespan shutdown: ticker stopped, writer drained) and then re-raises
    # the signal to the handler that was installed before it: ours makes that a clean exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(config).run()
    return 0


def server_config(
    web: Starlette, host: str, port: int, log_level: str, forwarded_allow_ips: str
) -> uvicorn.Config:
    """uvicorn's settings: slow-client limits (``tactful.web.server``) and the proxies whose
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed."""
    import uvicorn

    from tactful.web.server import limits

    return uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        **limits(),
    )


def cmd_worker(app: App) -> int:
    """Tick the engine clock, check the alerts and deliver, until SIGTERM/SIGINT
    (``tactful.runtime``'s supervisor restarts a loop that crashes). Any number of workers
    and ``serve`` processes may share one PostgreSQL database: timers and deliveries are
    claimed, so each piece of work is done once, and a killed worker's claims pass to the
    others."""
    import asyncio

    from tactful.runtime import run_until_signalled

    background = app.runtime.background(
        tick_seconds=app.args.tick_seconds, deliver_seconds=app.args.deliver_seconds
    )
    asyncio.run(run_until_signalled(background))
    return 0

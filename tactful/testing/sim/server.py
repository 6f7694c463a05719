"""Serve an ASGI app on loopback in a background thread (tests, ``make demo``).

``base_url, stop = run_in_thread(app)`` binds 127.0.0.1 on a free port (port 0, then reads
the bound port), waits until the server accepts connections and returns its base URL and a
``stop()`` that shuts it down cleanly and joins the thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import uvicorn

STARTUP_TIMEOUT = 10.0


def run_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> tuple[str, Callable[[], None]]:
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, lifespan=lifespan
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} did not start")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STARTUP_TIMEOUT)
            raise RuntimeError(f"the server on {host}:{port} did not start in time")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STARTUP_TIMEOUT)

    return f"http://{host}:{bound}", stop

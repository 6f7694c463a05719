"""Issue 21: destination clients honour ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` and
``NO_PROXY`` again (the total-deadline transport had dropped them), and the deadline still
bounds a request that goes through a proxy.

A forward proxy on loopback: it answers absolute-form requests (``POST http://host:port/…``)
by forwarding them to 127.0.0.1 on the same port, so a name that resolves nowhere
(``hooks.example.test``) is reachable only through it."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.delivery.deadline import DeadlineTransport, bypasses
from tactful.destinations import registry
from tactful.destinations.base import Identifiers, Item
from tests.integration.fault_servers import FaultServer, fault_servers

SECRET = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
ITEM = Item("k1", "event", "p_1", datetime(2026, 12, 1, tzinfo=UTC), Identifiers(), "e", None, {})


class ForwardProxy:
    """Records each request line; ``hang``: reads the request and never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.lines: list[str] = []
        self.stop = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy.lines.append(self.requestline)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if hang:
                    proxy.stop.wait()
                    return
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request("POST", target.path, body, {**headers, "host": target.netloc})
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[FaultServer]:
    with fault_servers("ok") as servers:
        yield servers["ok"]


def send_via(url: str, deadline: float = 5.0) -> tuple[str, float]:
    config = DestinationSettings.model_validate(
        {"name": "hook", "type": "webhook", "url": url, "secret": SECRET}
    )
    dest = registry.create(config, transport=DeadlineTransport(deadline))
    started = time.monotonic()
    try:
        [outcome] = dest.send([ITEM])
    finally:
        dest.close()
    return outcome.kind, time.monotonic() - started


def test_a_destination_reaches_its_vendor_through_http_proxy(
    upstream: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        kind, _ = send_via(f"http://hooks.example.test:{upstream.port}/hook")
    finally:
        proxy.close()
    assert kind == "ok"
    assert proxy.lines == [f"POST http://hooks.example.test:{upstream.port}/hook HTTP/1.1"]
    assert upstream.requests == 1


def test_all_proxy_is_the_fallback_and_no_proxy_goes_direct(
    upstream: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ForwardProxy()
    try:
        monkeypatch.delenv("HTTP_PROXY", raising=False)
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        assert send_via(f"http://hooks.example.test:{upstream.port}/hook")[0] == "ok"
        assert send_via(f"http://127.0.0.1:{upstream.port}/hook")[0] == "ok"
    finally:
        proxy.close()
    assert len(proxy.lines) == 1  # the second went direct
    assert upstream.requests == 2


def test_the_total_deadline_still_bounds_a_request_through_a_hanging_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = ForwardProxy(hang=True)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        kind, took = send_via("http://hooks.example.test:9/hook", deadline=1.0)
    finally:
        proxy.close()
    assert kind == "retry"
    assert 0.9 < took < 3.0
    assert len(proxy.lines) == 1


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("", "http://a.example.com/", False),
        ("*", "http://a.example.com/", True),
        ("example.com", "http://a.example.com/", True),
        (".example.com", "http://example.com/", True),
        ("example.com", "http://badexample.com/", False),
        ("localhost, 127.0.0.1", "http://127.0.0.1:8080/", True),
        ("a.example.com:8080", "http://a.example.com:8080/", True),
        ("a.example.com:8080", "http://a.example.com:9090/", False),
    ],
)
def test_no_proxy_matching(no_proxy: str, url: str, direct: bool) -> None:
    assert bypasses(no_proxy, httpx.URL(url)) is direct

"""Issue 19: what guards every request — security headers, the Host check without a token,
/metrics behind the token, readiness when the store cannot be written, brute-force limits,
and deadlines for slow clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tactful.config import ConfigError, settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import SQLiteStore, open_store
from tactful.testing import new_store_url
from tactful.web import app as app_module
from tactful.web import server as server_module
from tactful.web.app import create_app
from tactful.web.security import host_allowed
from tactful.web.server import limits
from tactful.web.throttle import Throttle
from tests.integration.test_web import CONFIG, TOKEN, auth, client

__all__ = ["client"]

OPEN_CONFIG = """
[zendesk]
public_url = "https://tactful.example.com"

[[segments]]
name = "everyone"
when = "true"
"""


def make_app(tmp_path: Path, config: str) -> Starlette:
    settings = settings_from_toml(config, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    return create_app(settings, engine, tick_seconds=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- headers -------------------------------------------------------------------------------


def test_every_response_carries_security_headers(client: TestClient) -> None:
    for r in (
        client.get("/api/segments", headers=auth()),
        client.get("/api/segments"),  # 401
        client.get("/healthz"),
        client.get("/metrics"),
        client.post("/webhooks/zendesk", content=b"{}"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


# --- Host check ----------------------------------------------------------------------------


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path, OPEN_CONFIG), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.mark.parametrize("path", ["/api/segments", "/metrics", "/openapi.json", "/", "/healthz"])
def test_without_a_token_a_foreign_host_is_refused(open_client: TestClient, path: str) -> None:
    r = open_client.get(path, headers={"Host": "rebind.attacker.example:8000"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "host_not_allowed"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost", "tactful.example.com"]
)
def test_without_a_token_loopback_and_public_hosts_are_served(
    open_client: TestClient, host: str
) -> None:
    assert open_client.get("/api/segments", headers={"Host": host}).status_code == 200


def test_surfaces_with_their_own_credentials_skip_the_host_check(open_client: TestClient) -> None:
    foreign = {"Host": "rebind.attacker.example"}
    assert open_client.post("/webhooks/zendesk", content=b"{}", headers=foreign).status_code == 401
    assert open_client.post("/app/sidebar", data={}, headers=foreign).status_code in (401, 503)


def test_with_a_token_any_host_is_served(client: TestClient) -> None:
    r = client.get("/api/segments", headers={**auth(), "Host": "tactful.example.com"})
    assert r.status_code == 200


def test_host_allowed() -> None:
    assert host_allowed("LOCALHOST:1", None)
    assert not host_allowed("127.0.0.1.attacker.example", None)
    assert not host_allowed("", None)
    assert not host_allowed("evil.example", None)
    assert host_allowed("a.example:443", "https://a.example")


# --- /metrics behind the token -------------------------------------------------------------


def test_metrics_can_require_the_token(tmp_path: Path) -> None:
    config = CONFIG.replace(f'token = "{TOKEN}"', f'token = "{TOKEN}"\nmetrics_auth = true')
    with TestClient(make_app(tmp_path, config)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth()).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_metrics_are_open_by_default(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200


def test_metrics_auth_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="metrics_auth needs token"):
        settings_from_toml("[api]\nmetrics_auth = true\n", environ={})


# --- readiness -----------------------------------------------------------------------------


def test_readiness_fails_while_the_store_cannot_be_written(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    store = client.app.state.ctx.engine.store  # type: ignore[attr-defined]
    assert isinstance(store, SQLiteStore)
    store.conn.execute("PRAGMA query_only = ON")  # read-only, as on a remounted disk
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert "tactful_store_writable 0.0" in client.get("/metrics").text
        assert client.get("/healthz").status_code == 200  # alive, only not ready
    finally:
        store.conn.execute("PRAGMA query_only = OFF")
    assert client.get("/readyz").status_code == 200
    assert "tactful_store_writable 1.0" in client.get("/metrics").text


# --- brute force ---------------------------------------------------------------------------


def test_wrong_api_tokens_are_throttled_with_429(client: TestClient) -> None:
    clock = Clock()
    client.app.state.ctx.throttle = Throttle(clock=clock)  # type: ignore[attr-defined]
    answers = [
        client.get("/api/segments", headers={"Authorization": f"Bearer guess-{i}"}).status_code
        for i in range(200)
    ]
    assert answers[:5] == [401] * 5
    assert answers[5:].count(429) >= 190
    limited = client.get("/api/segments", headers=auth())  # even the right token: no oracle
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    clock.now += 3600
    assert client.get("/api/segments", headers=auth()).status_code == 200
    text = client.get("/metrics").text
    assert 'tactful_auth_failures_total{surface="api"}' in text
    assert 'tactful_auth_throttled_total{surface="api"}' in text


def test_throttle_backs_off_per_client_and_globally() -> None:
    clock = Clock()
    t = Throttle(free=2, base=1.0, cap=8.0, global_limit=20, global_window=60.0, clock=clock)
    for _ in range(2):
        assert t.retry_after("a") is None
        t.failed("a")
    assert t.retry_after("a") == pytest.approx(1.0)
    t.failed("a")
    assert t.retry_after("a") == pytest.approx(2.0)  # doubles
    for _ in range(10):
        t.failed("a")
    assert t.retry_after("a") == pytest.approx(8.0)  # capped
    assert t.retry_after("b") is None
    for _ in range(7):
        t.failed("c")
    assert t.retry_after("b") == pytest.approx(60.0)  # 20 failures in a minute: all wait
    clock.now += 61
    assert t.retry_after("b") is None
    t.succeeded("a")
    assert t.retry_after("a") is None


def test_throttle_tracks_a_bounded_number_of_clients() -> None:
    t = Throttle(max_clients=100, global_limit=10**9)
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t._clients) == 100


# --- slow clients --------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(app_module, "BODY_SECONDS", 1.0)
    monkeypatch.setattr(server_module.GuardedH11Protocol, "header_seconds", 1.0)
    web = make_app(tmp_path, CONFIG)
    config = uvicorn.Config(web, host="127.0.0.1", port=0, log_level="error", **limits())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


def _open(address: tuple[str, int], first: bytes, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(address, timeout=5)
        s.sendall(first)
        socks.append(s)
    return socks


def _closed_within(socks: list[socket.socket], seconds: float) -> tuple[int, list[bytes]]:
    """How many were closed by the server within ``seconds``, and what they were told."""
    deadline = time.monotonic() + seconds
    closed, answers = 0, []
    for s in socks:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
            closed += 1
        except (TimeoutError, ConnectionResetError):
            pass
        answers.append(data)
        s.close()
    return closed, answers


def test_connections_trickling_headers_are_closed(served: tuple[str, int]) -> None:
    socks = _open(served, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 300)
    started = time.monotonic()
    closed, _ = _closed_within(socks, 8.0)
    assert closed == 300
    assert time.monotonic() - started < 8.0


def test_idle_connections_are_closed(served: tuple[str, int]) -> None:
    closed, _ = _closed_within(_open(served, b"", 20), 8.0)
    assert closed == 20


def test_connections_trickling_bodies_get_408(served: tuple[str, int]) -> None:
    head = (
        b"POST /webhooks/zendesk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    socks = _open(served, head, 100)
    closed, answers = _closed_within(socks, 10.0)
    assert closed == 100
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:1]

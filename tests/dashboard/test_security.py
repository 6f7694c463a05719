"""Issue 19, dashboard: brute-force limits on the login, non-ASCII cookies and CSRF values,
logout revoked on the server, Secure cookies, and a strict CSP the pages pass."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tactful.web.dashboard.auth import COOKIE, DashboardAuth
from tactful.web.throttle import Throttle
from tests.dashboard.helpers import PASSWORD, World
from tests.dashboard.test_routes import csrf_of, login

pytestmark = pytest.mark.store


def test_wrong_passwords_are_throttled_with_429(client: TestClient) -> None:
    now = [1000.0]
    client.app.state.ctx.throttle = Throttle(clock=lambda: now[0])  # type: ignore[attr-defined]
    answers = [
        client.post("/login", data={"password": f"guess-{i}"}, follow_redirects=False).status_code
        for i in range(300)
    ]
    assert answers[:5] == [401] * 5
    assert answers[5:].count(429) >= 290
    r = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # no oracle
    now[0] += 3600
    login(client)
    metrics = client.get("/metrics").text
    assert 'tactful_auth_failures_total{surface="dashboard"} 5.0' in metrics
    assert 'tactful_auth_throttled_total{surface="dashboard"}' in metrics


@pytest.mark.parametrize("cookie", ["é.é", "x.ü", "abc.\u2603", "\u2603"])
def test_non_ascii_cookies_are_no_session(cookie: str) -> None:
    auth = DashboardAuth(b"s" * 32, ["pw"])
    assert auth.verify(cookie) is None
    session, _ = auth.issue(logged_in=True)
    assert not auth.csrf_ok(session, cookie)


def test_non_ascii_csrf_is_refused(client: TestClient) -> None:
    login(client)
    r = client.post("/retry", data={"csrf": "ünïcödé"}, follow_redirects=False)
    assert r.status_code == 403


def test_logout_revokes_the_session_on_the_server(client: TestClient, w: World) -> None:
    login(client)
    stolen = client.cookies[COOKIE]
    page = client.get("/")
    assert page.status_code == 200
    r = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    with TestClient(w.app) as other:  # the old cookie, replayed from elsewhere
        other.cookies.set(COOKIE, stolen)
        r = other.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    login(client)  # a new login works
    assert client.get("/", follow_redirects=False).status_code == 200


def _set_cookie(client: TestClient) -> str:
    r = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return r.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("setting", "scheme", "secure"),
    [
        (None, "http", False),
        (None, "https", True),
        (True, "http", True),
        (False, "https", False),
    ],
)
def test_secure_cookies(w: World, setting: bool | None, scheme: str, secure: bool) -> None:
    w.settings.api.secure_cookies = setting
    with TestClient(w.app, base_url=f"{scheme}://testserver") as c:
        assert ("; secure" in _set_cookie(c)) is secure


def test_pages_have_a_strict_csp_matching_their_styles(client: TestClient) -> None:
    pages = [client.get("/login")]
    login(client)
    paths = ("/", "/people?q=ann%40example.com", "/destinations/hook", "/config", "/report")
    pages += [client.get(p) for p in paths]
    for r in pages:
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert "style-src 'self'" in csp  # the pages' stylesheets, served from /static
        # nothing the policy would block: no script, no inline style, no event handler
        assert not re.search(r"<script|<style|<[^>]*\s(style|on[a-z]+)=", r.text), r.url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"

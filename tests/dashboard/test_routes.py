"""Dashboard login, CSRF and pages through the ASGI app (no browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.web.dashboard.auth import COOKIE, DashboardAuth, safe_next
from tests.dashboard.helpers import EMAIL, PASSWORD, TOKEN, World, world

pytestmark = pytest.mark.store


def login(client: TestClient, secret: str = PASSWORD) -> None:
    r = client.post("/login", data={"password": secret, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", ["/", "/people?q=ann%40example.com", "/config", "/report"])
def test_without_a_session_every_page_redirects_to_login(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2F")
    assert "ann" not in r.text


def test_login_page_then_back_where_one_was_going(client: TestClient) -> None:
    r = client.get("/login?next=/people%3Fq%3Dann%40example.com")
    assert r.status_code == 200 and 'type="password"' in r.text
    r = client.post(
        "/login",
        data={"password": PASSWORD, "next": "/people?q=ann@example.com"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/people?q=ann@example.com"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.get("/people?q=ann@example.com").status_code == 200


def test_wrong_password_is_a_401_page(client: TestClient) -> None:
    r = client.post("/login", data={"password": "nope", "next": "/"}, follow_redirects=False)
    assert r.status_code == 401
    assert "Wrong token or password" in r.text
    assert "set-cookie" not in r.headers
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_api_token_logs_in_too(client: TestClient) -> None:
    login(client, TOKEN)
    assert client.get("/").status_code == 200


def test_a_tampered_cookie_is_no_session(client: TestClient) -> None:
    login(client)
    value = client.cookies[COOKIE]
    client.cookies.set(COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_retry_needs_the_sessions_csrf_token(w: World, client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/").text)
    assert w.dead_count() == 1
    for form in ({}, {"csrf": "forged"}, {"csrf": token + "x"}):
        r = client.post("/retry", data=form, follow_redirects=False)
        assert r.status_code == 403
    # another session's token is not this session's
    with TestClient(w.app) as other:
        login(other)
        r = other.post("/retry", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 403
    assert w.dead_count() == 1
    r = client.post("/retry", data={"csrf": token, "destination": "hook"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/?retried=1")
    assert w.dead_count() == 0
    assert "1 dead letters back to pending" in client.get(r.headers["location"]).text


def test_retry_without_a_session_is_refused(w: World, client: TestClient) -> None:
    r = client.post("/retry", data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 403
    assert w.dead_count() == 1


def test_logout_ends_the_session(client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": "bad"}).status_code == 403
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_overview_person_and_config_pages(client: TestClient) -> None:
    login(client)
    html = client.get("/").text
    assert 'data-segment="open_issue"' in html and 'data-segment="held"' in html
    assert html.count('<svg class="chart line"') == 2 and '<svg class="chart bar"' in html
    assert 'data-destination="hook"' in html and "HTTP 500: upstream broke" in html
    assert "Recent state changes" in html

    person = client.get("/people", params={"q": EMAIL})
    assert person.status_code == 200
    assert 'class="support-state">clear<' in person.text
    assert "has_open_ticket" in person.text and "entered" in person.text
    assert client.get("/people", params={"q": "nobody@example.com"}).status_code == 404

    config = client.get("/config").text
    assert TOKEN not in config and PASSWORD not in config
    assert "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU=" not in config
    assert "********" in config and "open_issue" in config


def test_the_api_still_wants_its_bearer_token(client: TestClient) -> None:
    login(client)  # a dashboard session is no API credential
    assert client.get("/api/segments").status_code == 401


def test_without_credentials_there_is_no_login(tmp_path: Path) -> None:
    w = world(tmp_path, token=None, password=None)
    try:
        with TestClient(w.app, base_url="http://127.0.0.1:8000") as client:
            r = client.get("/")
            assert r.status_code == 200 and "Log out" not in r.text
            assert client.get("/login", follow_redirects=False).status_code == 303
            # POSTs still carry the (anonymous) session's CSRF token
            assert client.post("/retry", data={}, follow_redirects=False).status_code == 403
            token = csrf_of(r.text)
            r = client.post("/retry", data={"csrf": token}, follow_redirects=False)
            assert r.status_code == 303 and w.dead_count() == 0
    finally:
        w.engine.store.close()


def test_sessions_expire_and_end_when_the_credentials_change() -> None:
    now = [1000.0]
    auth = DashboardAuth(b"s" * 32, ["pw"], lifetime=60, clock=lambda: now[0])
    session, cookie = auth.issue(logged_in=True)
    assert auth.verify(cookie) == session
    assert DashboardAuth(b"s" * 32, ["other"], clock=lambda: now[0]).verify(cookie) is None
    _, anonymous = auth.issue(logged_in=False)
    assert auth.verify(anonymous) is None  # login on: an anonymous session is no login
    now[0] += 61
    assert auth.verify(cookie) is None
    assert not auth.check("") and not auth.check("p") and auth.check("pw")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "/"),
        ("/people?q=a", "/people?q=a"),
        ("//evil.example.com", "/"),
        ("https://evil.example.com/", "/"),
        ("/\\evil.example.com", "/"),
    ],
)
def test_next_stays_on_this_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_the_measurement_report_inside_the_layout(client: TestClient) -> None:
    login(client)
    r = client.get("/report")
    assert r.status_code == 200
    assert r.text.count("<html") == 1 and r.text.count("<body") == 1
    assert '<section class="report">' in r.text and "held" in r.text
    assert client.get("/report", params={"segment": "nope"}).status_code == 400
    assert client.get("/report", params={"since": "yesterday"}).status_code == 400
    r = client.get("/report", params={"segment": "held", "since": "2026-01-01T00:00:00Z"})
    assert r.status_code == 200

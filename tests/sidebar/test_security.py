"""Issue 19, sidebar: the session is bound to the ticket it was opened on and acts only for
its requester (403 otherwise); the signed-URL token needs aud, is used once and lives briefly;
non-ASCII sessions are refused cleanly; failures are throttled; a CSP lets only Zendesk frame
the page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.testing import at, ticket, user
from tactful.web.sidebar.auth import USED_PREFIX, AuthError
from tactful.web.sidebar.session import Sessions
from tactful.web.throttle import Throttle
from tests.sidebar.helpers import EMAIL, TICKET, World, token, world
from tests.sidebar.test_routes import open_page

pytestmark = pytest.mark.store

BOB = "bob@example.com"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path)
    out.engine.apply(
        [user(2, emails=(BOB,), phones=("+14155550100",)), ticket(2, at(0), requester_id=2)]
    )
    yield out
    out.stop()


def bearer(session: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session}"}


def get_panel(client: TestClient, session: str, **params: str):
    return client.get("/app/sidebar/panel", params=params, headers=bearer(session))


def person_of(w: World, email: str) -> str:
    with w.engine.store.reader() as reader:
        return reader.find_persons("email", email)[0]


# --- binding -------------------------------------------------------------------------------


def test_the_first_request_binds_the_session_to_its_ticket(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        r = get_panel(client, session, ticket=str(TICKET), email=EMAIL)
        assert r.status_code == 200 and EMAIL in r.text
        bound = r.headers["x-tactful-session"]
        assert get_panel(client, bound, ticket=str(TICKET)).status_code == 200  # email implied
        assert "x-tactful-session" not in get_panel(client, bound, ticket=str(TICKET)).headers
        other = get_panel(client, bound, ticket="2", email=BOB)
        assert other.status_code == 403 and "belongs to ticket 1" in other.text
        assert BOB not in other.text


@pytest.mark.parametrize(
    "who",
    [BOB, "+14155550100", "2", "p_0", "BOB@EXAMPLE.COM"],
    ids=["email", "phone", "zd-id", "pid", "case"],
)
def test_the_panel_shows_only_the_ticket_requester(w: World, who: str) -> None:
    if who == "p_0":
        who = person_of(w, BOB)
    with TestClient(w.app) as client:
        r = get_panel(client, open_page(client), ticket=str(TICKET), email=who)
    assert r.status_code == 403, r.text
    assert "is not the requester of ticket 1" in r.text and "open_issue" not in r.text


def test_actions_act_only_for_the_ticket_requester(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        r = client.post(
            f"/app/sidebar/actions/health?ticket={TICKET}",
            data={"email": BOB, "idem": "idem-0001", "health": "unsatisfied"},
            headers=bearer(session),
        )
        assert r.status_code == 403
        r = client.post(
            "/app/sidebar/actions/health",  # no ticket named
            data={"email": EMAIL, "idem": "idem-0002", "health": "unsatisfied"},
            headers=bearer(session),
        )
        assert r.status_code == 403
        r = client.post(
            "/app/sidebar/actions/health?ticket=2",
            data={"email": BOB, "idem": "idem-0003", "health": "unsatisfied"},
            headers=bearer(get_panel(client, session, ticket="1").headers["x-tactful-session"]),
        )
        assert r.status_code == 403  # a session bound to ticket 1 cannot act on ticket 2
        with w.engine.store.reader() as reader:
            count = "SELECT COUNT(*) FROM agent_actions"
            assert reader.conn.execute(count).fetchone()[0] == 0  # type: ignore[attr-defined]
        r = client.post(
            f"/app/sidebar/actions/health?ticket={TICKET}",
            data={"email": EMAIL, "idem": "idem-0004", "health": "unsatisfied"},
            headers=bearer(open_page(client)),
        )
        assert r.status_code == 200 and "Health set to unsatisfied" in r.text


# --- the signed-URL token ------------------------------------------------------------------


def test_aud_is_required_by_default(w: World) -> None:
    with TestClient(w.app) as client:
        assert client.post("/app/sidebar", data={"token": token(aud=None)}).status_code == 401
        assert (
            client.post("/app/sidebar", data={"token": token(aud="https://x")}).status_code == 401
        )
        assert client.post("/app/sidebar", data={"token": token()}).status_code == 200


def test_without_public_url_or_audience_the_sidebar_is_not_configured(w: World) -> None:
    w.settings.zendesk.public_url = None
    with TestClient(w.app) as client:
        assert client.post("/app/sidebar", data={"token": token()}).status_code == 503


@pytest.mark.parametrize("jti", ["given", None], ids=["jti", "no-jti"])
def test_a_token_is_used_once(w: World, jti: str | None) -> None:
    tok = token(jti="abc-123" if jti else None)
    with TestClient(w.app) as client:
        assert client.post("/app/sidebar", data={"token": tok}).status_code == 200
        again = client.post("/app/sidebar", data={"token": tok})
        assert again.status_code == 401 and "already used" in again.text


def test_used_tokens_are_forgotten_after_expiry(w: World) -> None:
    with TestClient(w.app) as client:
        for _ in range(3):
            open_page(client, token(exp_in=-20))  # expired, but within the 30 s leeway
        open_page(client)
    with w.engine.store.reader() as reader:
        used = reader.conn.execute(  # type: ignore[attr-defined]
            f"SELECT COUNT(*) FROM meta WHERE key LIKE {w.engine.store.dialect.p}",
            (USED_PREFIX + "%",),
        ).fetchone()[0]
    assert 1 <= used <= 4
    with w.engine.store.transaction() as tx:
        assert tx.prune_meta(USED_PREFIX, f"{time.time() + 3600:020.3f}") == used


def test_token_lifetime_is_capped(w: World) -> None:
    now = int(time.time())
    with TestClient(w.app) as client:
        assert client.post("/app/sidebar", data={"token": token(exp_in=3600)}).status_code == 401
        long = token(exp_in=300, iat=now - 3000)
        r = client.post("/app/sidebar", data={"token": long})
        assert r.status_code == 401 and "lifetime" in r.text
        assert client.post("/app/sidebar", data={"token": token(iat=now)}).status_code == 200


def test_oversized_tokens_are_refused_before_parsing(w: World) -> None:
    import base64 as b64

    header = b64.urlsafe_b64encode(b'{"a":' * 60000 + b"1" + b"}" * 60000).rstrip(b"=")
    with TestClient(w.app) as client:
        r = client.post("/app/sidebar", data={"token": header.decode() + ".e30.sig"})
    assert r.status_code == 401 and "longer than" in r.text


@pytest.mark.parametrize("value", ["é.é", "x.ü", "\u2603"])
def test_non_ascii_sessions_are_refused_not_errors(value: str) -> None:
    with pytest.raises(AuthError):
        Sessions().verify(value)


def test_failed_opens_are_throttled(w: World) -> None:
    w.app.state.ctx.throttle = Throttle()
    with TestClient(w.app) as client:
        codes = [
            client.post("/app/sidebar", data={"token": "forged"}).status_code for _ in range(30)
        ]
        assert codes[:5] == [401] * 5 and codes[5:].count(429) >= 24
        assert client.post("/app/sidebar", data={"token": token()}).status_code == 429


# --- CSP -----------------------------------------------------------------------------------


def test_the_page_may_be_framed_only_by_zendesk(w: World) -> None:
    with TestClient(w.app) as client:
        r = client.post("/app/sidebar", data={"token": token()})
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors https://glowlab.zendesk.com" in csp
    assert "x-frame-options" not in r.headers
    # no inline script (the JSON data block is not run) and no inline style
    assert re.findall(r"<script>(.*?)</script>", r.text, re.S) == []
    assert "<style" not in r.text and not re.search(r"<[^>]*\s(style|on[a-z]+)=", r.text)
    assert "script-src 'self' https://static.zdassets.com" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"

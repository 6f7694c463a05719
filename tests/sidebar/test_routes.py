"""The sidebar through HTTP (TestClient): auth, panel content, actions, failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.sidebar.helpers import EMAIL, OTHER_PRIVATE, TICKET, World, days, token, world

pytestmark = pytest.mark.store


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path)
    yield out
    out.stop()


def open_page(client: TestClient, tok: str | None = None) -> str:
    resp = client.post("/app/sidebar", data={"token": tok or token()})
    assert resp.status_code == 200, resp.text
    found = re.search(r'"session": "([^"]+)"', resp.text)
    assert found
    return found.group(1)


def panel(client: TestClient, session: str, email: str = EMAIL, ticket: int = TICKET) -> str:
    resp = client.get(
        "/app/sidebar/panel",
        params={"email": email, "ticket": str(ticket)},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert resp.status_code == 200, resp.text
    return resp.text


def act(client: TestClient, session: str, action: str, idem: str = "idem-0001", **form: str):
    return client.post(
        f"/app/sidebar/actions/{action}?ticket={TICKET}",
        data={"email": EMAIL, "idem": idem, **form},
        headers={"Authorization": f"Bearer {session}"},
    )


@pytest.mark.parametrize(
    "bad",
    [
        None,
        token(key=OTHER_PRIVATE),
        token(exp_in=-300),
        token(iss="other.zendesk.com"),
    ],
)
def test_bad_tokens_get_401_and_no_data(w: World, bad: str | None) -> None:
    with TestClient(w.app) as client:
        resp = client.post("/app/sidebar", data={} if bad is None else {"token": bad})
        assert resp.status_code == 401
        assert "session" not in resp.text and EMAIL not in resp.text
        for path in (f"/app/sidebar/panel?ticket={TICKET}&email={EMAIL}",):
            denied = client.get(path, headers={"Authorization": "Bearer forged.sig"})
            assert denied.status_code == 401 and "open_issue" not in denied.text
        denied = client.post("/app/sidebar/actions/health", data={"health": "neutral"})
        assert denied.status_code == 401


def test_wrong_audience_is_refused(tmp_path: Path) -> None:
    w = world(tmp_path, audience="https://tactful.example.com/app/sidebar")
    try:
        with TestClient(w.app) as client:
            assert client.post("/app/sidebar", data={"token": token(aud="x")}).status_code == 401
            ok = token(aud="https://tactful.example.com/app/sidebar")
            assert client.post("/app/sidebar", data={"token": ok}).status_code == 200
    finally:
        w.stop()


def test_session_expires(w: World) -> None:
    now = [0.0]
    w.app.state.sidebar.sessions.clock = lambda: now[0]
    with TestClient(w.app) as client:
        session = open_page(client)
        panel(client, session)
        now[0] += 15 * 60 + 1
        resp = client.get(
            "/app/sidebar/panel",
            params={"email": EMAIL, "ticket": str(TICKET)},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert resp.status_code == 401 and "expired" in resp.text


def test_panel_shows_state_why_deliveries_profile_and_score(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        html = panel(client, session)
    assert 'class="support-state">' in html
    assert re.search(r'data-segment="open_issue">.*?member since', html)
    assert "rule: <code>has_open_ticket</code>" in html
    assert 'data-destination="cio" data-status="done"' in html
    assert "latest change applied at" in html
    assert 'class="optout">subscribed' in html
    assert "Value score" in html
    assert 'action="health"' in html or 'data-action="health"' in html


def test_unknown_ticket_says_so(w: World) -> None:
    with TestClient(w.app) as client:
        resp = client.get(
            "/app/sidebar/panel",
            params={"ticket": "999"},
            headers={"Authorization": f"Bearer {open_page(client)}"},
        )
    assert resp.status_code == 403 and "does not know ticket 999" in resp.text


def test_health_flows_to_segments_and_the_esp(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        resp = act(client, session, "health", health="unsatisfied")
        assert resp.status_code == 200, resp.text
        assert "Health set to unsatisfied" in resp.text
        assert re.search(r'data-segment="unhappy">.*?member since', resp.text)
        w.deliver()
        assert w.cio.person(EMAIL)["zendesk_health"] == "unsatisfied"
        html = panel(client, session)
        assert "agent-42: health" in html  # recorded with the agent


def test_double_click_runs_once(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        first = act(client, session, "override", idem="same-click-1", days="3")
        second = act(client, session, "override", idem="same-click-1", days="3")
        assert first.status_code == second.status_code == 200
        assert "Already handled" in second.text
    with w.engine.store.reader() as reader:
        conn = reader.conn  # type: ignore[attr-defined]
        assert conn.execute("SELECT COUNT(*) FROM agent_actions").fetchone()[0] == 1
        n = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'override_set'").fetchone()[0]
        assert n == 1


def test_override_expires_on_the_simulated_clock(w: World) -> None:
    ctx = w.app.state.ctx
    with TestClient(w.app) as client:
        session = open_page(client)
        ctx.writer.tick(w.clock.now).result()
        resp = act(client, session, "override", days="2")
        assert "Promos suppressed for 2 days" in resp.text
        assert re.search(r'data-segment="overridden">.*?member since', resp.text)
        w.clock.advance(days(3))
        ctx.writer.tick(w.clock.now).result()
        html = panel(client, session)
        assert re.search(r'data-segment="overridden">[^<]*<b>overridden</b>: not a member', html)


def test_optout_and_esp_refusal_are_shown(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        resp = act(client, session, "optout", opted_out="true")
        assert resp.status_code == 200 and "opted out at cio" in resp.text
        assert 'class="optout">opted out' in resp.text
        refused = act(client, session, "remove-list", idem="idem-0002", list_id="7")
        assert refused.status_code == 502
        assert "refused it, nothing changed" in refused.text
    with w.engine.store.reader() as reader:
        rows = reader.conn.execute(  # type: ignore[attr-defined]
            "SELECT action, status, agent FROM agent_actions ORDER BY id"
        ).fetchall()
    assert rows == [("optout", "done", "agent-42"), ("remove-list", "failed", "agent-42")]


def test_esp_down_still_shows_tactful_data(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.app.state.sidebar.ctx.settings.destinations[0].base_url = "http://127.0.0.1:9"
    try:
        with TestClient(w.app) as client:
            html = panel(client, open_page(client))
        assert "ESP unavailable" in html
        assert re.search(r'data-segment="open_issue">.*?member since', html)
    finally:
        w.stop()


def test_slow_esp_times_out(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    state = w.app.state.sidebar
    state.esp_timeout = 0.2
    esp = state.esp()
    monkeypatch.setattr(esp, "read_profile", lambda email: time.sleep(1))
    with TestClient(w.app) as client:
        html = panel(client, open_page(client))
    assert "ESP unavailable: no answer within 0.2 s" in html


def test_change_email_moves_the_esp_profile(w: World) -> None:
    w.cio._merge(w.cio._find(EMAIL), {"plan": "gold"}, None)  # data that must survive
    with TestClient(w.app) as client:
        resp = act(client, open_page(client), "change-email", new_email="ann.new@example.com")
    assert resp.status_code == 200, resp.text
    assert "Zendesk" in resp.text  # says what happened with Zendesk
    moved = w.cio.person("ann.new@example.com")
    assert moved is not None and moved["plan"] == "gold"

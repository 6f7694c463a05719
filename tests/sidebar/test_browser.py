"""The sidebar in a real browser (Debian's Chromium via Playwright) inside a harness page that
stands in for Zendesk: it posts a signed token into the sidebar iframe, like Zendesk's signed
URLs, and provides a fake ``ZAFClient`` that answers ``ticket.requester.email``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tactful.sim.server import run_in_thread
from tests.sidebar.helpers import EMAIL, TICKET, World, days, token, world

CHROMIUM = os.environ.get("TACTFUL_CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM}")

HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>Zendesk (harness)</title>
<script>
var known = {'ticket.id': %(ticket)d, 'ticket.requester.email': %(email)r};
window.ZAFClient = {init: function () { return {
  get: function (paths) {
    var out = {};
    [].concat(paths).forEach(function (p) { out[p] = known[p]; });
    return Promise.resolve(out);
  },
  on: function () {}
}; }};
</script></head><body>
<form id="zendesk" method="post" action="/app/sidebar" target="sidebar">
  <input type="hidden" name="token" value="%(token)s"></form>
<iframe name="sidebar" id="sidebar" style="width:380px;height:900px"></iframe>
<script>document.getElementById('zendesk').submit();</script>
</body></html>"""


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    # The harness stands in for Zendesk on this origin: the sidebar's CSP must let it frame
    # the page ([zendesk] base_url is allowed besides https://glowlab.zendesk.com).
    port = free_port()
    w = world(tmp_path, tick_seconds=0.05, base_url=f"http://127.0.0.1:{port}")

    async def harness(request: Request) -> HTMLResponse:
        page = HARNESS % {"email": EMAIL, "ticket": TICKET, "token": token()}
        policy = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
        return HTMLResponse(page, headers={"Content-Security-Policy": policy})

    w.app.router.routes.append(Route("/harness", harness))
    url, stop = run_in_thread(w.app, lifespan="on", port=port)
    try:
        yield w, url
    finally:
        stop()
        w.stop()


def test_sidebar_in_a_browser(served: tuple[World, str]) -> None:
    w, url = served
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page()
            violations: list[str] = []  # the sidebar passes its Content-Security-Policy
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e => "
                "console.error('Content Security Policy violation: ' + e.violatedDirective))"
            )
            # No internet in tests: Zendesk's SDK is not fetched; the harness provides ZAF.
            page.route("https://static.zdassets.com/**", lambda route: route.abort())
            page.goto(f"{url}/harness")
            side = page.frame_locator("#sidebar")

            # The state and why.
            expect = playwright.expect
            expect(side.locator(".support-state")).to_be_visible(timeout=15000)
            open_issue = side.locator('[data-segment="open_issue"]')
            expect(open_issue).to_contain_text("member since")
            expect(open_issue).to_contain_text("rule: has_open_ticket")
            expect(side.locator('[data-destination="cio"]')).to_contain_text("applied")
            expect(side.locator(".optout")).to_have_text("subscribed")

            # Health round-trips to segments and to the ESP; a double click acts once.
            health = side.locator('form[data-action="health"]')
            health.locator("select").select_option("unsatisfied")
            health.locator("button").dblclick()
            expect(side.locator(".flash.ok")).to_contain_text("Health set to unsatisfied")
            expect(side.locator('[data-segment="unhappy"]')).to_contain_text("member since")
            w.deliver()
            assert w.cio.person(EMAIL)["zendesk_health"] == "unsatisfied"
            with w.engine.store.reader() as reader:
                rows = reader.conn.execute(  # type: ignore[attr-defined]
                    "SELECT agent, status FROM agent_actions WHERE action = 'health'"
                ).fetchall()
            assert rows == [("agent-42", "done")]

            # The override suppresses, then expires by itself on the simulated clock.
            override = side.locator('form[data-action="override"]')
            override.locator('input[name="days"]').fill("2")
            override.locator("button").click()
            expect(side.locator(".flash.ok")).to_contain_text("Promos suppressed for 2 days")
            overridden = side.locator('[data-segment="overridden"]')
            expect(overridden).to_contain_text("member since")
            w.clock.advance(days(3))
            ctx = w.app.state.ctx
            eventually(lambda: ctx.store_figures()[2] == w.clock.now)
            page.reload()  # Zendesk reopens the sidebar: a fresh signed request
            side = page.frame_locator("#sidebar")
            expect(side.locator('[data-segment="overridden"]')).to_contain_text("not a member")
            assert violations == []
        finally:
            browser.close()

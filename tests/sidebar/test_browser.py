"""The sidebar in a real browser (Debian's Chromium via Playwright) inside a harness page that
stands in for Zendesk: it posts a signed token into the sidebar iframe, like Zendesk's signed
URLs, and provides a fake ``ZAFClient`` that answers ``ticket.requester.email``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tactful.testing.sim.server import run_in_thread
from tactful.web.sidebar.page import ZAF_SDK_URL
from tests.a11y import A11Y_PROBLEMS
from tests.browser import BROWSER, SHOTS, Watched, chromium, free_port, watched_page
from tests.sidebar.helpers import EMAIL, TICKET, World, days, token, world

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER

SIDEBAR_WIDTH = 320  # Zendesk Support's ticket sidebar; the Agent Workspace's is wider
AGENT_ZONE = "America/New_York"

# Stands in for Zendesk: posts the signed token into the iframe, answers ZAF ``get`` with the
# requester and the agent's time zone, and applies ``resize`` to the iframe like Zendesk.
HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>Zendesk (harness)</title>
<style>body{margin:0}iframe{border:0;display:block}</style>
<script>
window.zafCalls = [];
var answers = {"ticket.id": %(ticket)d, "ticket.requester.email": %(email)r,
               "currentUser.timeZone": {"ianaName": %(zone)r}};
window.ZAFClient = {init: function () { return {
  get: function (paths) {
    var out = {}; [].concat(paths).forEach(function (p) { out[p] = answers[p]; });
    return Promise.resolve(out);
  },
  invoke: function (name, args) {
    window.zafCalls.push([name, args]);
    if (name === "resize") document.getElementById("sidebar").style.height = args.height;
    return Promise.resolve({});
  },
  on: function () {}
}; }};
</script></head><body>
<form id="zendesk" method="post" action="/app/sidebar" target="sidebar">
  <input type="hidden" name="token" value="%(token)s"></form>
<iframe name="sidebar" id="sidebar" style="width:%(width)dpx;height:400px"></iframe>
<script>document.getElementById('zendesk').submit();</script>
</body></html>"""


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextmanager
def in_zendesk(w: World, port: int, width: int) -> Iterator[str]:
    """Serve ``w``'s app on ``port`` with ``/harness``, the page standing in for Zendesk with
    the sidebar ``width`` px wide; gives the base URL. ``w`` is stopped after."""

    async def harness(_: Request) -> HTMLResponse:
        page = HARNESS % {
            "email": EMAIL,
            "ticket": TICKET,
            "token": token(),
            "zone": AGENT_ZONE,
            "width": width,
        }
        policy = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
        return HTMLResponse(page, headers={"Content-Security-Policy": policy})

    w.app.router.routes.append(Route("/harness", harness))
    url, stop = run_in_thread(w.app, lifespan="on", port=port)
    try:
        yield url
    finally:
        stop()
        w.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    # The harness stands in for Zendesk on this origin: the sidebar's CSP must let it frame
    # the page ([zendesk] base_url is allowed besides https://glowlab.zendesk.com).
    port = free_port()
    w = world(tmp_path, tick_seconds=0.05, base_url=f"http://127.0.0.1:{port}")
    with in_zendesk(w, port, SIDEBAR_WIDTH) as url:
        yield w, url


def overflow(frame: Any) -> int:
    """How many pixels the sidebar's content is wider than the sidebar (0: none)."""
    return int(
        frame.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#sidebar").screenshot(path=str(SHOTS / f"sidebar-{name}.png"))


def open_sidebar(browser: Any, url: str, width: int) -> tuple[Watched, Any, Any]:
    """The harness page with the sidebar in its iframe: the watched page, the iframe's
    locator and its frame."""
    watched = watched_page(browser, url, width=width)
    watched.page.goto(f"{url}/harness")
    frame = watched.page.frame(name="sidebar")
    assert frame is not None
    return watched, watched.page.frame_locator("#sidebar"), frame


def test_sidebar_in_a_browser(served: tuple[World, str]) -> None:
    w, url = served
    with chromium() as browser:
        # The sidebar is served with Tactful's own Content-Security-Policy (no inline script
        # or style, frame-ancestors limited to Zendesk): a violation fails the test.
        watched, side, frame = open_sidebar(browser, url, width=800)
        page, violations, outside = watched.page, watched.violations, watched.outside
        expect = playwright.expect

        # The plain sentence first; its time in the agent's zone (New York: the day before).
        lead = side.locator("#lead")
        expect(lead).to_have_text(
            "Open issue since Dec 31, 19:00 EST — open ticket. Ends when the ticket is solved.",
            timeout=15000,
        )
        since = side.locator('[data-segment="open_issue"] .since time')
        expect(since).to_have_text("1 h ago")
        expect(since).to_have_attribute("title", "Dec 31, 19:00 EST")
        expect(side.locator('[data-segment="unhappy"]')).to_have_count(0)  # not in it
        expect(side.locator("#details")).not_to_have_attribute("open", "")
        expect(side.locator('[data-rule="unhappy"]')).to_be_hidden()  # behind "Details"
        told = side.locator('.sent [data-destination="cio"][data-status="done"]').first
        expect(told).to_contain_text("Customer.io (cio)")
        expect(told).to_contain_text("(delivered")  # successes carry no HTTP status yet
        expect(side.locator('[data-consent="email"]')).to_have_text("email: yes")

        # Controls show the current values.
        expect(side.locator(".optout")).to_have_text("subscribed")
        expect(side.locator('input[name="health"]:checked')).to_have_count(0)
        expect(side.locator("fieldset.health .current")).to_have_text("not set")
        expect(side.locator(".promos .current")).to_have_text("Not paused by an agent.")

        # The app sized itself through ZAF to its content, with nothing wider than it.
        calls = page.evaluate("window.zafCalls")
        resized = [args for name, args in calls if name == "resize"]
        assert resized and resized[-1]["width"] == "100%"
        height = frame.evaluate("document.body.getBoundingClientRect().height")
        assert resized[-1]["height"] == f"{int(-(-height // 1))}px"
        assert overflow(frame) == 0
        assert frame.evaluate(A11Y_PROBLEMS) == []
        shot(page, "overview")
        side.locator("#details summary").click()
        expect(side.locator('[data-rule="unhappy"]')).to_be_visible()
        assert overflow(frame) == 0
        shot(page, "details")

        # Health round-trips to segments and to the ESP; a double click acts once.
        side.locator('label[for="health-unsatisfied"]').click()
        side.locator('form[data-action="health"] button').dblclick()
        expect(side.locator(".flash.ok")).to_contain_text("Health set to unsatisfied")
        expect(side.locator('input[name="health"]:checked')).to_have_value("unsatisfied")
        expect(side.locator("fieldset.health .current")).to_have_text("unsatisfied")
        expect(side.locator('[data-segment="unhappy"] .why')).to_have_text(
            "because: agent marked them unsatisfied"
        )
        w.deliver()
        assert w.cio.person(EMAIL)["zendesk_health"] == "unsatisfied"
        with w.engine.store.reader() as reader:
            rows = reader.conn.execute(  # type: ignore[attr-defined]
                "SELECT agent, status FROM agent_actions WHERE action = 'health'"
            ).fetchall()
        assert rows == [("agent-42", "done")]

        # The override suppresses, shows as the current value, then expires by itself.
        override = side.locator('.promos form[data-action="override"]').last
        override.locator('input[name="days"]').fill("2")
        override.locator("button").click()
        expect(side.locator(".flash.ok")).to_contain_text("Promos suppressed for 2 days")
        expect(side.locator(".promos")).to_have_attribute("data-paused", "yes")
        expect(side.locator(".promos .current")).to_contain_text("Paused by an agent until")
        expect(side.locator('[data-segment="overridden"] .ends')).to_contain_text("Ends in 2 d")
        assert overflow(frame) == 0
        height = frame.evaluate("document.body.getBoundingClientRect().height")
        resized = [args for name, args in page.evaluate("window.zafCalls") if name == "resize"]
        assert resized[-1]["height"] == f"{int(-(-height // 1))}px"  # follows the content
        shot(page, "after-actions")
        w.clock.advance(days(3))
        ctx = w.app.state.ctx
        eventually(lambda: ctx.store_figures()[2] == w.clock.now)
        page.reload()  # Zendesk reopens the sidebar: a fresh signed request
        side = page.frame_locator("#sidebar")
        expect(side.locator("#lead")).to_contain_text("Open issue since", timeout=15000)
        expect(side.locator('[data-segment="overridden"]')).to_have_count(0)
        expect(side.locator(".promos")).to_have_attribute("data-paused", "no")
        # Garden CSS and the script come from Tactful; only Zendesk's SDK is Zendesk's.
        assert set(outside) <= {ZAF_SDK_URL}, outside
        assert violations == []

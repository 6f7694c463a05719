"""The dashboard in a real browser (Debian's Chromium via Playwright) on a real uvicorn server:
log in, find the segments and a chart, look a person up, retry a dead letter."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.sim.server import run_in_thread
from tests.dashboard.helpers import EMAIL, PASSWORD, World, world

CHROMIUM = os.environ.get("TACTFUL_CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM}")
SCREENSHOT = os.environ.get("TACTFUL_DASHBOARD_SCREENSHOT")  # a path: save the overview


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    w = world(tmp_path)
    url, stop = run_in_thread(w.app, lifespan="on")
    try:
        yield w, url
    finally:
        stop()
        w.engine.store.close()


def test_dashboard_in_a_browser(served: tuple[World, str]) -> None:
    w, url = served
    expect = playwright.expect
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
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            # Nothing leaves the machine: every request goes to the dashboard itself.
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(url) else outside.append(r.url),
            )
            # The pages pass their Content-Security-Policy: nothing is refused.
            violations: list[str] = []
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

            # Not logged in: the login page; a wrong password says so.
            page.goto(f"{url}/")
            expect(page).to_have_url(f"{url}/login?next=%2F")
            page.fill("#password", "wrong")
            page.click("button[type=submit]")
            expect(page.locator(".flash.error")).to_contain_text("Wrong token or password")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{url}/")

            # Segments with sizes, and a real chart per segment.
            segments = page.locator("table.segments")
            expect(segments.locator('[data-segment="open_issue"]')).to_contain_text("2")
            expect(segments.locator('[data-segment="held"]')).to_contain_text("3 / 1")
            chart = page.locator('svg.chart.line[aria-label="open_issue: size over time"]')
            expect(chart).to_be_visible()
            expect(chart.locator("polyline.series.members")).to_have_count(1)
            expect(chart).to_contain_text("members now: 2")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150
            expect(page.locator("svg.chart.bar")).to_contain_text("clear")
            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)

            # Retry the dead letter: the dead count drops to zero.
            hook = page.locator('table.destinations [data-destination="hook"]')
            expect(hook.locator(".dead")).to_have_text("1")
            assert w.dead_count() == 1
            hook.get_by_role("button", name="Retry dead letters").click()
            expect(page.locator(".flash.ok")).to_contain_text("1 dead letters back to pending")
            expect(hook.locator(".dead")).to_have_text("0")
            expect(hook.get_by_role("button")).to_have_count(0)
            assert w.dead_count() == 0

            # Look a person up: state, segments with since and rule, history.
            page.click("header >> text=People")
            page.fill('input[name="q"]', EMAIL)
            page.click("text=Look up")
            person = page.locator("section.person")
            expect(person.locator(".support-state")).to_have_text("clear")
            expect(person).to_contain_text(EMAIL)
            open_issue = person.locator("table.person-segments tr", has_text="open_issue")
            expect(open_issue).to_contain_text("member")
            expect(open_issue).to_contain_text("has_open_ticket")
            expect(person.locator("table.history")).to_contain_text("entered")

            # Recent state changes link to the person page.
            page.click("header >> text=Overview")
            page.locator("table.changes a").first.click()
            expect(page.locator("section.person")).to_have_count(1)

            # The configuration, masked.
            page.click("header >> text=Configuration")
            expect(page.locator('[data-section="api"]')).to_contain_text("********")
            assert PASSWORD not in page.content()
            assert outside == []
            assert violations == []
        finally:
            browser.close()

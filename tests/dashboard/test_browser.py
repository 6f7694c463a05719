"""The dashboard in a real browser (Debian's Chromium via Playwright) on a real uvicorn server:
log in, find the segments and a chart, look a person up, retry a dead letter; then every page
at 1280 and 390 px wide: nothing wider than the window, labelled controls, AA contrast, a
skip link for the keyboard. Screenshots go to ``build/screenshots`` (not committed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tactful.core.events import UserSeen
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.base import Outcome
from tactful.testing import RecordingDestination, at
from tactful.testing.sim.server import run_in_thread
from tests.a11y import A11Y_PROBLEMS
from tests.browser import BROWSER, SHOTS, chromium, watched_page
from tests.dashboard.helpers import EMAIL, PASSWORD, SHOW_ALL, STATES, World, person_of, world

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER
WIDTHS = (1280, 390)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    yield from serve(tmp_path, SHOW_ALL)


@pytest.fixture
def served_masked(tmp_path: Path) -> Iterator[tuple[World, str]]:
    """As configured by default: identifiers masked for every login."""
    yield from serve(tmp_path, None)


def serve(tmp_path: Path, show: str | None) -> Iterator[tuple[World, str]]:
    w = world(tmp_path, states=STATES, show=show)
    w.engine.apply([UserSeen("zendesk:user:1:named", at(6), 1, name="Ann Lee")])
    hook = RecordingDestination("hook", "webhook", kinds=("event",))
    hook.script = [Outcome("retry", "HTTP 503: try later", status=503)]  # a row error
    DeliveryWorker(w.settings, w.engine.store, destinations={"hook": hook}).sync()  # runs
    url, stop = run_in_thread(w.app, lifespan="on")
    try:
        yield w, url
    finally:
        stop()
        w.engine.store.close()


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    playwright.expect(page).to_have_url(f"{url}/")


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0: none)."""
    return int(
        page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def test_dashboard_in_a_browser(served: tuple[World, str]) -> None:
    w, url = served
    expect = playwright.expect
    with chromium() as browser:
        # The pages pass the server's own Content-Security-Policy (styles and scripts from
        # /static only), and nothing leaves the machine: every request goes to the dashboard.
        watched = watched_page(browser, url, width=1280)
        page, violations, outside = watched.page, watched.violations, watched.outside

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
        expect(page.locator("svg.chart.bar")).to_contain_text("open_issue")
        expect(page.locator("#clocks")).to_contain_text("Engine clock")
        expect(page.locator("#clocks")).to_contain_text("Wall clock")

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
        page.get_by_label("Name, email, phone, external id or Zendesk user id").fill(EMAIL)
        page.get_by_role("button", name="Search").click()
        person = page.locator("section.person")
        expect(person.locator(".support-state")).to_have_text("open_issue")
        expect(person).to_contain_text(EMAIL)
        open_issue = person.locator("table.person-segments tr", has_text="open_issue")
        expect(open_issue).to_contain_text("member")
        expect(open_issue).to_contain_text("has_open_ticket")
        expect(person.locator("table.history")).to_contain_text("entered")

        # Search by a part of the name: the person, named.
        page.goto(f"{url}/people")
        page.get_by_label("Name, email, phone, external id or Zendesk user id").fill("lee")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.people .name")).to_have_text(["Ann Lee"])
        expect(page.locator("section.person #person-h")).to_contain_text("Ann Lee")

        # Filters: people in a support state.
        page.goto(f"{url}/people")
        page.get_by_label("Support state").select_option("recently_resolved")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.people .person-name")).to_have_text(["bob@example.com"])

        # Recent state changes name the person and link to their page.
        page.click("header >> text=Overview")
        page.locator("table.changes a").first.click()
        expect(page.locator("section.person")).to_have_count(1)

        # A segment's page from the overview.
        page.click("header >> text=Overview")
        page.get_by_role("link", name="open_issue").first.click()
        expect(page.locator("table.members .person-name")).to_have_count(2)
        expect(page.locator(".delivered")).to_have_text("hook")

        # The configuration, masked.
        page.click("header >> text=Configuration")
        expect(page.locator('[data-section="api"]')).to_contain_text("********")
        assert PASSWORD not in page.content()
        assert outside == []
        assert violations == []


def test_every_page_fits_both_widths_and_is_accessible(
    served_masked: tuple[World, str],
) -> None:
    w, url = served_masked
    expect = playwright.expect
    pid = person_of(w.engine)
    pages = {
        "overview": "/",
        "people": "/people",
        "person": f"/people/{pid}",
        "segments": "/segments",
        "segment": "/segments/open_issue",
        "segment-preview": "/segments/open_issue?rule=not+has_open_ticket#preview",
        "report": "/report",
        "config": "/config",
        "destination": "/destinations/hook",
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{url}/login")
            assert overflow(page) == 0, f"login at {width}px"
            assert page.evaluate(A11Y_PROBLEMS) == [], f"login at {width}px"
            page.screenshot(path=str(SHOTS / f"dashboard-login-{width}.png"), full_page=True)
            log_in(page, url)
            for name, path in pages.items():
                page.goto(f"{url}{path}")
                playwright.expect(page.locator("h1")).to_be_visible()
                where = f"{name} at {width}px"
                assert overflow(page) == 0, where
                assert page.evaluate(A11Y_PROBLEMS) == [], where
                # Identifiers masked on every page, as configured by default.
                assert EMAIL not in page.content(), where
                masked = re.compile(r"^(Ann Lee · )?[a-z]\u2022\u2022@example\.com")
                if name in ("people", "segment", "overview"):
                    expect(page.locator(".person-name").first).to_have_text(masked)
                if name == "person":
                    expect(page.locator("#person-h")).to_have_text(masked)
                page.screenshot(path=str(SHOTS / f"dashboard-{name}-{width}.png"), full_page=True)
            # The keyboard: the first Tab reaches "Skip to content", which skips the menu.
            page.goto(f"{url}/people")
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.textContent")
            assert focused == "Skip to content"
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "main"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "q"
            page.close()

"""The sidebar's proof in a real browser (Debian's Chromium via Playwright), in the Zendesk
harness of ``test_browser``: the platform's confirmation in "What the tools were told", and
the private note on the ticket, at the ticket sidebar's width inside a 1280 px window and at
a phone's 390 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tactful.testing.sim import ZendeskSimulator
from tactful.web.sidebar.page import ZAF_SDK_URL
from tactful.zendesk.client import ZendeskClient
from tests.a11y import A11Y_PROBLEMS
from tests.browser import BROWSER, SHOTS, chromium, free_port
from tests.sidebar.helpers import EMAIL, TICKET, World, world
from tests.sidebar.test_browser import in_zendesk, open_sidebar, overflow

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER

WIDTHS = {1280: 320, 390: 390}  # window width -> the sidebar's width in it


@pytest.fixture(params=sorted(WIDTHS), ids=lambda w: f"{w}px")
def served(request: Any, tmp_path: Path) -> Iterator[tuple[World, ZendeskSimulator, str, int]]:
    window = int(request.param)
    port = free_port()
    w = world(tmp_path, tick_seconds=0.05, base_url=f"http://127.0.0.1:{port}", with_meta=True)
    sim = ZendeskSimulator()
    ann = sim.create_user("Ann Lee", EMAIL)
    sim._next["ticket"] = TICKET - 1  # the ticket the sidebar is opened on
    sim.create_ticket(ann, "Refund please")
    sim_url, stop_sim = sim.serve()
    state = w.app.state.sidebar
    state.ctx.settings.zendesk.private_notes = True
    state.zendesk_factory = lambda: ZendeskClient(
        sim_url, sim.email, sim.api_token, sleep=lambda s: None
    )
    try:
        with in_zendesk(w, port, WIDTHS[window]) as url:
            yield w, sim, url, window
    finally:
        stop_sim()


def test_proof_and_private_note_in_a_browser(
    served: tuple[World, ZendeskSimulator, str, int],
) -> None:
    w, sim, url, window = served
    with chromium() as browser:
        watched, side, frame = open_sidebar(browser, url, width=window)
        page, violations, outside = watched.page, watched.violations, watched.outside
        expect = playwright.expect

        meta = side.locator('.sent [data-destination="meta"]').first
        expect(meta).to_contain_text("Added to Meta (meta) audience Open issue", timeout=15000)
        expect(meta.locator(".confirmed")).to_contain_text("Meta received 1 row at")
        expect(meta.locator(".confirmed time")).to_have_attribute("title", re.compile(r"E[SD]T$"))
        expect(side.locator('.sent [data-destination="cio"]').first).to_contain_text(
            "delivered: Customer.io accepted it"
        )

        # An action, then its proof on the ticket as a private note.
        side.locator('label[for="health-neutral"]').click()
        side.locator('form[data-action="health"] button').click()
        expect(side.locator(".flash.ok")).to_contain_text("Health set to neutral")
        proof = side.locator("#controls .proof")
        expect(proof).to_have_attribute("data-note", "offer")
        assert overflow(frame) == 0
        assert frame.evaluate(A11Y_PROBLEMS) == []
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#sidebar").screenshot(path=str(SHOTS / f"sidebar-proof-{window}.png"))
        w.deliver()  # the tools are told; the note's click shows it too
        proof.locator("button").dblclick()
        expect(side.locator(".flash.ok")).to_contain_text(
            f"Private note added to ticket #{TICKET}."
        )
        expect(side.locator("#controls .proof")).to_have_attribute("data-note", "noted")
        expect(side.locator("#controls .proof .since")).to_contain_text(
            "Customer.io (cio) profile updated (delivered: Customer.io accepted it)"
        )
        expect(side.locator("#controls .proof .noted")).to_have_text(
            "On the ticket as a private note."
        )
        assert overflow(frame) == 0
        assert frame.evaluate(A11Y_PROBLEMS) == []
        page.locator("#sidebar").screenshot(path=str(SHOTS / f"sidebar-noted-{window}.png"))
        puts = [r for r in sim.requests if r.method == "PUT" and "/tickets/" in r.path]
        assert [r.status for r in puts] == [200]  # a double click adds one note
        assert set(outside) <= {ZAF_SDK_URL}, outside
        assert violations == []

"""A real browser for the page tests: Debian's Chromium driven by Playwright.

A browser test starts processes (Playwright's driver and Chromium), so it is in the slow
tier; without Chromium it is skipped. ``BROWSER`` is that module mark; ``chromium()`` gives a
launched browser and ``watched_page()`` a page that records what the checks need.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.a11y import csp_violations

CHROMIUM = os.environ.get("TACTFUL_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("TACTFUL_SCREENSHOTS", "build/screenshots"))  # not committed
BROWSER = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM}"),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium (closed after)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page, the Content-Security-Policy violations it reports (a violation fails the
    tests) and every request that left ``url`` (nothing may leave the machine)."""

    page: Any
    violations: list[str]
    outside: list[str] = field(default_factory=list)


def watched_page(browser: Any, url: str, width: int, height: int = 900) -> Watched:
    page = browser.new_page(viewport={"width": width, "height": height})
    watched = Watched(page, csp_violations(page))
    page.on("request", lambda r: None if r.url.startswith(url) else watched.outside.append(r.url))
    # No internet in tests: Zendesk's SDK is not fetched (the sidebar's harness provides ZAF).
    page.route("https://static.zdassets.com/**", lambda route: route.abort())
    return watched

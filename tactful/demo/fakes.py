"""The demo's fake destinations, served on loopback: Meta audience, Customer.io, webhooks."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread


def new_standard_webhooks_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Fakes:
    meta: FakeMeta
    cio: FakeCustomerIO
    hook: FakeWebhookReceiver
    meta_url: str  # what the Meta destination talks to (base_url)
    cio_url: str
    hook_url: str  # the full URL the webhook destination POSTs to
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def audience_id(self) -> str:
        return next(iter(self.meta.audiences))

    def figures(self) -> dict[str, int]:
        """What the fakes have received so far (for the demo's status lines)."""
        with self.meta.lock:
            meta_requests = len(self.meta.requests)
            meta_members = len(self.meta.audiences[self.audience_id])
        cio = self.cio.snapshot()
        return {
            "meta_requests": meta_requests,
            "meta_members": meta_members,
            "cio_people": len(cio["people"]),
            "cio_events": len(cio["events"]),
            "hook_events": len(self.hook.snapshot()),
        }

    def stop(self) -> None:
        while self._stops:
            self._stops.pop()()


def start_fakes(hook_secret: str) -> Fakes:
    meta, cio, hook = FakeMeta(), FakeCustomerIO(), FakeWebhookReceiver(hook_secret)
    stops: list[Callable[[], None]] = []
    try:
        urls = []
        for app in (meta.app, cio.app, hook.app):
            url, stop = run_in_thread(app, lifespan="off")
            stops.append(stop)
            urls.append(url)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    meta_root, cio_url, hook_root = urls
    return Fakes(
        meta, cio, hook, FakeMeta.base_url(meta_root), cio_url, hook_root + hook.path, stops
    )

"""The composition root: what a Tactful process runs on, built from its settings in one
place. The command line, ``tactful serve`` and ``tactful worker``, the demo and the tests'
harness all start here, so a store, an engine, a delivery worker or the web app is put
together the same way everywhere.

``clock`` is the engine's wall clock (a simulation's or a test's; default the real one);
``transport`` carries every destination's HTTP (a fake's; default the network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from tactful.config import Settings
from tactful.delivery.worker import ROUND_WAIT, DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.base import Store
from tactful.store.sqlite import open_store

if TYPE_CHECKING:  # the web app (Starlette) is loaded only by what serves it
    from starlette.applications import Starlette

    from tactful.runtime import Supervisor
    from tactful.zendesk.client import ZendeskClient


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] | None = None
    transport: httpx.BaseTransport | None = None

    @property
    def store(self) -> Store:
        return self.engine.store

    def delivery_worker(self, *, round_wait: float | None = None) -> DeliveryWorker:
        """Routes the outbox and delivers to the configured destinations (close it)."""
        return DeliveryWorker(
            self.settings,
            self.store,
            transport=self.transport,
            clock=self.clock,
            round_wait=round_wait,
        )

    def web_app(
        self,
        *,
        tick_seconds: float = 1.0,
        zendesk: ZendeskClient | None = None,
        deliver_seconds: float = 0.2,
        freeze_gc: bool = False,
    ) -> Starlette:
        """The ASGI app: webhooks, API, dashboard, sidebar and their background work."""
        from tactful.web.app import create_app

        return create_app(
            self.settings,
            self.engine,
            tick_seconds=tick_seconds,
            clock=self.clock,
            zendesk=zendesk,
            deliver_seconds=deliver_seconds,
            destination_transport=self.transport,
            freeze_gc=freeze_gc,
        )

    def background(self, *, tick_seconds: float, deliver_seconds: float) -> Supervisor:
        """``tactful worker``'s supervised loops: the clock, the alerts and the deliveries."""
        from tactful.runtime import worker_supervisor

        worker = self.delivery_worker(round_wait=ROUND_WAIT)
        return worker_supervisor(
            self.settings,
            self.engine,
            worker,
            tick_seconds=tick_seconds,
            deliver_seconds=deliver_seconds,
        )

    def close(self) -> None:
        self.store.close()


def bootstrap(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    transport: httpx.BaseTransport | None = None,
    store: Store | None = None,
) -> Runtime:
    """Everything ``settings`` describe, on the store they name (or ``store``)."""
    opened: Store = store if store is not None else open_store(settings.store.url)
    engine = Engine(rules_from_settings(settings), opened, clock=clock)
    return Runtime(settings, engine, clock, transport)

"""What the web handlers share: settings, engine, writer (group commit) and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tactful.config import Settings
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.batch import BatchStats
from tactful.engine.engine import Engine, Incoming
from tactful.engine.writer import Writer
from tactful.readmodels.views import clock_of
from tactful.store.base import REPLAY_KEY
from tactful.web.metrics import Metrics
from tactful.web.throttle import Throttle


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    writer: Writer
    metrics: Metrics
    pending_fetches: set[int] = field(default_factory=set)
    zendesk_api: bool = False  # a Zendesk API client fetches what webhook bodies lack
    throttle: Throttle = field(default_factory=Throttle)
    # Builds a delivery worker wired as the server's own (the app sets it; close what it gives).
    delivery_worker: Callable[[], DeliveryWorker] | None = None

    async def commit(
        self, incoming: list[Incoming], *, meta: dict[str, str] | None = None
    ) -> BatchStats:
        """Hand the documents to the writer; return once they are durably committed."""
        return await asyncio.wrap_future(self.writer.submit(incoming, meta=meta))

    async def tick(self, now: datetime) -> BatchStats:
        return await asyncio.wrap_future(self.writer.tick(now))

    def rebuilding(self) -> bool:
        """A replay is rebuilding the store (committed a chunk at a time): what readers
        would see is half built, so they say so instead (docs/concepts.md)."""
        with self.engine.store.reader() as reader:
            return reader.get_meta(REPLAY_KEY) is not None

    def store_figures(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, int], datetime | None]:
        with self.engine.store.reader() as reader:
            return reader.segment_counts(), reader.state_counts(), clock_of(reader)

    @property
    def consent_defaults(self) -> dict[str, bool]:
        return self.settings.consent.defaults()

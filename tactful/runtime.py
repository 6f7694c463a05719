"""The background work of a Tactful process, under one supervisor.

A ``Supervisor`` holds an ordered list of *services* (started and stopped around the
process: the writer thread, clients and workers to close) and *loops* (coroutines that run
for the process's life: the ticker, the Zendesk fetcher, the value tagger, the alerter and
the delivery loop). ``start()`` starts them in the order they were added; a loop that ends
or raises is logged and started again after a backoff (doubling from ``backoff`` up to
``max_backoff``; back to ``backoff`` once it ran ``healthy_after`` seconds), and counted
(``tactful_worker_restarts_total{worker}`` on ``/metrics``). ``stop()`` stops everything in
the reverse order: the loops are cancelled before the writer drains and before the workers
they use are closed, and no task is left behind.

``server_supervisor`` is what ``tactful serve`` (and the demo) run beside the web app: the
web app only adds routes, and its lifespan asks the supervisor to start and stop.
``worker_supervisor`` is ``tactful worker``'s: clock, alerts and deliveries, no HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tactful.alerts.service import Alerter, run_alerts
from tactful.clock import Clock
from tactful.config import Settings
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine
from tactful.store.base import Store, StoreError
from tactful.store.records import to_us
from tactful.web.context import WebContext
from tactful.web.fetcher import run_fetcher
from tactful.zendesk.client import ZendeskClient
from tactful.zendesk.valuetags import run_value_tagger

log = logging.getLogger("tactful.runtime")

Loop = Callable[[], Awaitable[None]]


@dataclass
class _Entry:
    name: str
    run: Loop | None = None  # a loop: restarted when it ends or fails
    start: Callable[[], None] | None = None  # a service: called at start, in order
    stop: Callable[[], None] | None = None  # and at stop, in reverse order (in a thread)
    restarts: int = 0
    task: asyncio.Task[None] | None = None
    started: bool = False


class Supervisor:
    """Starts, restarts and stops a process's background work (see the module doc)."""

    def __init__(
        self, *, backoff: float = 1.0, max_backoff: float = 60.0, healthy_after: float = 60.0
    ) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        self._entries: list[_Entry] = []

    def service(
        self,
        name: str,
        *,
        start: Callable[[], None] | None = None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        """Something started with the process and stopped (in reverse order) at its end."""
        self._entries.append(_Entry(name, start=start, stop=stop))

    def loop(self, name: str, run: Loop) -> None:
        """A coroutine that runs for the process's life (restarted if it ends or raises)."""
        if name in self.workers:
            raise ValueError(f"two workers named {name!r}")
        self._entries.append(_Entry(name, run=run))

    @property
    def workers(self) -> list[str]:
        return [e.name for e in self._entries if e.run is not None]

    def running(self) -> list[str]:
        """The loops whose task is alive."""
        return [e.name for e in self._entries if e.task is not None and not e.task.done()]

    def tasks(self) -> list[asyncio.Task[None]]:
        """The loops' tasks (while started)."""
        return [e.task for e in self._entries if e.task is not None]

    def restarts(self) -> dict[str, int]:
        return {e.name: e.restarts for e in self._entries if e.run is not None}

    async def start(self) -> None:
        """Start everything in order; if a service fails to start, what started is stopped."""
        try:
            for entry in self._entries:
                if entry.start is not None:
                    await asyncio.to_thread(entry.start)
                if entry.run is not None:
                    entry.task = asyncio.create_task(self._keep(entry), name=entry.name)
                entry.started = True
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop everything that started, in the reverse order; a failing stop is logged."""
        for entry in reversed(self._entries):
            if not entry.started:
                continue
            entry.started = False
            task, entry.task = entry.task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if entry.stop is not None:
                try:
                    await asyncio.to_thread(entry.stop)
                except Exception:
                    log.exception("stopping %s failed", entry.name)

    async def _keep(self, entry: _Entry) -> None:
        assert entry.run is not None
        clock = asyncio.get_running_loop().time
        failures = 0
        while True:
            began = clock()
            try:
                await entry.run()
                log.error("worker %s stopped by itself", entry.name)
            except Exception:
                log.exception("worker %s crashed", entry.name)
            failures = 1 if clock() - began >= self.healthy_after else failures + 1
            delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            log.warning("restarting worker %s in %.3g s", entry.name, delay)
            await asyncio.sleep(delay)
            entry.restarts += 1


class SupervisorCollector(Collector):
    """``tactful_worker_restarts_total{worker}`` and ``tactful_worker_up{worker}``."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterable[Metric]:
        restarts = CounterMetricFamily(
            "tactful_worker_restarts",
            "Background workers restarted after they crashed or stopped",
            labels=["worker"],
        )
        up = GaugeMetricFamily(
            "tactful_worker_up", "1 while the background worker runs", labels=["worker"]
        )
        running = set(self.supervisor.running())
        for name, count in self.supervisor.restarts().items():
            restarts.add_metric([name], count)
            up.add_metric([name], 1 if name in running else 0)
        yield from (restarts, up)


# --------------------------------------------------------------------------- the loops


async def run_ticker(
    tick: Callable[[datetime], Awaitable[object]],
    every: float,
    clock: Clock,
    writable: Callable[[bool], None] = lambda ok: None,
) -> None:
    """Move the engine clock to the wall clock every ``every`` seconds; a failed tick is
    retried at the next one (``writable(False)`` when the store refused it)."""
    while True:
        try:
            await tick(clock())
            writable(True)
        except Exception as exc:
            if isinstance(exc, StoreError):
                writable(False)
            log.exception("tick failed")
        await asyncio.sleep(every)


def _replaying(store: Store) -> bool:
    with store.unless_replaying() as free:
        return not free


async def run_deliverer(worker: DeliveryWorker, store: Store, every: float) -> None:
    """Route the outbox and deliver what is due, continuously (the freshness loop). Rounds
    wait while a replay holds the store (its corrections are delivered after it)."""
    while True:
        try:
            if await asyncio.to_thread(_replaying, store):
                await asyncio.sleep(every)
                continue
            report = await asyncio.to_thread(worker.sync)
        except Exception:  # retried at the next round; deliveries are durable rows
            log.exception("delivery round failed")
            report = None
        if report is None or not (report.sent or report.routed):
            await asyncio.sleep(every)


# --------------------------------------------------------------------------- assemblies


class _ZendeskApi:
    """The server's Zendesk API client: the given one, or built from ``[zendesk]`` at start
    (and closed at stop); while started, the receiver leaves what a webhook body lacks to
    the fetcher (``ctx.zendesk_api``)."""

    def __init__(self, ctx: WebContext, given: ZendeskClient | None) -> None:
        self.ctx = ctx
        self.given = given
        self._client: ZendeskClient | None = None

    @property
    def client(self) -> ZendeskClient:
        assert self._client is not None, "started first"
        return self._client

    def start(self) -> None:
        self._client = self.given or ZendeskClient.from_settings(self.ctx.settings.zendesk)
        self.ctx.zendesk_api = True

    def stop(self) -> None:
        self.ctx.zendesk_api = False
        if self._client is not None and self._client is not self.given:
            self._client.close()
        self._client = None


def server_supervisor(
    ctx: WebContext,
    *,
    clock: Clock,
    tick_seconds: float,
    zendesk: ZendeskClient | None,
    fetch_seconds: float,
    deliver_seconds: float,
    worker: Callable[[], DeliveryWorker],
    alerter: Alerter | None,
) -> Supervisor:
    """``tactful serve``'s background work: the writer first (the others commit through
    it), then the ticker, the Zendesk fetcher and value tagger, the delivery loop and the
    alerter."""
    settings, store = ctx.settings, ctx.engine.store
    supervisor = Supervisor()
    supervisor.service("writer", start=ctx.writer.start, stop=ctx.writer.stop)
    if tick_seconds > 0:
        supervisor.loop(
            "ticker",
            lambda: run_ticker(ctx.tick, tick_seconds, clock, ctx.metrics.store_writable.set),
        )
    if zendesk is not None or (settings.zendesk.api_url and settings.zendesk.api_token):
        api = _ZendeskApi(ctx, zendesk)
        supervisor.service("zendesk client", start=api.start, stop=api.stop)
        supervisor.loop("fetcher", lambda: run_fetcher(ctx, api.client, fetch_seconds))
        if settings.zendesk.high_value_tag:  # the sidebar's value score 4 tag
            tag = settings.zendesk.high_value_tag
            supervisor.loop("value tagger", lambda: run_value_tagger(store, api.client, tag, clock))
    if settings.destinations and deliver_seconds > 0:
        delivery = worker()
        supervisor.service("delivery worker", stop=delivery.close)
        supervisor.loop("deliverer", lambda: run_deliverer(delivery, store, deliver_seconds))
    if alerter is not None:
        supervisor.service("alerter", stop=alerter.close)
        supervisor.loop("alerter", lambda: run_alerts(alerter))
    return supervisor


def server_delivery_worker(
    settings: Settings,
    store: Store,
    transport: httpx.BaseTransport | None,
    clock: Clock | None,
    *,
    round_wait: float | None = None,
) -> Callable[[], DeliveryWorker]:
    """Builds the server's delivery workers (the delivery loop's with ``ROUND_WAIT``, the
    dashboard's dry runs' waiting for every destination): same settings, store, transport
    and clock."""
    return lambda: DeliveryWorker(
        settings, store, transport=transport, clock=clock, round_wait=round_wait
    )


def worker_supervisor(
    settings: Settings,
    engine: Engine,
    worker: DeliveryWorker,
    *,
    tick_seconds: float,
    deliver_seconds: float,
) -> Supervisor:
    """``tactful worker``'s background work: the clock, the alerts and the deliveries."""
    supervisor = Supervisor()
    supervisor.service("delivery worker", stop=worker.close)
    supervisor.loop(
        "ticker",
        lambda: run_ticker(
            lambda now: asyncio.to_thread(engine.tick, now), tick_seconds, engine.wall_clock
        ),
    )
    if settings.alerts:
        alerter = Alerter(settings, engine.store, clock_us=lambda: to_us(engine.wall_clock()))
        supervisor.service("alerter", stop=alerter.close)
        supervisor.loop("alerter", lambda: run_alerts(alerter))
    if settings.destinations:
        supervisor.loop("deliverer", lambda: run_deliverer(worker, engine.store, deliver_seconds))
    return supervisor


async def run_until_signalled(supervisor: Supervisor, stop: asyncio.Event | None = None) -> None:
    """Start, wait for SIGTERM/SIGINT (or ``stop``), stop in order."""
    done = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    try:
        await supervisor.start()
        await done.wait()
    finally:
        await supervisor.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


__all__ = [
    "Supervisor",
    "SupervisorCollector",
    "run_deliverer",
    "run_ticker",
    "run_until_signalled",
    "server_delivery_worker",
    "server_supervisor",
    "worker_supervisor",
]

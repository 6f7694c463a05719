"""The runtime's supervisor: a crashed worker is restarted (with backoff, counted on
``/metrics``), and shutdown stops every worker in the reverse order, leaving no task."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tactful.runtime import Supervisor, SupervisorCollector


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _metrics(supervisor: Supervisor) -> str:
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(supervisor))
    return generate_latest(registry).decode()


def test_a_crashing_worker_is_restarted_with_backoff_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[float] = []
    steady = asyncio.Event()

    async def flaky() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 3:
            raise RuntimeError("boom")
        steady.set()
        await asyncio.Event().wait()  # then runs for good

    async def main() -> str:
        supervisor = Supervisor(backoff=0.02, max_backoff=0.05)
        supervisor.loop("flaky", flaky)
        await supervisor.start()
        await asyncio.wait_for(steady.wait(), 5)
        text = _metrics(supervisor)
        await supervisor.stop()
        return text

    with caplog.at_level(logging.INFO, logger="tactful.runtime"):
        text = asyncio.run(main())
    assert len(runs) == 4
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.019 and gaps[1] >= 0.039 and gaps[2] >= 0.049  # doubling, capped
    assert 'tactful_worker_restarts_total{worker="flaky"} 3.0' in text
    assert 'tactful_worker_up{worker="flaky"} 1.0' in text
    assert sum("worker flaky crashed" in r.getMessage() for r in caplog.records) == 3
    assert all(r.exc_info for r in caplog.records if "crashed" in r.getMessage())


def test_a_worker_that_returns_is_restarted_too() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    async def main() -> dict[str, int]:
        supervisor = Supervisor(backoff=0.001, max_backoff=0.001)
        supervisor.loop("once", once)
        await supervisor.start()
        await _until(lambda: len(runs) >= 3)
        await supervisor.stop()
        return supervisor.restarts()

    assert asyncio.run(main())["once"] >= 2


def test_shutdown_stops_every_worker_in_reverse_order_and_leaves_no_task() -> None:
    events: list[str] = []

    def loop_of(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            events.append(f"run {name}")
            try:
                await asyncio.Event().wait()
            finally:
                events.append(f"cancelled {name}")

        return run

    async def main() -> list[str]:
        supervisor = Supervisor()
        supervisor.service(
            "writer",
            start=lambda: events.append("start writer"),
            stop=lambda: events.append("stop writer"),
        )
        supervisor.loop("ticker", loop_of("ticker"))
        supervisor.service("delivery worker", stop=lambda: events.append("close delivery worker"))
        supervisor.loop("deliverer", loop_of("deliverer"))
        before = asyncio.all_tasks()
        await supervisor.start()
        await _until(lambda: len(events) == 3)
        assert supervisor.running() == ["ticker", "deliverer"]
        await supervisor.stop()
        assert supervisor.running() == []
        left = asyncio.all_tasks() - before
        assert left == set(), left
        return events

    assert asyncio.run(main()) == [
        "start writer",
        "run ticker",
        "run deliverer",
        "cancelled deliverer",
        "close delivery worker",
        "cancelled ticker",
        "stop writer",
    ]


def test_a_service_that_fails_to_start_stops_what_started() -> None:
    events: list[str] = []

    def broken() -> None:
        raise OSError("no disk")

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.service("writer", stop=lambda: events.append("stop writer"))
        supervisor.service("broken", start=broken, stop=lambda: events.append("stop broken"))
        with pytest.raises(OSError):
            await supervisor.start()

    asyncio.run(main())
    assert events == ["stop writer"]

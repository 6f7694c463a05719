"""Shared fixtures of the destination tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from tactful.testing.sim.server import run_in_thread


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Served:
    """``serve(fake)`` runs a fake vendor's app on a loopback port and gives its base URL;
    ``serve.closing(dest)`` keeps a destination to close. After the test the destinations
    are closed, then the fakes stopped."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []
        self._closables: list[Closable] = []

    def __call__(self, fake: Any) -> str:
        base_url, stop = run_in_thread(fake.app)
        self._stops.append(stop)
        return base_url

    def closing(self, dest: C) -> C:
        self._closables.append(dest)
        return dest

    def stop(self) -> None:
        for dest in self._closables:
            dest.close()
        for stop in reversed(self._stops):
            stop()


@pytest.fixture
def serve() -> Iterator[Served]:
    served = Served()
    yield served
    served.stop()

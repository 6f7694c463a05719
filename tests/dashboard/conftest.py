"""Shared fixtures of the dashboard tests: a world (store, engine, app) and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.dashboard.helpers import World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path)
    yield out
    out.engine.store.close()


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    """A client of the app, not logged in."""
    with TestClient(w.app) as c:
        yield c

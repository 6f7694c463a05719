"""Suite-wide fixtures: a throwaway PostgreSQL cluster, and the store suite on both stores.

Modules marked ``pytestmark = pytest.mark.store`` run every test twice: on SQLite and on a
fresh PostgreSQL database (``store_kind`` is ``"sqlite"`` or ``"postgresql"``); inside such a
test ``tactful.testing.harness()`` and ``new_store_url()`` give stores of that kind.

PostgreSQL comes from Debian's packages (``tactful.testing.pgcluster`` starts a cluster in a
temporary directory) or from ``TACTFUL_TEST_PG``. Without it those tests are skipped, unless
``TACTFUL_REQUIRE_PG=1`` (CI sets it), where they fail instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tactful import testing
from tactful.testing import pgcluster

STORE_KINDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "store: run on both stores (SQLite and PostgreSQL)")
    config.addinivalue_line("markers", "postgresql: needs a PostgreSQL server")


# The slow tier (`make test-fast` leaves it out; `make test` runs everything): whole
# processes (acceptance/, production/), PostgreSQL (every test's PostgreSQL twin and every
# test that asks for a cluster), and tests marked `slow` in their module (browsers, child
# processes, benchmarks' smoke runs, property tests with many examples). A test that is not
# marked and starts a process anyway fails (``Spawns``), so the split stays honest.
SLOW_FOLDERS = frozenset({"acceptance", "production"})
SLOW_FIXTURES = frozenset({"pg_cluster", "pg_url"})


def _on_postgresql(item: pytest.Item) -> bool:
    """The PostgreSQL twin of a store test, or a test that asks for a cluster."""
    twin = "postgresql" in getattr(getattr(item, "callspec", None), "id", "")
    return twin or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))


def is_slow_by_kind(item: pytest.Item) -> bool:
    """A test the tiers put in the slow tier whatever its own marks say."""
    return (
        item.path.parent.name in SLOW_FOLDERS
        or _on_postgresql(item)
        or item.get_closest_marker("postgresql") is not None
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow_by_kind(item):
            item.add_marker(pytest.mark.slow)
        if _on_postgresql(item) and item.get_closest_marker("postgresql") is None:
            item.add_marker(pytest.mark.postgresql)  # `pytest -m postgresql` finds the twins


class Spawns:
    """Child processes started while a test outside the slow tier is set up or runs
    (``subprocess``, ``os.fork``, ``os.posix_spawn``, ``os.system``: Python's audit events;
    a browser's driver and a PostgreSQL cluster start that way too)."""

    EVENTS = frozenset(
        {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system"}
    )

    def __init__(self) -> None:
        self.seen: list[str] | None = None  # None: not watching
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if self.seen is not None and event in self.EVENTS:
            self.seen.append(f"{event} {str(args[:2])[:160]}")

    def watch(self, *, slow: bool) -> None:
        self.seen = None if slow else []

    def check(self) -> None:
        seen, self.seen = self.seen, None
        if seen:
            pytest.fail(
                "this test starts a process, so it belongs to the slow tier: mark it "
                "`@pytest.mark.slow` (or its module `pytestmark = pytest.mark.slow`)\n  "
                + "\n  ".join(seen[:5]),
                pytrace=False,
            )


_spawns = Spawns()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _spawns.watch(slow=item.get_closest_marker("slow") is not None)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    _spawns.check()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    _spawns.seen = None  # a failed setup or call: nothing to check; teardown is not watched
    return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("store") is None:
        return
    if "store_kind" not in metafunc.fixturenames:
        metafunc.fixturenames.append("store_kind")
    metafunc.parametrize("store_kind", STORE_KINDS, indirect=True)


_cluster: dict[str, Any] = {}


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    try:
        cluster = pgcluster.start()
    except pgcluster.ClusterUnavailable as exc:
        if os.environ.get("TACTFUL_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here: {exc}")
        pytest.skip(f"no PostgreSQL: {exc}")
    from tests import pgcheck

    with pgcheck.checking():  # every statement run on PostgreSQL is checked
        yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: pgcluster.Cluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    yield pg_cluster.new_database()
    from tactful.store.postgres import close_all

    close_all()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        cluster: pgcluster.Cluster = request.getfixturevalue("pg_cluster")
        testing.store_url_factory.append(cluster.new_database)
        try:
            yield kind
        finally:
            testing.store_url_factory.pop()
            from tactful.store.postgres import close_all

            close_all()
    else:
        yield kind


@pytest.fixture(autouse=True)
def _store_backend(request: pytest.FixtureRequest) -> None:
    """Set the store kind up for tests of the store suite that do not ask for it by name."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "store_kind" in callspec.params:
        request.getfixturevalue("store_kind")

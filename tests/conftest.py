"""Suite-wide fixtures: a throwaway PostgreSQL cluster, and the store suite on both stores.

Modules marked ``pytestmark = pytest.mark.store`` run every test twice: on SQLite and on a
fresh PostgreSQL database (``store_kind`` is ``"sqlite"`` or ``"postgresql"``); inside such a
test ``tactful.testing.harness()`` and ``new_store_url()`` give stores of that kind.

PostgreSQL comes from Debian's packages (``tactful.pgcluster`` starts a cluster in a
temporary directory) or from ``TACTFUL_TEST_PG``. Without it those tests are skipped, unless
``TACTFUL_REQUIRE_PG=1`` (CI sets it), where they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tactful import pgcluster, testing

STORE_KINDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "store: run on both stores (SQLite and PostgreSQL)")
    config.addinivalue_line("markers", "postgresql: needs a PostgreSQL server")


# The slow tier: whole processes (acceptance, production), real browsers, benchmarks' smoke
# runs, and every test's PostgreSQL twin. `make test-fast` leaves them out; `make test` runs all.
_SLOW_FOLDERS = frozenset({"acceptance", "production"})
_SLOW_FILES = frozenset({"test_browser.py", "test_bench_smoke.py", "test_openapi_schemathesis.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path
        on_postgresql = "postgresql" in getattr(getattr(item, "callspec", None), "id", "")
        if (
            path.parent.name in _SLOW_FOLDERS
            or path.name in _SLOW_FILES
            or on_postgresql
            or item.get_closest_marker("postgresql") is not None
        ):
            item.add_marker(pytest.mark.slow)


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

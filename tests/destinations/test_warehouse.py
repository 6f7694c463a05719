"""Warehouse destination: DuckDB and Parquet (PostgreSQL when psycopg and a server exist)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import registry, warehouse
from tactful.destinations.base import Identifiers, Item
from tactful.testing.conformance import Conformance, conformance_tests

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(
    i: int, person: str = "p_1", minutes: int = 0, name: str = "support_state_changed"
) -> Item:
    return Item(
        key=f"ev-{i}",
        kind="event",
        person_id=person,
        at=T0 + timedelta(minutes=minutes),
        identifiers=Identifiers(emails=(f"{person}@example.com",)),
        name=name,
        segment="vip" if name == "segment_membership_changed" else None,
        properties={"new_state": f"s{i}", "changed": ["support_state"]},
    )


def profile(i: int, person: str = "p_1", minutes: int = 0, **state: Any) -> Item:
    return Item(
        key=f"pr-{i}",
        kind="profile",
        person_id=person,
        at=T0 + timedelta(minutes=minutes),
        identifiers=Identifiers(external_ids=("crm-1",)),
        properties=state or {"support_state": f"s{i}", "open_ticket_count": i},
    )


def make(url: str) -> Any:
    config = DestinationSettings.model_validate({"name": "wh", "type": "warehouse", "url": url})
    return registry.create(config)


@pytest.fixture(params=["duckdb", "parquet"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, Path]]:
    target = tmp_path / ("wh.duckdb" if request.param == "duckdb" else "lake")
    dest = make(f"{request.param}:///{target}")
    try:
        yield request.param, dest, target
    finally:
        dest.close()


def query(kind: str, target: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read what was written with a separate DuckDB, as an analyst would."""
    if kind == "duckdb":
        with duckdb.connect(str(target), read_only=True) as conn:
            return conn.execute(sql).fetchall()
    events = f"read_parquet('{target}/events/*.parquet')"
    persons = f"read_parquet('{target}/persons_current.parquet')"
    sql = sql.replace("FROM events", f"FROM {events}").replace(
        "FROM persons_current", f"FROM {persons}"
    )
    with duckdb.connect() as conn:
        return conn.execute(sql).fetchall()


def test_events_are_appended_once_per_key(backend: Any) -> None:
    kind, dest, target = backend
    batch = [event(1), event(2, minutes=1), event(1)]  # a duplicate inside the batch too
    assert [o.kind for o in dest.send(batch)] == ["ok"] * 3
    assert [o.kind for o in dest.send([event(2, minutes=1), event(3, minutes=2)])] == ["ok"] * 2
    rows = query(
        kind,
        target,
        "SELECT key, person_id, name, occurred_at::VARCHAR, properties::VARCHAR, "
        "identifiers::VARCHAR FROM events ORDER BY key",
    )
    assert [r[0] for r in rows] == ["ev-1", "ev-2", "ev-3"]
    assert rows[0][1:4] == ("p_1", "support_state_changed", "2026-03-01 12:00:00+00")
    assert orjson.loads(rows[0][4]) == {"new_state": "s1", "changed": ["support_state"]}
    assert orjson.loads(rows[0][5]) == {"email": ["p_1@example.com"]}


def test_current_table_upserts_and_never_goes_back_in_time(backend: Any) -> None:
    kind, dest, target = backend
    assert [o.kind for o in dest.send([profile(1), profile(2, person="p_2")])] == ["ok", "ok"]
    assert dest.send([profile(3, minutes=5)])[0].kind == "ok"
    assert dest.send([profile(4, minutes=1)])[0].kind == "ok"  # late, older: ignored
    rows = query(
        kind,
        target,
        "SELECT person_id, state::VARCHAR, key, updated_at::VARCHAR FROM persons_current "
        "ORDER BY person_id",
    )
    assert [(r[0], orjson.loads(r[1])["support_state"], r[2]) for r in rows] == [
        ("p_1", "s3", "pr-3"),
        ("p_2", "s2", "pr-2"),
    ]
    assert rows[0][3] == "2026-03-01 12:05:00+00"


def test_mixed_batches_and_history_stays_append_only(backend: Any) -> None:
    kind, dest, target = backend
    for n in range(3):
        batch = [event(n, minutes=n), profile(n, minutes=n)]
        assert [o.kind for o in dest.send(batch)] == ["ok", "ok"]
    history = query(
        kind, target, "SELECT properties->>'new_state' FROM events ORDER BY occurred_at"
    )
    assert [r[0] for r in history] == ["s0", "s1", "s2"]
    current = query(kind, target, "SELECT state->>'support_state' FROM persons_current")
    assert current == [("s2",)]


def test_erase_deletes_the_person_in_order_and_leaves_a_tombstone(backend: Any) -> None:
    kind, dest, target = backend
    dest.send([event(1), event(2, person="p_2"), profile(1), profile(2, person="p_2")])
    dest.send([event(3, minutes=1), event(4, person="p_2", minutes=1)])
    erase = Item("er-1", "erase", "p_1", T0 + timedelta(minutes=2), Identifiers(emails=("a@b",)))
    after = event(5, minutes=3)  # a later event in the same batch stays
    assert [o.kind for o in dest.send([event(6, minutes=2), erase, after])] == ["ok"] * 3
    rows = query(
        kind, target, "SELECT key, person_id, name, identifiers::VARCHAR FROM events ORDER BY key"
    )
    assert [r[:3] for r in rows] == [
        ("er-1", "p_1", "person_erased"),
        ("ev-2", "p_2", "support_state_changed"),
        ("ev-4", "p_2", "support_state_changed"),
        ("ev-5", "p_1", "support_state_changed"),
    ]
    assert orjson.loads(rows[0][3]) == {}
    assert query(kind, target, "SELECT person_id FROM persons_current") == [("p_2",)]


@pytest.mark.slow  # a second process holds the file
def test_duckdb_views_and_the_file_is_free_between_batches(tmp_path: Path) -> None:
    target = tmp_path / "wh.duckdb"
    dest = make(f"duckdb:///{target}")
    try:
        dest.send([event(1), event(2, name="segment_membership_changed")])
        assert query("duckdb", target, "SELECT key FROM state_changes") == [("ev-1",)]
        assert query("duckdb", target, "SELECT key, segment FROM segment_changes") == [
            ("ev-2", "vip")
        ]
        # Another process holding the file (an analyst's session): retry later, then fine.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(target)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        locked = dest.send([event(3)])[0]
        holder.communicate("", timeout=30)
        assert locked.kind == "retry" and locked.retry_after == warehouse.LOCKED_RETRY_AFTER
        assert dest.send([event(3)])[0].kind == "ok"
    finally:
        dest.close()


HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
    "print('ready', flush=True); sys.stdin.read()"
)


def test_parquet_writes_one_file_per_batch_with_new_keys_only(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    dest = make(f"parquet:///{lake}")
    dest.send([event(1), event(2)])
    dest.send([event(2)])  # nothing new: no file
    dest.send([event(2), event(3)])
    files = sorted(p.name for p in (lake / "events").iterdir())
    assert len(files) == 2 and all(f.startswith("part-") and f.endswith(".parquet") for f in files)
    assert not any(p.name.endswith(".tmp") for p in lake.rglob("*"))


def test_relative_urls_and_rejects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dest = make("duckdb:///relative.duckdb")
    try:
        add = Item("a", "audience_add", "p_1", T0, Identifiers())
        odd = Item("o", "event", "p_1", T0, Identifiers(), "x", properties={"v": object()})
        outcomes = dest.send([add, odd, event(1)])
        assert [o.kind for o in outcomes] == ["reject", "reject", "ok"]
        assert "not JSON" in outcomes[1].error
    finally:
        dest.close()
    assert (tmp_path / "relative.duckdb").exists()


def test_unknown_warehouse_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported warehouse URL redshift://"):
        make("redshift://cluster/db")


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is None or "TACTFUL_TEST_POSTGRES" not in os.environ,
    reason="needs psycopg and TACTFUL_TEST_POSTGRES=postgresql://…",
)
def test_postgresql() -> None:  # pragma: no cover - needs a server
    dest = make(os.environ["TACTFUL_TEST_POSTGRES"])
    try:
        assert [o.kind for o in dest.send([event(1), event(1), profile(1)])] == ["ok"] * 3
        assert dest.send([profile(2, minutes=-1)])[0].kind == "ok"
    finally:
        dest.close()


class LocalWarehouse:
    """The conformance suite's view of a local warehouse: what it holds, as an analyst
    reads it (load times aside: they differ from one warehouse to the next)."""

    def __init__(self, kind: str, target: Path) -> None:
        self.kind, self.target = kind, target
        self.requests: list[Any] = []  # no HTTP

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        events = "SELECT key, person_id, name, properties::VARCHAR FROM events ORDER BY key"
        persons = "SELECT person_id, key, state::VARCHAR FROM persons_current ORDER BY person_id"
        return self._read("events", events), self._read("persons_current", persons)

    def _read(self, table: str, sql: str) -> list[tuple[Any, ...]]:
        files = {"events": "events/*.parquet", "persons_current": "persons_current.parquet"}
        written = (
            self.target.exists() if self.kind == "duckdb" else any(self.target.glob(files[table]))
        )
        return query(self.kind, self.target, sql) if written else []

    def max_items_per_request(self) -> int:
        return 1

    def fail_next(self, n: int, status: int, retry_after: int | None = None) -> None:
        raise NotImplementedError("a local warehouse answers no HTTP status")


class TestDuckDBConformance(Conformance):
    http = False
    kind = "duckdb"

    @contextmanager
    def served(self) -> Iterator[tuple[Any, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / ("wh.duckdb" if self.kind == "duckdb" else "lake")
            dest = make(f"{self.kind}:///{target}")
            try:
                yield LocalWarehouse(self.kind, target), dest
            finally:
                dest.close()

    def items(self, n: int) -> list[Item]:
        return [event(i, person=f"p_{i}") if i % 2 else profile(i, f"p_{i}") for i in range(n)]

    def ordered(self) -> list[Item]:
        return [profile(1, minutes=0), profile(2, minutes=5)]


class TestParquetConformance(TestDuckDBConformance):
    kind = "parquet"


for _cls in (TestDuckDBConformance, TestParquetConformance):
    conformance_tests(_cls)
